"""Training samples for bottom-up pose networks (HigherHRNet, HRGR-Net).

:class:`BottomUpPoseDataset` turns an :class:`~occlupose.data.datasets.ImageRecord`
into network input and targets:

    read image -> ignore mask -> one random affine (zoom, rotation, shift, flip) for
    image, mask and keypoints -> synthetic occluders -> colour jitter -> normalise
    -> targets at every output stride

Two kinds of heatmaps are made, because the generation-recovery module learns to
turn the first into the second:

* ``heatmaps`` ("visible"): joints labelled (v>0), inside the map and not hidden by
  a synthetic occluder; with ``v1_is_hidden=True`` also without the dataset's v=1
  joints (use it for data whose v=1 flags mark occlusion reliably, e.g. the
  synthetic benchmark or COCO; not CrowdPose, where head and neck are always v=1).
  With occluders off and ``v1_is_hidden=False`` these are HigherHRNet's targets.
* ``complete_heatmaps``: every labelled joint inside the map, occluded or not.

Tags (associative embedding) and limb fields are built from every labelled joint,
like HigherHRNet's joint arrays: they describe who is where, not what is seen.

Two training geometries (the augmentation object chooses):

* occlupose's (:class:`~occlupose.data.augment.RandomAffine`): the image fitted by its
  long side, one matrix for everything, output maps through ``stride_matrix`` (pixel
  centres at integers everywhere); padding counts in the loss (target 0).
* HigherHRNet's (:class:`~occlupose.data.augment.OfficialAffine`), reproduced exactly:
  a square crop relative to the short side, the flip after the warp, one official
  matrix per output size (joints equal to the published pipeline's), people =
  annotations that are not crowd regions or have keypoints, padding ignored in the
  loss (the mask is warped with a zero border).

``heatmap_centres`` places each Gaussian at the joint's sub-pixel position
(``"subpixel"``) or on one pixel (``"integer"``: HigherHRNet's ``int(x), int(y)`` in
the official geometry, the nearest pixel in occlupose's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypedDict

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from occlupose.data.augment import (
    AffineSample,
    ColorJitter,
    OfficialAffine,
    OfficialAffineSample,
    RandomAffine,
    fit_matrix,
    mark_outside,
    stride_matrix,
    transform_keypoints,
    warp_image,
)
from occlupose.data.datasets import ImageRecord
from occlupose.data.masks import ignore_mask
from occlupose.data.occluders import Occlusion
from occlupose.data.targets import joint_index_array, render_heatmaps, render_limb_fields
from occlupose.structures.keypoint_set import KeypointSet

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BottomUpPoseDataset",
    "BottomUpSample",
    "prepare_batch",
    "worker_init_fn",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

OccluderFn = Callable[[np.ndarray, np.ndarray, np.random.Generator], Occlusion]


class BottomUpSample(TypedDict, total=False):
    """One training sample (a dict, so ``torch.utils.data.default_collate`` batches it).

    S = ``input_size``; for output stride ``k_r`` (``output_strides[r]``), ``h_r = S / k_r``;
    J keypoints, L limbs, P = ``max_people``. Target coordinates are output-map pixels,
    pixel centres at integer coordinates.

    Keys:
        image: float32 (3, S, S), RGB normalised with ImageNet mean/std.
        heatmaps: list over strides of float32 (J, h_r, h_r), "visible" joints, peak 1.
        complete_heatmaps: same, every labelled joint.
        masks: list over strides of float32 (h_r, h_r); 1 where the loss counts, 0 on
            crowd regions and people without labelled keypoints. Padding outside the
            source image counts (its target is 0) in occlupose's geometry; the official
            geometry ignores it (0), as HigherHRNet.
        joint_weights: float32 (J,), per-joint loss weights.
        joints: int64 (P, J, 2) at the first stride: ``[flat index y * h + x, valid]`` for
            associative embedding (only with ``with_tags``).
        limb_fields: float32 (2L, h_0, h_0) at the first stride (only with ``with_limbs``).
        keypoints: float32 (P, J, 3) ``x, y, v`` in input pixels, v=0 outside the input;
            rows past ``num_people`` are zero.
        hidden: bool (P, J), joints hidden by a synthetic occluder.
        num_people: int64, people rows in the sample (at most P): labelled people; in the
            official geometry every annotation that is not a crowd region or has keypoints
            (HigherHRNet's joints arrays), rows without labelled joints included.
        image_id: int64.
        matrix: float32 (3, 3), original image pixel -> input pixel (flip included).
            In the official geometry, the output maps have their own matrices
            (:meth:`~occlupose.data.augment.OfficialAffineSample.affine`).

    With ``compact=True`` the image is uint8 RGB (not normalised), ``heatmaps``,
    ``complete_heatmaps`` and ``limb_fields`` are float16 and ``masks`` uint8;
    :func:`prepare_batch` turns a batch back into the form above.
    """

    image: torch.Tensor
    heatmaps: list[torch.Tensor]
    complete_heatmaps: list[torch.Tensor]
    masks: list[torch.Tensor]
    joint_weights: torch.Tensor
    joints: torch.Tensor
    limb_fields: torch.Tensor
    keypoints: torch.Tensor
    hidden: torch.Tensor
    num_people: torch.Tensor
    image_id: torch.Tensor
    matrix: torch.Tensor


class BottomUpPoseDataset(Dataset):
    """A ``torch.utils.data.Dataset`` of :class:`BottomUpSample` for bottom-up training.

    Args:
        records: the images (e.g. a :class:`~occlupose.data.datasets.KeypointDataset`).
        keypoint_set: keypoints of ``records``; gives ``flip_index`` and ``limbs``.
        input_size: side of the square network input.
        output_strides: stride of each output map, highest resolution last, e.g. (4, 2)
            for HigherHRNet's 1/4 and 1/2 maps. Tags and limb fields use the first.
        sigmas: Gaussian sigma (output pixels) of the heatmaps, one per stride.
        augment: random affine, occlupose's (:class:`RandomAffine`) or HigherHRNet's
            (:class:`OfficialAffine`, which also selects the official target geometry);
            None = the image fitted into the input, no randomness.
        color_jitter: photometric jitter, or None.
        occluders: e.g. :class:`~occlupose.data.occluders.SyntheticOccluders`, or None.
        limb_width: limb field half-width in output pixels at the first stride.
        max_people: rows of ``joints``/``keypoints``; further people get heatmaps but
            no tag rows.
        with_limbs, with_tags: whether to build ``limb_fields`` / ``joints``.
        joint_weights: per-joint loss weights (default all 1).
        v1_is_hidden: leave the dataset's v=1 joints out of the "visible" heatmaps.
        heatmap_centres: ``"subpixel"`` (Gaussians at the exact joint positions) or
            ``"integer"`` (on the joint's pixel: HigherHRNet's targets).
        compact: return the image as uint8 (not normalised), heatmaps and limb fields as
            float16 and masks as uint8, less than half the bytes per sample; moving
            samples between processes is what limits multi-worker loading.
            :func:`prepare_batch` converts a batch to the float32 form on the GPU.
        seed: with a seed, sample ``i`` in epoch ``e`` is a function of ``(seed, e, i)``
            (call :meth:`set_epoch`); None draws fresh randomness for every call.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        keypoint_set: KeypointSet,
        *,
        input_size: int = 512,
        output_strides: Sequence[int] = (4, 2),
        sigmas: Sequence[float] = (2.0, 2.0),
        augment: RandomAffine | OfficialAffine | None = None,
        color_jitter: ColorJitter | None = None,
        occluders: OccluderFn | None = None,
        limb_width: float = 1.0,
        max_people: int = 30,
        with_limbs: bool = True,
        with_tags: bool = True,
        joint_weights: Sequence[float] | None = None,
        v1_is_hidden: bool = False,
        heatmap_centres: str = "subpixel",
        seed: int | None = None,
        compact: bool = False,
    ) -> None:
        if len(sigmas) != len(output_strides):
            raise ValueError(
                f"{len(sigmas)} sigmas for {len(output_strides)} output strides; give one each"
            )
        if heatmap_centres not in ("subpixel", "integer"):
            raise ValueError(
                f"heatmap_centres must be 'subpixel' or 'integer', got {heatmap_centres!r}"
            )
        for stride in output_strides:
            if input_size % stride:
                raise ValueError(f"input_size {input_size} is not divisible by stride {stride}")
        num_joints = keypoint_set.num_keypoints
        if joint_weights is None:
            joint_weights = [1.0] * num_joints
        if len(joint_weights) != num_joints:
            raise ValueError(f"{len(joint_weights)} joint weights for {num_joints} keypoints")
        for record in records[:1]:
            if record.keypoints.shape[1] != num_joints:
                raise ValueError(
                    f"records have {record.keypoints.shape[1]} keypoints, keypoint set "
                    f"{keypoint_set.name!r} has {num_joints}"
                )
        self.records = records
        self.keypoint_set = keypoint_set
        self.input_size = int(input_size)
        self.output_strides = tuple(int(s) for s in output_strides)
        self.sigmas = tuple(float(s) for s in sigmas)
        self.augment = augment
        self.color_jitter = color_jitter
        self.occluders = occluders
        self.limb_width = float(limb_width)
        self.max_people = int(max_people)
        self.with_limbs = with_limbs
        self.with_tags = with_tags
        self.joint_weights = torch.tensor(joint_weights, dtype=torch.float32)
        self.v1_is_hidden = v1_is_hidden
        self.heatmap_centres = heatmap_centres
        self.seed = seed
        self.compact = compact
        self.epoch = 0
        mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
        # x_norm = x * a + b with x in 0..255 (one multiply-add per pixel).
        self._norm_scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._norm_shift = (-mean / std).astype(np.float32)

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentations of ``epoch`` (only matters with a ``seed``)."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng((self.seed, self.epoch, index))

    def output_sizes(self) -> list[int]:
        return [self.input_size // k for k in self.output_strides]

    def __getitem__(self, index: int) -> BottomUpSample:
        record = self.records[index]
        rng = self._rng(index)
        image = record.read_image()
        size = self.input_size
        flip_index = self.keypoint_set.flip_index

        if self.augment is not None:
            drawn = self.augment.sample(rng, image.shape[:2], size)
        else:
            drawn = AffineSample(matrix=fit_matrix(image.shape[:2], size), flipped=False)
        matrix = drawn.matrix
        official = drawn if isinstance(drawn, OfficialAffineSample) else None
        if official is not None:
            # HigherHRNet's people: every annotation that is not a crowd region or has
            # keypoints, in file order (rows without labelled joints make no targets).
            people = ~record.iscrowd | (record.keypoints[:, :, 2] > 0).any(axis=1)
            image = official.warp(image, size)
            keypoints = official.transform_keypoints(record.keypoints[people], size, flip_index)
        else:
            people = record.labelled
            image = warp_image(image, matrix, (size, size))
            keypoints = transform_keypoints(
                record.keypoints[people], matrix, flip_index if drawn.flipped else None
            )
        keypoints = mark_outside(keypoints, (size, size))

        if self.occluders is not None:
            occlusion = self.occluders(image, keypoints, rng)
            image, hidden = occlusion.image, occlusion.hidden
        else:
            hidden = np.zeros(keypoints.shape[:2], bool)
        if self.color_jitter is not None:
            image = self.color_jitter(image, rng)

        sample: BottomUpSample = {
            "image": self._image_tensor(image),
            "heatmaps": [],
            "complete_heatmaps": [],
            "masks": [],
            "joint_weights": self.joint_weights.clone(),
        }
        ignored = record.iscrowd | ~(record.keypoints[:, :, 2] > 0).any(axis=1)
        loss_mask = ignore_mask(record) if ignored.any() else None
        centre = "pixel" if self.heatmap_centres == "integer" else "subpixel"
        for r, (stride, sigma) in enumerate(zip(self.output_strides, self.sigmas, strict=True)):
            out = size // stride
            if official is not None:
                mapped = official.transform_keypoints(record.keypoints[people], out, flip_index)
                if self.heatmap_centres == "integer":  # HigherHRNet: the pixel int(x), int(y)
                    mapped[..., :2] = np.trunc(mapped[..., :2])
                else:  # pixel u spans [u, u + 1) of these coordinates: its centre is u + 1/2
                    mapped[..., :2] -= 0.5
                complete = mark_outside(mapped, (out, out))
                mask = official.warp(
                    np.ones((record.height, record.width), np.uint8) * 255
                    if loss_mask is None
                    else loss_mask * 255,
                    out,
                    border_value=0,  # padding is ignored, as in HigherHRNet
                )
                sample["masks"].append(torch.from_numpy((mask > 127).astype(np.float32)))
            else:
                to_output = stride_matrix(stride)
                complete = mark_outside(transform_keypoints(keypoints, to_output), (out, out))
                sample["masks"].append(self._output_mask(loss_mask, to_output @ matrix, out))
            visible = complete.copy()
            visible[..., 2][hidden] = 0.0
            if self.v1_is_hidden:
                visible[..., 2][complete[..., 2] == 1] = 0.0
            complete_maps = torch.from_numpy(
                render_heatmaps(complete, (out, out), sigma, centre=centre)
            )
            if np.array_equal(visible[..., 2], complete[..., 2]):  # nothing hidden: same maps
                visible_maps = complete_maps.clone()
            else:
                visible_maps = torch.from_numpy(
                    render_heatmaps(visible, (out, out), sigma, centre=centre)
                )
            sample["heatmaps"].append(visible_maps)
            sample["complete_heatmaps"].append(complete_maps)
            if r == 0:
                if self.with_tags:
                    joints = joint_index_array(complete, (out, out), self.max_people)
                    sample["joints"] = torch.from_numpy(np.asarray(joints, np.int64))
                if self.with_limbs:
                    fields = render_limb_fields(
                        complete, self.keypoint_set.limbs, (out, out), self.limb_width
                    )
                    sample["limb_fields"] = torch.from_numpy(fields)

        num_people = min(len(keypoints), self.max_people)
        padded = np.zeros((self.max_people, self.keypoint_set.num_keypoints, 3), np.float32)
        padded[:num_people] = keypoints[:num_people]
        padded_hidden = np.zeros(padded.shape[:2], bool)
        padded_hidden[:num_people] = hidden[:num_people]
        sample["keypoints"] = torch.from_numpy(padded)
        sample["hidden"] = torch.from_numpy(padded_hidden)
        sample["num_people"] = torch.tensor(num_people, dtype=torch.int64)
        sample["image_id"] = torch.tensor(record.image_id, dtype=torch.int64)
        sample["matrix"] = torch.from_numpy(matrix.astype(np.float32))
        if self.compact:
            for key in ("heatmaps", "complete_heatmaps"):
                sample[key] = [t.half() for t in sample[key]]
            sample["masks"] = [t.to(torch.uint8) for t in sample["masks"]]
            if "limb_fields" in sample:
                sample["limb_fields"] = sample["limb_fields"].half()
        return sample

    def _image_tensor(self, image: np.ndarray) -> torch.Tensor:
        if self.compact:
            return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        normalised = image.astype(np.float32) * self._norm_scale + self._norm_shift
        return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))

    @staticmethod
    def _output_mask(mask: np.ndarray | None, matrix: np.ndarray, out: int) -> torch.Tensor:
        if mask is None:  # nothing ignored in this image
            return torch.ones((out, out), dtype=torch.float32)
        warped = warp_image(mask * 255, matrix, (out, out), border_value=255)
        return torch.from_numpy((warped > 127).astype(np.float32))


def prepare_batch(
    batch: BottomUpSample, device: torch.device | str, *, non_blocking: bool = True
) -> BottomUpSample:
    """Move a collated batch to ``device``; a ``compact`` batch becomes the float32 form.

    uint8 images are normalised there with ImageNet mean/std, float16 targets and
    uint8 masks become float32; other tensors are only moved.
    """

    def move(value):
        if isinstance(value, list):
            return [move(v) for v in value]
        if not isinstance(value, torch.Tensor):
            return value
        value = value.to(device, non_blocking=non_blocking)
        if value.dtype == torch.float16:
            return value.float()
        return value

    out = {key: move(value) for key, value in batch.items()}
    out["masks"] = [m.float() for m in out["masks"]]
    image = out["image"]
    if image.dtype == torch.uint8:
        mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=image.device).view(1, 3, 1, 1)
        out["image"] = (image.float() / 255.0 - mean) / std
    return out


def worker_init_fn(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: one OpenCV thread per worker process.

    OpenCV parallelises warps and colour conversions over all cores; with several
    workers those thread pools compete with each other (PyTorch already limits its
    own threads to one per worker).
    """
    cv2.setNumThreads(1)
