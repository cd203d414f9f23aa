"""The Predictor: images in, people out.

Pipeline per image: resize (short side to the input size, padded to a multiple
of 32) -> network (optionally on the mirrored image and at several scales) ->
flip back and merge the maps at 1/2 resolution -> group joints into people (by
limb fields, or by tags) -> coordinates back to the original image.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from occlupose.data.augment import ResizedImage, resize_short_side
from occlupose.data.image_io import read_image, to_rgb_uint8
from occlupose.decode import PosePrior, group_people, resolve_grouping
from occlupose.inference.tta import (
    MapsAtOneSize,
    NetworkPass,
    flip_back_outputs,
    merge_outputs,
)
from occlupose.models import (
    PRESETS,
    Checkpoint,
    HRGRNet,
    create_model,
    load_weights,
    read_checkpoint,
)
from occlupose.structures import KeypointSet, Person, get_keypoint_set

__all__ = ["Predictor", "PredictorOptions", "as_rgb_image"]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ImageInput = str | os.PathLike | np.ndarray


@dataclass
class PredictorOptions:
    """How the Predictor runs the network and groups people.

    Attributes:
        input_size: the shorter image side is resized to this (times each scale).
        max_side: the longer side is never resized beyond this (huge panoramas).
        scales: test scales (HigherHRNet's multi-scale test uses 0.5, 1, 2).
        flip: also run the mirrored image and average (flip test).
        grouping: "limbs" (limb fields + Hungarian matching), "tags"
            (associative embedding, HigherHRNet) or "auto" (limbs when the model
            predicts them).
        detection_threshold: minimum heatmap peak for a joint candidate.
        tag_threshold: maximum tag distance to join a person (tag grouping).
        max_people: people per image at most.
        min_score: people with a lower score are dropped.
    """

    input_size: int = 512
    max_side: int = 2048
    scales: Sequence[float] = (1.0,)
    flip: bool = True
    grouping: Literal["auto", "limbs", "tags"] = "auto"
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    max_people: int = 30
    min_score: float = 0.0


def as_rgb_image(image: ImageInput) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from a path or an array.

    Arrays are taken as RGB (or RGBA, or grayscale (H, W) / (H, W, 1)); 16-bit
    and float images are converted to 8 bits as :func:`read_image` does.
    """
    if isinstance(image, str | os.PathLike):
        return read_image(image)
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(f"expected an (H, W) or (H, W, C) image with C <= 4, got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image has a zero-sized dimension: {array.shape}")
    if array.ndim == 3 and array.shape[2] >= 3:
        # to_rgb_uint8 reads OpenCV's BGR(A) order; reverse RGB into it.
        array = np.concatenate([array[..., 2::-1], array[..., 3:]], axis=2)
    return to_rgb_uint8(array)


class Predictor:
    """Runs a pose network on images and returns the people found.

    Args:
        model: an :class:`HRGRNet` (HigherHRNet included).
        keypoint_set: the model's keypoints.
        options: see :class:`PredictorOptions`.
        device: "cpu", "cuda", "cuda:1", ...
        half: run the network in float16 (CUDA only).
        pose_prior: completes each person's missing joints from reference poses
            (:class:`occlupose.decode.PosePrior`); ``from_pretrained`` takes the one
            stored with the weights, if any.

    Example::

        predictor = Predictor.from_pretrained("pose_higher_hrnet_w32_512.pth",
                                              preset="higherhrnet_w32_512")
        people = predictor.predict("crowd.jpg")
    """

    def __init__(
        self,
        model: HRGRNet,
        keypoint_set: KeypointSet | str = "coco",
        options: PredictorOptions | None = None,
        *,
        device: str | torch.device = "cpu",
        half: bool = False,
        pose_prior: PosePrior | None = None,
    ) -> None:
        self.keypoint_set = get_keypoint_set(keypoint_set)
        if model.num_joints != self.keypoint_set.num_keypoints:
            raise ValueError(
                f"the model predicts {model.num_joints} joints but keypoint set "
                f"{self.keypoint_set.name!r} has {self.keypoint_set.num_keypoints}"
            )
        if pose_prior is not None and pose_prior.num_joints != model.num_joints:
            raise ValueError(
                f"the pose prior has {pose_prior.num_joints} joints, the model {model.num_joints}"
            )
        self.pose_prior = pose_prior
        self.options = options or PredictorOptions()
        self.device = torch.device(device)
        if half and self.device.type != "cuda":
            raise ValueError("half precision needs a CUDA device")
        self.half = half
        self.model = model.eval().to(self.device)
        if half:
            self.model.half()
        self.grouping = resolve_grouping(
            self.options.grouping,
            has_tags=model.tag_channels > 0,
            has_limbs=model.limb_head is not None,
        )
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255
        self._mean, self._std = mean, std

    @classmethod
    def from_pretrained(
        cls,
        weights: str | os.PathLike | None = None,
        *,
        preset: str | None = None,
        keypoint_set: KeypointSet | str | None = None,
        options: PredictorOptions | None = None,
        device: str | torch.device = "cpu",
        half: bool = False,
        use_pose_prior: bool = True,
    ) -> Predictor:
        """Build a Predictor from a checkpoint file or the name of bundled weights
        (default: the bundled default model).

        occlupose checkpoints carry their preset and keypoint set. For official
        HigherHRNet files give ``preset`` (e.g. "higherhrnet_w32_512"); the keypoint
        set is then inferred from the number of joints (17: COCO, 14: CrowdPose)
        unless given. A pose prior saved with the weights completes the people found,
        unless ``use_pose_prior`` is False.
        """
        from occlupose.inference.pretrained import resolve_weights

        path = resolve_weights(weights)
        checkpoint = read_checkpoint(path)
        meta = checkpoint.metadata
        preset = preset or meta.get("preset")
        if preset is None:
            raise ValueError(
                f"{path} does not say which model it holds; pass preset=... "
                f"(one of {', '.join(PRESETS)})"
            )
        if keypoint_set is None:
            keypoint_set = meta.get("keypoint_set") or _keypoint_set_from_joints(checkpoint)
        model = create_model(preset, keypoint_set=keypoint_set, **meta.get("model_kwargs", {}))
        report = load_weights(model, checkpoint)
        if report.initialised:
            logger.warning(
                "%d tensors of %s are not in %s and keep their initialisation",
                len(report.initialised),
                preset,
                path,
            )
        if options is None:
            options = PredictorOptions(
                input_size=meta.get("input_size", PRESETS[preset].input_size)
            )
        pose_prior = PosePrior.from_metadata(meta) if use_pose_prior else None
        return cls(model, keypoint_set, options, device=device, half=half, pose_prior=pose_prior)

    # -- the pipeline ---------------------------------------------------------------

    @torch.inference_mode()
    def maps(self, image: np.ndarray) -> tuple[MapsAtOneSize, ResizedImage]:
        """Run the network with test-time augmentation on an RGB uint8 image."""
        (result,) = self.maps_batch([image])
        return result

    @torch.inference_mode()
    def maps_batch(self, images: Sequence[np.ndarray]) -> list[tuple[MapsAtOneSize, ResizedImage]]:
        """:meth:`maps` of several RGB uint8 images of one size, one network run per scale.

        Video frames are the case in point: on a GPU one batched pass costs little more
        than one image. The maps equal those of :meth:`maps` image by image (the network
        is in eval mode: no statistic crosses images).
        """
        if not len(images):
            return []
        if len({image.shape for image in images}) != 1:
            raise ValueError(
                "maps_batch needs images of one size, got "
                f"{sorted({image.shape for image in images})}"
            )
        opts, count = self.options, len(images)
        height, width = images[0].shape[:2]
        base = min(opts.input_size / min(height, width), opts.max_side / max(height, width))
        # The base view: scale 1 if tested, else the first scale.
        base_scale = 1.0 if 1.0 in opts.scales else opts.scales[0]
        passes: list[list[NetworkPass]] = [[] for _ in images]
        views: dict[float, list[ResizedImage]] = {}
        for scale in opts.scales:
            short = max(32, round(min(height, width) * base * scale))
            views[scale] = [resize_short_side(im, short, size_divisor=32) for im in images]
            x = torch.cat([self._to_tensor(view.image) for view in views[scale]])
            outputs = self.model(torch.cat([x, x.flip(3)]) if opts.flip else x)
            canvas_h, zoom = views[scale][0].image.shape[0], scale / base_scale
            for i in range(count):
                passes[i].append(NetworkPass(_select(outputs, slice(i, i + 1)), canvas_h, zoom))
                if opts.flip:
                    mirrored = _select(outputs, slice(count + i, count + i + 1))
                    flipped = flip_back_outputs(mirrored, self.keypoint_set)
                    passes[i].append(NetworkPass(flipped, canvas_h, zoom))
        # Merge on the finest maps of the base view (1/2 resolution for HigherHRNet).
        base_index = list(opts.scales).index(base_scale) * (2 if opts.flip else 1)
        results = []
        for i in range(count):
            base_view = views[base_scale][i]
            size = tuple(passes[i][base_index].outputs.heatmaps[-1].shape[-2:])
            stride = base_view.image.shape[0] / size[0]
            results.append((merge_outputs(passes[i], size, stride), base_view))
        return results

    def predict_image(self, image: ImageInput) -> list[Person]:
        """People in one image (path or array), in original image pixels."""
        return self._people(*self.maps(as_rgb_image(image)))

    def predict_images(
        self, images: Iterable[ImageInput], *, batch_size: int = 1
    ) -> list[list[Person]]:
        """People in each image; consecutive images of one size may share network runs.

        Up to ``batch_size`` consecutive images with the same size (e.g. video frames)
        go through the network together (:meth:`maps_batch`; worth it on GPUs, e.g. 8);
        the people found are those of :meth:`predict_image` on each image.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        results: list[list[Person]] = []
        chunk: list[np.ndarray] = []

        def flush() -> None:
            results.extend(self._people(*maps) for maps in self.maps_batch(chunk))
            chunk.clear()

        for image in images:
            rgb = as_rgb_image(image)
            if chunk and (rgb.shape != chunk[0].shape or len(chunk) == batch_size):
                flush()
            chunk.append(rgb)
        flush()
        return results

    def predict(
        self, images: ImageInput | Iterable[ImageInput], *, batch_size: int = 1
    ) -> list[Person] | list[list[Person]]:
        """People in one image, or a list of results for a list of images
        (``batch_size``: see :meth:`predict_images`)."""
        if isinstance(images, str | os.PathLike) or (
            isinstance(images, np.ndarray) and images.ndim in (2, 3) and images.dtype != object
        ):
            return self.predict_image(images)
        return self.predict_images(images, batch_size=batch_size)

    # -- helpers -----------------------------------------------------------------------

    def _people(self, maps: MapsAtOneSize, resized: ResizedImage) -> list[Person]:
        """Group one image's merged maps into people, in original image pixels."""
        people, scores = self._group(maps)
        keypoints = people.copy()
        # Map pixels (c spans [c, c+1)) -> input pixel centres -> original pixels.
        keypoints[..., :2] = keypoints[..., :2] * maps.stride - 0.5
        keypoints = resized.to_original(keypoints)
        found = keypoints[..., 2] > 0
        keypoints[~found] = 0.0
        result = [
            Person(kp, float(s))
            for kp, s in zip(keypoints, scores, strict=True)
            if s >= self.options.min_score
        ]
        result.sort(key=lambda p: -p.score)
        return result[: self.options.max_people]

    def _to_tensor(self, image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        x = (x.permute(2, 0, 1)[None].float() - self._mean) / self._std
        return x.half() if self.half else x

    def _group(self, maps: MapsAtOneSize) -> tuple[np.ndarray, np.ndarray]:
        opts = self.options
        return group_people(
            maps.heatmaps.float().cpu().numpy(),
            self.keypoint_set,
            grouping=self.grouping,
            tags=maps.tags.float().cpu().numpy() if self.grouping == "tags" else None,
            limbs=maps.limbs.float().cpu().numpy() if self.grouping == "limbs" else None,
            detection_threshold=opts.detection_threshold,
            tag_threshold=opts.tag_threshold,
            max_people=opts.max_people,
            pose_prior=self.pose_prior,
        )


def _select(outputs, index: slice):
    from occlupose.models import PoseOutputs

    return PoseOutputs(
        heatmaps=[h[index] for h in outputs.heatmaps],
        tags=None if outputs.tags is None else outputs.tags[index],
        limbs=None if outputs.limbs is None else outputs.limbs[index],
        completed=None if outputs.completed is None else [h[index] for h in outputs.completed],
        features=outputs.features[index],
    )


def _keypoint_set_from_joints(checkpoint: Checkpoint) -> str:
    weight = checkpoint.state.get("final_layers.1.weight")
    joints = None if weight is None else int(weight.shape[0])
    by_count = {17: "coco", 14: "crowdpose"}
    if joints not in by_count:
        raise ValueError(
            f"cannot tell the keypoint set of {checkpoint.path} ({joints} joints); "
            "pass keypoint_set=..."
        )
    return by_count[joints]
