"""The Predictor: images in, people out.

Two test pipelines, chosen by ``PredictorOptions.decoding``:

* ``"official"``: HigherHRNet's published ``valid.py`` path, exactly: the image warped
  about its centre onto canvases aligned to 64 (:mod:`occlupose.inference.canvas`),
  flip test, the 1/4 and 1/2 heatmaps averaged and projected to input resolution,
  tags of scale 1 only (:func:`~occlupose.decode.merge_passes_official`), tag grouping
  with adjust and refine, official coordinates, every person kept
  (:meth:`DecodeSettings.official`). The default for official checkpoints and the
  HigherHRNet presets.
* ``"occlupose"``: the short side resized to the input size, padded at the right and
  bottom to a multiple of 32; maps merged at 1/2 resolution
  (:func:`~occlupose.decode.merge_passes`); limb or tag grouping; pixel-centre
  coordinates; the best people first. The default for occlupose's own models.

Both end in the one decoder, :func:`occlupose.decode.decode_people`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from occlupose.data.augment import resize_short_side
from occlupose.data.image_io import read_image, to_rgb_uint8
from occlupose.decode import (
    BUNDLED_COMPLETERS,
    DecodeSettings,
    MergedMaps,
    NetworkPass,
    PoseCompleter,
    PosePrior,
    decode_people,
    flip_back_outputs,
    load_completer,
    merge_passes,
    merge_passes_official,
    pixel_convention_for,
    resolve_grouping,
)
from occlupose.inference.canvas import official_canvases, official_warp, warp_canvas
from occlupose.inference.export import OnnxNetwork
from occlupose.models import (
    PRESETS,
    Checkpoint,
    HigherHRNet,
    HRGRNet,
    create_model,
    load_weights,
    read_checkpoint,
)
from occlupose.models.fusion import fold_batch_norms
from occlupose.structures import KeypointSet, Person, PoseOutputs, get_keypoint_set
from occlupose.utils.hardware import cpu_has_native_bf16

__all__ = [
    "Predictor",
    "PredictorOptions",
    "as_rgb_image",
    "checkpoint_pixel_convention",
    "default_decoding",
]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ImageInput = str | os.PathLike | np.ndarray
Decoding = Literal["occlupose", "official"]

# Keypoint sets the official HigherHRNet code has datasets (and grouping orders) for.
OFFICIAL_KEYPOINT_SETS = ("coco", "crowdpose")


@dataclass
class PredictorOptions:
    """How the Predictor runs the network and decodes people.

    Attributes:
        input_size: the shorter image side becomes this (times each scale); None: the
            checkpoint's or preset's input size (512 for a bare model).
        max_side: the longer side is never resized beyond this (huge panoramas;
            ``"occlupose"`` decoding only: the official test has no such cap).
        scales: test scales (HigherHRNet's multi-scale test uses 2, 1, 0.5).
        flip: also run the mirrored image and average (flip test).
        decoding: ``"official"`` (HigherHRNet's published test path), ``"occlupose"``,
            or ``"auto"``: what the checkpoint's metadata says, else official for
            official checkpoints and HigherHRNet models (:func:`default_decoding`).
        decode: grouping and output settings; None takes the decoding's defaults
            (:meth:`DecodeSettings.official` or ``DecodeSettings()``).
        precision: the network's arithmetic on a CPU: ``"fp32"``, ``"bf16"`` (bfloat16
            autocast; refused with a warning, and float32 used, where the CPU has no
            bfloat16 instructions, which would emulate it ten times slower) or ``"auto"``:
            bfloat16 where the CPU has it, except for ``"official"`` decoding, which
            reproduces published numbers in float32. On CUDA use ``half``.
        fuse: run a copy of the network with batch norms folded into the convolutions
            and channels-last tensors (the same function up to float rounding; faster).
            ``fuse=False, precision="fp32"`` is the plain network, as trained.
        runtime: ``"torch"``, or ``"onnxruntime"``: the network exported to ONNX (float32,
            CPU) and run by ONNX Runtime (``pip install onnxruntime``), which applies its
            own graph optimisations (``benchmarks/cpu_inference.py`` compares them).
        completion: how joints that grouping left out are filled in: ``"learned"`` (the
            bundled pose completer of the keypoint set, :func:`occlupose.decode.load_completer`),
            ``"prior"`` (the pose prior stored with the weights), ``"none"``, or
            ``"auto"``: learned where a completer is bundled for the keypoint set, except
            with ``"official"`` decoding (the published test path, which completes
            nothing); else the stored prior, if any. Completed joints score half the
            person's lowest found score and are marked in ``Person.completed``.
    """

    input_size: int | None = None
    max_side: int = 2048
    scales: Sequence[float] = (1.0,)
    flip: bool = True
    decoding: Literal["auto", "occlupose", "official"] = "auto"
    decode: DecodeSettings | None = None
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    fuse: bool = True
    runtime: Literal["torch", "onnxruntime"] = "torch"
    completion: Literal["auto", "none", "prior", "learned"] = "auto"

    def __post_init__(self) -> None:
        if self.completion not in ("auto", "none", "prior", "learned"):
            raise ValueError(
                f"completion must be auto, none, prior or learned, got {self.completion!r}"
            )
        if self.runtime not in ("torch", "onnxruntime"):
            raise ValueError(f"runtime must be torch or onnxruntime, got {self.runtime!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.decoding not in ("auto", "occlupose", "official"):
            raise ValueError(f"decoding must be auto, official or occlupose, got {self.decoding!r}")
        if not len(self.scales) or any(s <= 0 for s in self.scales):
            raise ValueError(f"scales must be positive, got {list(self.scales)}")
        if self.input_size is not None and self.input_size < 1:
            raise ValueError(f"input_size must be positive, got {self.input_size}")
        self.scales = tuple(float(s) for s in self.scales)


def _resolve_completer(
    completion: str, pose_prior: PosePrior | None, keypoint_set: KeypointSet, decoding: str
) -> PosePrior | PoseCompleter | None:
    """The completer :attr:`PredictorOptions.completion` names (see there)."""
    if completion == "none":
        return None
    if completion == "prior":
        if pose_prior is None:
            raise ValueError("completion='prior' needs a pose prior; these weights carry none")
        return pose_prior
    if completion == "learned":
        return load_completer(keypoint_set)  # ValueError where none is bundled
    if decoding == "official":
        return None
    if keypoint_set.name in BUNDLED_COMPLETERS:
        return load_completer(keypoint_set)
    return pose_prior


def default_decoding(preset: str | None, metadata: dict) -> Decoding:
    """The decoding a checkpoint is meant for.

    What its metadata says; else, for a model occlupose trained on HigherHRNet's
    ``int()``-rounded targets (``heatmap_centres: integer``), official for the HigherHRNet
    presets; else ``"official"`` for files without occlupose metadata (official
    checkpoints) and for the HigherHRNet presets; else ``"occlupose"``.
    """
    if metadata.get("decoding") in ("official", "occlupose"):
        return metadata["decoding"]
    higherhrnet = (preset or "").startswith("higherhrnet")
    if metadata.get("heatmap_centres") == "subpixel":
        return "occlupose"
    if not metadata or higherhrnet:
        return "official"
    return "occlupose"


def checkpoint_pixel_convention(metadata: dict) -> str | None:
    """The pixel convention a checkpoint's targets call for, when its metadata tells.

    Networks trained on ``int()``-rounded targets (the published recipes) peak half a
    pixel early, which the official convention's +0.5 undoes; sub-pixel targets want
    pixel centres (``benchmarks/decode_bias.py`` measures both).
    """
    if metadata.get("pixel_convention") in ("centres", "official"):
        return metadata["pixel_convention"]
    if metadata.get("heatmap_centres") in ("integer", "subpixel"):
        return pixel_convention_for(metadata["heatmap_centres"])
    return None


def _model_decoding(model: HRGRNet, keypoint_set: KeypointSet) -> Decoding:
    """``"auto"`` for a bare model: official for a HigherHRNet the official code decodes."""
    official_heads = model.limb_head is None and model.tag_channels == model.num_joints
    if (
        isinstance(model, HigherHRNet)
        and official_heads
        and keypoint_set.name in OFFICIAL_KEYPOINT_SETS
    ):
        return "official"
    return "occlupose"


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
        options = options or PredictorOptions()
        self.options = dataclasses.replace(
            options,
            input_size=options.input_size or 512,
            decoding=_model_decoding(model, self.keypoint_set)
            if options.decoding == "auto"
            else options.decoding,
        )
        self.settings = self.options.decode or (
            DecodeSettings.official() if self.options.decoding == "official" else DecodeSettings()
        )
        if self.options.decoding == "official":
            _check_official(model, self.keypoint_set, self.settings)
            if len(self.options.scales) > 1 and 1.0 not in self.options.scales:
                raise ValueError(
                    "the official multi-scale test takes its tags from scale 1: "
                    f"add 1 to the scales {list(self.options.scales)}"
                )
        self.completer = _resolve_completer(
            self.options.completion, pose_prior, self.keypoint_set, self.options.decoding
        )
        self.device = torch.device(device)
        if half and self.device.type != "cuda":
            raise ValueError("half precision needs a CUDA device")
        self.half = half
        self.model = model.eval().to(self.device)
        if half:
            self.model.half()
        self.precision = self._resolve_precision()
        # What runs: the model itself, a folded channels-last copy, or an ONNX session.
        self.network = self.model
        if self.options.runtime == "onnxruntime":
            if self.device.type != "cpu":
                raise ValueError("runtime='onnxruntime' runs on the CPU; use device='cpu'")
            self.precision = "fp32"
            self.network = OnnxNetwork(self.model, self.options.input_size)
        elif self.options.fuse:
            self.network = fold_batch_norms(self.model).to(memory_format=torch.channels_last)
        # The grouping in force ("limbs" or "tags"); a head the model lacks is refused now.
        self.grouping = resolve_grouping(
            self.settings.grouping,
            has_tags=model.tag_channels > 0,
            has_limbs=model.limb_head is not None,
        )
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

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

        occlupose checkpoints carry their preset, keypoint set and decoding. For
        official HigherHRNet files give ``preset`` (e.g. "higherhrnet_w32_512"); the
        keypoint set is then inferred from the number of joints (17: COCO, 14:
        CrowdPose) unless given. Options left at None / "auto" take the checkpoint's
        input size (else the preset's) and decoding (:func:`default_decoding`: official
        for official files). A pose prior saved with the weights completes the people
        found, unless ``use_pose_prior`` is False.
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
        options = options or PredictorOptions()
        options = dataclasses.replace(
            options,
            input_size=options.input_size or meta.get("input_size", PRESETS[preset].input_size),
            decoding=default_decoding(preset, meta)
            if options.decoding == "auto"
            else options.decoding,
        )
        convention = checkpoint_pixel_convention(meta)
        if options.decode is None and convention is not None:
            # The convention follows the training targets whatever the pipeline.
            defaults = (
                DecodeSettings.official() if options.decoding == "official" else DecodeSettings()
            )
            decode = dataclasses.replace(defaults, pixel_convention=convention)
            options = dataclasses.replace(options, decode=decode)
        pose_prior = PosePrior.from_metadata(meta) if use_pose_prior else None
        return cls(model, keypoint_set, options, device=device, half=half, pose_prior=pose_prior)

    def _resolve_precision(self) -> str:
        """``"fp32"``, ``"bf16"`` (CPU autocast) or ``"fp16"`` (CUDA half)."""
        if self.half:
            return "fp16"
        wanted = self.options.precision
        if self.device.type != "cpu":
            if wanted == "bf16":
                raise ValueError("precision='bf16' is for CPUs; on CUDA use half=True")
            return "fp32"
        native = cpu_has_native_bf16()
        if wanted == "bf16" and not native:
            logger.warning(
                "precision bf16: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX) "
                "and would emulate them about ten times slower; running in float32"
            )
            return "fp32"
        if wanted == "auto":
            return "bf16" if native and self.options.decoding != "official" else "fp32"
        return wanted

    def update_settings(self, **changes) -> None:
        """Change some decode settings (e.g. ``min_score=0.05``), keeping the others."""
        settings = dataclasses.replace(self.settings, **changes)
        if self.options.decoding == "official":
            _check_official(self.model, self.keypoint_set, settings)
        self.settings = settings
        self.options = dataclasses.replace(self.options, decode=settings)

    # -- the pipeline ---------------------------------------------------------------

    @torch.inference_mode()
    def maps(self, image: np.ndarray) -> tuple[MergedMaps, np.ndarray]:
        """Merged maps of an RGB uint8 image and the matrix from network-input pixels
        (of the base canvas) to image pixels: what :func:`decode_people` takes."""
        (result,) = self.maps_batch([image])
        return result

    @torch.inference_mode()
    def maps_batch(self, images: Sequence[np.ndarray]) -> list[tuple[MergedMaps, np.ndarray]]:
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
        if self.options.decoding == "official":
            return self._official_maps(images)
        return self._occlupose_maps(images)

    def _run(self, canvases: Sequence[np.ndarray]) -> tuple[PoseOutputs, PoseOutputs | None]:
        """Network outputs for a batch of canvases (and of their mirror images)."""
        x = torch.cat([self._to_tensor(canvas) for canvas in canvases])
        if self.options.flip:
            x = torch.cat([x, x.flip(3)])
        if self.options.fuse and self.options.runtime == "torch":
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if self.precision == "bf16"
            else contextlib.nullcontext()
        )
        with autocast:
            outputs = self.network(x)
        if not self.options.flip:
            return outputs, None
        count = len(canvases)
        return outputs.subset(slice(0, count)), outputs.subset(slice(count, 2 * count))

    def _official_maps(self, images: Sequence[np.ndarray]) -> list[tuple[MergedMaps, np.ndarray]]:
        opts, count = self.options, len(images)
        height, width = images[0].shape[:2]
        geometry = official_canvases(width, height, opts.input_size, opts.scales)
        views: list[list] = [[] for _ in images]
        # Largest scale first, as the official code runs them (the sum's order).
        for scale in sorted(opts.scales, reverse=True):
            size = geometry.sizes[scale]
            matrix = official_warp(geometry.center, geometry.scale, size)
            outputs, mirrored = self._run([warp_canvas(im, matrix, size) for im in images])
            for i in range(count):
                one = slice(i, i + 1)
                views[i].append(
                    (
                        scale,
                        outputs.subset(one),
                        None if mirrored is None else mirrored.subset(one),
                    )
                )
        base_w, base_h = geometry.base_size
        to_image = official_warp(geometry.center, geometry.scale, geometry.base_size, inverse=True)
        flip_index = self.keypoint_set.flip_index
        return [(merge_passes_official(v, flip_index, (base_h, base_w)), to_image) for v in views]

    def _occlupose_maps(self, images: Sequence[np.ndarray]) -> list[tuple[MergedMaps, np.ndarray]]:
        opts, count = self.options, len(images)
        height, width = images[0].shape[:2]
        base = min(opts.input_size / min(height, width), opts.max_side / max(height, width))
        # The base view: scale 1 if tested, else the first scale.
        base_scale = 1.0 if 1.0 in opts.scales else opts.scales[0]
        passes: list[list[NetworkPass]] = [[] for _ in images]
        views = {}
        for scale in opts.scales:
            short = max(32, round(min(height, width) * base * scale))
            views[scale] = [resize_short_side(im, short, size_divisor=32) for im in images]
            outputs, mirrored = self._run([view.image for view in views[scale]])
            canvas_h, zoom = views[scale][0].image.shape[0], scale / base_scale
            for i in range(count):
                one = slice(i, i + 1)
                passes[i].append(NetworkPass(outputs.subset(one), canvas_h, zoom))
                if mirrored is not None:
                    flipped = flip_back_outputs(mirrored.subset(one), self.keypoint_set)
                    passes[i].append(NetworkPass(flipped, canvas_h, zoom))
        # Merge on the finest maps of the base view (1/2 resolution for HigherHRNet).
        base_index = list(opts.scales).index(base_scale) * (2 if opts.flip else 1)
        results = []
        for i in range(count):
            base_view = views[base_scale][i]
            size = tuple(passes[i][base_index].outputs.final_heatmaps[-1].shape[-2:])
            stride = base_view.image.shape[0] / size[0]
            merged = merge_passes(passes[i], size, stride)
            results.append((merged, np.linalg.inv(base_view.matrix)))
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

    def _people(self, maps: MergedMaps, to_image: np.ndarray) -> list[Person]:
        return decode_people(
            maps, self.keypoint_set, self.settings, to_image=to_image, pose_prior=self.completer
        )

    def _to_tensor(self, image: np.ndarray) -> torch.Tensor:
        # The official normalisation, in its order: x / 255, then (x - mean) / std.
        x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        x = (x.permute(2, 0, 1)[None].float() / 255.0 - self._mean) / self._std
        return x.half() if self.half else x


def _check_official(model: HRGRNet, keypoint_set: KeypointSet, settings: DecodeSettings) -> None:
    """Refuse official decoding for models and keypoints the official code cannot decode."""
    if model.limb_head is not None:
        raise ValueError(
            "decoding='official' is HigherHRNet's tag grouping; this model has a limb-field "
            "head: use decoding='occlupose'"
        )
    if model.tag_channels != model.num_joints:
        raise ValueError(
            "decoding='official' needs one associative-embedding tag map per joint; this "
            f"model has {model.tag_channels} tag channels: use decoding='occlupose'"
        )
    if keypoint_set.name not in OFFICIAL_KEYPOINT_SETS:
        raise ValueError(
            "decoding='official' exists for the keypoint sets "
            f"{', '.join(OFFICIAL_KEYPOINT_SETS)}, not {keypoint_set.name!r}: "
            "use decoding='occlupose'"
        )
    if settings.grouping != "tags":
        raise ValueError(f"decoding='official' groups by tags, not {settings.grouping!r}")


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
