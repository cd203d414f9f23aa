"""Keypoint-set definitions: the one description of a skeleton shared by every part.

A :class:`KeypointSet` says how many joints a dataset has, what they are called,
which joints swap under a horizontal flip, how they are connected (limbs), how
precisely each is annotated (OKS sigmas) and in which order associative-embedding
grouping visits them. Network heads, target encoders, decoders, dataset readers and
the evaluation code all read the same object, so they cannot disagree.

All indices are 0-based.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "COCO_KEYPOINTS",
    "CROWDPOSE_KEYPOINTS",
    "KeypointSet",
    "get_keypoint_set",
    "keypoint_set_from_coco_category",
    "register_keypoint_set",
]


@dataclass(frozen=True)
class KeypointSet:
    """A named set of keypoints with its skeleton.

    Args:
        name: short identifier, e.g. ``"coco"``.
        keypoint_names: one name per joint, in the dataset's order.
        limbs: connected joint pairs ``(a, b)``; limb fields are predicted along
            ``a -> b`` and limb grouping walks them.
        sigmas: per-joint OKS constants (the COCO ``kpt_oks_sigmas``).
        flip_pairs: ``(left, right)`` joint pairs swapped by a horizontal flip.
        grouping_order: the order in which tag grouping visits the joints (most
            reliable first); defaults to the dataset order.
    """

    name: str
    keypoint_names: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    grouping_order: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.keypoint_names)
        if n == 0:
            raise ValueError(f"keypoint set {self.name!r} has no keypoints")
        if len(set(self.keypoint_names)) != n:
            raise ValueError(f"keypoint set {self.name!r} has duplicate keypoint names")
        if len(self.sigmas) != n:
            raise ValueError(
                f"keypoint set {self.name!r}: {len(self.sigmas)} sigmas for {n} keypoints"
            )
        if any(s <= 0 for s in self.sigmas):
            raise ValueError(f"keypoint set {self.name!r}: OKS sigmas must be positive")
        for kind, pairs in (("limb", self.limbs), ("flip pair", self.flip_pairs)):
            for a, b in pairs:
                if not (0 <= a < n and 0 <= b < n) or a == b:
                    raise ValueError(
                        f"keypoint set {self.name!r}: {kind} ({a}, {b}) is not a pair of "
                        f"distinct joints in 0..{n - 1}"
                    )
        flipped = [j for pair in self.flip_pairs for j in pair]
        if len(flipped) != len(set(flipped)):
            raise ValueError(f"keypoint set {self.name!r}: a joint is in two flip pairs")
        if not self.grouping_order:
            object.__setattr__(self, "grouping_order", tuple(range(n)))
        elif sorted(self.grouping_order) != list(range(n)):
            raise ValueError(
                f"keypoint set {self.name!r}: grouping_order must be a permutation of 0..{n - 1}"
            )

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def num_limbs(self) -> int:
        return len(self.limbs)

    @property
    def flip_index(self) -> tuple[int, ...]:
        """Permutation ``p`` such that joint ``j`` of a flipped image is joint ``p[j]``."""
        index = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return tuple(index)

    def index(self, keypoint_name: str) -> int:
        try:
            return self.keypoint_names.index(keypoint_name)
        except ValueError:
            raise KeyError(
                f"keypoint set {self.name!r} has no keypoint {keypoint_name!r}; "
                f"it has {', '.join(self.keypoint_names)}"
            ) from None


def _pairs(names: Sequence[str], pairs: Sequence[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    return tuple((names.index(a), names.index(b)) for a, b in pairs)


# fmt: off
_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

# COCO's official 19-link skeleton, converted to 0-based indices.
_COCO_LIMBS = tuple(
    (a - 1, b - 1)
    for a, b in [
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7),
        (6, 8), (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5),
        (4, 6), (5, 7),
    ]
)
_COCO_SIGMAS = (
    .26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89,
)
# fmt: on

COCO_KEYPOINTS = KeypointSet(
    name="coco",
    keypoint_names=_COCO_NAMES,
    limbs=_COCO_LIMBS,
    sigmas=tuple(s / 10.0 for s in _COCO_SIGMAS),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # HigherHRNet's order: head, shoulders, hips, then the limbs outwards.
    grouping_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
)

# fmt: off
_CROWDPOSE_NAMES = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
)
_CROWDPOSE_LIMB_NAMES = (
    ("head", "neck"),
    ("neck", "left_shoulder"), ("neck", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
    ("left_hip", "right_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
)
_CROWDPOSE_SIGMAS = (.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79)
# fmt: on

# The skeleton shipped in CrowdPose's JSON is COCO's 17-point one (indices up to 17)
# and is meaningless for 14 keypoints; this is the 14-point body tree plus the hips.
CROWDPOSE_KEYPOINTS = KeypointSet(
    name="crowdpose",
    keypoint_names=_CROWDPOSE_NAMES,
    limbs=_pairs(_CROWDPOSE_NAMES, _CROWDPOSE_LIMB_NAMES),
    sigmas=tuple(s / 10.0 for s in _CROWDPOSE_SIGMAS),
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    # The order the published HigherHRNet CrowdPose models group in (the first 14
    # entries of its COCO order), kept so that their checkpoints group identically.
    grouping_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13),
)

_REGISTRY: dict[str, KeypointSet] = {
    COCO_KEYPOINTS.name: COCO_KEYPOINTS,
    CROWDPOSE_KEYPOINTS.name: CROWDPOSE_KEYPOINTS,
}


def register_keypoint_set(keypoint_set: KeypointSet) -> KeypointSet:
    """Make a custom keypoint set available by name (e.g. to configs and the CLI)."""
    existing = _REGISTRY.get(keypoint_set.name)
    if existing is not None and existing != keypoint_set:
        raise ValueError(f"a different keypoint set named {keypoint_set.name!r} is registered")
    _REGISTRY[keypoint_set.name] = keypoint_set
    return keypoint_set


def get_keypoint_set(name_or_set: str | KeypointSet) -> KeypointSet:
    """Look a keypoint set up by name (``"coco"``, ``"crowdpose"`` or a registered one)."""
    if isinstance(name_or_set, KeypointSet):
        return name_or_set
    try:
        return _REGISTRY[name_or_set.lower()]
    except KeyError:
        raise KeyError(
            f"unknown keypoint set {name_or_set!r}; known: {', '.join(sorted(_REGISTRY))}"
        ) from None


def _default_flip_pairs(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    pairs = []
    for i, name in enumerate(names):
        for prefix, other in (("left_", "right_"), ("l_", "r_")):
            if name.startswith(prefix):
                mirror = other + name[len(prefix) :]
                if mirror in names:
                    pairs.append((i, list(names).index(mirror)))
    return tuple(pairs)


def keypoint_set_from_coco_category(
    category: Mapping, *, name: str | None = None, sigmas: Sequence[float] | None = None
) -> KeypointSet:
    """Build a keypoint set from a COCO-format ``categories`` entry.

    Known categories (COCO's 17 points, CrowdPose's 14) map to the built-in sets,
    whose skeletons are correct (CrowdPose files carry COCO's skeleton). For other
    datasets the ``skeleton`` field (1-based, as COCO writes it) gives the limbs,
    ``left_*``/``right_*`` names give flip pairs, and OKS sigmas default to 0.05
    unless given.
    """
    try:
        names = tuple(str(n) for n in category["keypoints"])
    except (KeyError, TypeError):
        raise ValueError("COCO category has no 'keypoints' list") from None
    for known in (COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS):
        if names == known.keypoint_names and sigmas is None:
            return known
    skeleton = category.get("skeleton") or []
    limbs = []
    for link in skeleton:
        a, b = int(link[0]) - 1, int(link[1]) - 1
        if not (0 <= a < len(names) and 0 <= b < len(names)):
            raise ValueError(
                f"COCO category skeleton link {list(link)} refers to keypoints outside "
                f"1..{len(names)}"
            )
        limbs.append((a, b))
    return KeypointSet(
        name=name or str(category.get("name", "custom")),
        keypoint_names=names,
        limbs=tuple(limbs),
        sigmas=tuple(sigmas) if sigmas is not None else (0.05,) * len(names),
        flip_pairs=_default_flip_pairs(names),
    )
