"""Export of the network to ONNX (decoding stays outside, in occlupose.decode)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from occlupose.models import HRGRNet
from occlupose.structures import PoseOutputs
from occlupose.utils.io import atomic_write

__all__ = ["ExportableNetwork", "OnnxNetwork", "export_onnx", "verify_onnx"]


class ExportableNetwork(nn.Module):
    """The network with a flat tuple of outputs, as ONNX needs.

    Outputs, in order: the heatmaps to decode at each resolution (completed ones
    when the model has a generator), then tags and limb fields when present.
    """

    def __init__(self, model: HRGRNet) -> None:
        super().__init__()
        self.model = model
        strides = model.output_strides
        self.output_names = [f"heatmaps_stride{s}" for s in strides]
        if model.tag_channels:
            self.output_names.append("tags_stride4")
        if model.limb_head is not None:
            self.output_names.append("limbs_stride4")

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        out = self.model(image)
        extra = [t for t in (out.tags, out.limbs) if t is not None]
        return (*out.final_heatmaps, *extra)


def export_onnx(
    model: HRGRNet, path: str | os.PathLike, *, input_size: int = 512, opset: int = 17
) -> list[str]:
    """Write ``model`` to ``path`` as ONNX with dynamic batch, height and width.

    Returns:
        The output names.
    """
    wrapper = ExportableNetwork(model).eval()
    example = torch.zeros(1, 3, input_size, input_size)
    dynamic = {"image": {0: "batch", 2: "height", 3: "width"}}
    for name in wrapper.output_names:
        dynamic[name] = {0: "batch", 2: f"{name}_h", 3: f"{name}_w"}
    # Written under a temporary name and renamed when complete (atomic_write).
    atomic_write(
        path,
        lambda tmp: torch.onnx.export(
            wrapper,
            (example,),
            str(tmp),
            input_names=["image"],
            output_names=wrapper.output_names,
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        ),
    )
    return wrapper.output_names


def verify_onnx(
    model: HRGRNet, path: str | os.PathLike, *, input_size: int = 512, seed: int = 0
) -> float:
    """Largest absolute difference between onnxruntime and PyTorch on a random input
    of a size other than the export size (so the dynamic axes are exercised)."""
    import onnxruntime as ort

    generator = torch.Generator().manual_seed(seed)
    h, w = input_size + 32, input_size - 32
    x = torch.randn(2, 3, h, w, generator=generator)
    with torch.no_grad():
        expected = ExportableNetwork(model).eval()(x)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})
    return max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True))


class OnnxNetwork:
    """A model exported to ONNX and run by ONNX Runtime, called like the model.

    Returns :class:`PoseOutputs` whose heatmaps are the ones to decode (completed ones
    when the model has a generator); ``features`` is empty (ONNX exports only what the
    decoder needs).

    Args:
        model: the network (exported once, with dynamic batch and input size).
        input_size: the size of the example input of the export.
        threads: ONNX Runtime's intra-op threads (default: torch's).
    """

    def __init__(self, model: HRGRNet, input_size: int = 512, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError(
                "runtime='onnxruntime' needs the onnxruntime package: "
                "pip install onnxruntime (or occlupose[export])"
            ) from None
        self.has_tags = model.tag_channels > 0
        self.has_limbs = model.limb_head is not None
        self.num_heatmaps = len(model.output_strides)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "network.onnx"
            export_onnx(model.float().eval(), path, input_size=input_size)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads or torch.get_num_threads()
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )

    def __call__(self, image: Tensor) -> PoseOutputs:
        outputs = [torch.from_numpy(o) for o in self.session.run(None, {"image": image.numpy()})]
        heatmaps, extra = outputs[: self.num_heatmaps], outputs[self.num_heatmaps :]
        tags = extra.pop(0) if self.has_tags else None
        limbs = extra.pop(0) if self.has_limbs else None
        return PoseOutputs(heatmaps, tags, limbs, None, torch.zeros(image.shape[0], 0, 1, 1))
