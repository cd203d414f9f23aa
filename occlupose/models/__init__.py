"""Networks: the HRNet backbone, HigherHRNet and HRGR-Net, presets and checkpoint loading."""

from occlupose.models.attention import FusionAttention
from occlupose.models.checkpoint import (
    Checkpoint,
    CheckpointError,
    LoadReport,
    load_checkpoint_file,
    load_weights,
    read_checkpoint,
    read_state_dict,
)
from occlupose.models.completion import HeatmapCompletionGenerator, PoseDiscriminator
from occlupose.models.heads import LimbFieldHead, MultiScaleFeatureFusion
from occlupose.models.hrgr import HigherHRNet, HRGRNet, PoseOutputs, init_published
from occlupose.models.hrnet import HighResolutionModule, HighResolutionNet
from occlupose.models.pose_completion import (
    PoseCompletionGenerator,
    PoseCoordinateDiscriminator,
)
from occlupose.models.presets import (
    PRESETS,
    PresetInfo,
    create_model,
    higherhrnet_w32_512,
    higherhrnet_w48_640,
    hrgr_small,
    hrgr_w32_512,
    hrgr_w48_640,
    list_presets,
)

__all__ = [
    "PoseCompletionGenerator",
    "PoseCoordinateDiscriminator",
    "Checkpoint",
    "PRESETS",
    "CheckpointError",
    "FusionAttention",
    "HRGRNet",
    "HeatmapCompletionGenerator",
    "HighResolutionModule",
    "HighResolutionNet",
    "HigherHRNet",
    "LimbFieldHead",
    "LoadReport",
    "load_checkpoint_file",
    "MultiScaleFeatureFusion",
    "PoseDiscriminator",
    "PoseOutputs",
    "PresetInfo",
    "create_model",
    "higherhrnet_w32_512",
    "higherhrnet_w48_640",
    "hrgr_small",
    "hrgr_w32_512",
    "hrgr_w48_640",
    "init_published",
    "list_presets",
    "load_weights",
    "read_checkpoint",
    "read_state_dict",
]
