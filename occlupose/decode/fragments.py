"""Joining the fragments of an occluded person after limb grouping.

Limb grouping connects two joints only through a visible limb between them, so a person
whose middle is hidden (behind a table, a car, another person) comes out as several
people: the upper body, and a lone knee and ankle below the occluder. The completer that
fills a person's missing joints also says where those joints should be. A fragment
whose joints all lie close to where the completer puts them, measured as OKS measures
(keypoint similarity with the dataset's sigmas and the completed person's size), is the
same person and joins it.

On the synthetic benchmark (``benchmarks/completion_end_to_end.py``) this recovers part
of what perfect grouping of the same peaks would: see the README's end-to-end table. The
default ``min_similarity`` 0.1 (``benchmarks/fragment_joining.py``): on 400 images of the
synthetic training split (bundled model, learned completer), 0.03, 0.05, 0.1, 0.2, 0.3,
0.5 and 0.7 give AP 0.461, 0.458, 0.449, 0.436, 0.420, 0.400 and 0.389 against 0.378
without joining. Below 0.1 the gain is smaller (0.012 at 0.03, against 0.071 from 0.1
itself) and the reach grows (a joint may lie 2.6 instead of 2.1 OKS scales from where
the completer puts it), and these scenes hold fewer bystanders than real crowds: the
default is 0.1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from occlupose.decode.decoder import PeopleCompleter

__all__ = ["join_fragments"]


def join_fragments(
    people: np.ndarray,
    completer: PeopleCompleter,
    sigmas: Sequence[float],
    *,
    min_similarity: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge each fragment into the person whose completed pose it fits.

    People are taken as anchors from the most joints found to the fewest (ties: higher
    total joint score first); an anchor needs two found joints for the completer to
    place its missing ones. A fragment joins an anchor when it shares no joint type
    with it and each of its joints has keypoint similarity at least ``min_similarity``
    to the completed position of that joint (``exp(-d^2 / (2 A (2 sigma)^2))``, ``A``
    the area of the completed person's bounding box). Fragments join in order of fit,
    a joint type at most once; then the anchor is completed again from its larger set
    of joints and the search repeats until nothing joins.

    Args:
        people: (N, J, 3) ``x, y, score`` as the groupers return them (score <= 0:
            missing), in any pixel units.
        completer: fills missing joints (:class:`~occlupose.decode.PoseCompleter` or
            :class:`~occlupose.decode.PosePrior`); it only guides the joins, the joints
            returned are the ones found.
        sigmas: (J,) the keypoint set's OKS sigmas.
        min_similarity: in (0, 1]; higher joins fewer fragments.

    Returns:
        ``(people, scores)``: the joined people (M <= N, in input order of the survivors,
        missing joints as they were) and their scores, the limb grouper's sum of joint
        scores / J.
    """
    if not 0.0 < min_similarity <= 1.0:
        raise ValueError(f"min_similarity must be in (0, 1], got {min_similarity}")
    people = np.array(people, dtype=np.float32, copy=True)
    if people.ndim != 3 or people.shape[2] != 3:
        raise ValueError(f"people must have shape (N, J, 3), got {people.shape}")
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.shape != (people.shape[1],):
        raise ValueError(f"sigmas must have shape ({people.shape[1]},), got {sigmas.shape}")
    found = people[:, :, 2] > 0
    alive = np.ones(len(people), dtype=bool)
    # Denominator of the keypoint similarity per joint, without the area.
    spread = 2.0 * (2.0 * sigmas) ** 2
    counts = found.sum(axis=1)
    anchors = np.flatnonzero(counts >= 2)
    filled = np.zeros_like(people)
    if len(anchors):  # one batched call; an anchor is completed again after each join
        filled[anchors] = completer.complete_people(people[anchors])
    order = sorted(anchors, key=lambda i: (-counts[i], -people[i, :, 2].sum()))
    for anchor in order:
        joined = True
        while alive[anchor] and joined:
            pose = filled[anchor]
            if not (pose[:, 2] > 0).all() or not np.isfinite(pose[:, :2]).all():
                break  # the completer could not place every joint
            candidates = alive & ~(found & found[anchor]).any(axis=1)
            candidates[anchor] = False
            if not candidates.any():
                break
            width, height = pose[:, :2].max(axis=0) - pose[:, :2].min(axis=0)
            area = max(float(width) * float(height), 1e-6)
            others = np.flatnonzero(candidates)
            d2 = ((people[others, :, :2] - pose[None, :, :2]) ** 2).sum(axis=2)
            similarity = np.where(found[others], np.exp(-d2 / (area * spread)), 1.0).min(axis=1)
            joined = False
            # Best fit first; a joint type the anchor has by now is not taken twice.
            for k in np.argsort(-similarity, kind="stable"):
                other = others[k]
                if similarity[k] < min_similarity:
                    break
                if (found[other] & found[anchor]).any():
                    continue
                people[anchor, found[other]] = people[other, found[other]]
                found[anchor] |= found[other]
                alive[other] = False
                joined = True
            if joined:  # more known joints place the rest better: look again
                filled[anchor] = completer.complete_people(people[anchor : anchor + 1])[0]
    people = people[alive]
    return people, people[:, :, 2].clip(min=0).sum(axis=1) / people.shape[1]
