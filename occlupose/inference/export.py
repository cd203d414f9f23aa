"""Export of the network to ONNX (decoding stays outside, in occlupose.decode)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor, nn

from occlupose.models import HRGRNet
from occlupose.utils.io import atomic_write

__all__ = ["ExportableNetwork", "export_onnx", "verify_onnx"]


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
