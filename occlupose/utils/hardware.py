"""What the processor can do fast."""

from __future__ import annotations

import torch

__all__ = ["cpu_has_native_bf16"]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX).

    Elsewhere oneDNN emulates bfloat16, about ten times slower than float32.
    """
    try:
        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):  # a build without oneDNN's query
        return False
