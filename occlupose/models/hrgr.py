"""HRGR-Net and HigherHRNet: bottom-up pose networks on the HRNet backbone.

HRGR-Net is HigherHRNet plus four switchable modules (fusion attention,
multi-scale feature fusion, limb fields, heatmap completion). With all of them
off it *is* HigherHRNet, parameter for parameter; each one starts as the identity
(or adds separate outputs), so an HRGR model initialised from a HigherHRNet
checkpoint computes the HigherHRNet function until training changes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from occlupose.models.completion import HeatmapCompletionGenerator
from occlupose.models.heads import (
    LimbFieldHead,
    MultiScaleFeatureFusion,
    make_deconv_stage,
    make_prediction_layer,
)
from occlupose.models.hrnet import AttentionPlacement, HighResolutionNet
from occlupose.structures.pose_outputs import PoseOutputs

__all__ = ["HRGRNet", "HigherHRNet", "PoseOutputs", "init_published"]

_W32_CHANNELS = ((32, 64), (32, 64, 128), (32, 64, 128, 256))
_W32_BLOCKS = ((4, 4), (4, 4, 4), (4, 4, 4, 4))
_W32_MODULES = (1, 4, 3)


class HRGRNet(HighResolutionNet):
    """High-Resolution feature Generation-Recovery Network.

    Backbone keyword arguments are those of :class:`HighResolutionNet`. The head
    follows HigherHRNet: a prediction layer at 1/4 resolution (heatmaps, then
    tags), its output concatenated with the features (``cat_output``), a 2x
    transposed-conv stage with BasicBlocks, and a heatmap layer at 1/2.

    Args:
        num_joints: number of keypoints J.
        tag_per_joint: one tag map per joint (True) or one shared map.
        with_tags: predict associative-embedding tags at 1/4.
        num_limbs: predict limb fields for this many limbs (0: none).
        deconv_channels: channels after each transposed convolution.
        deconv_kernel: transposed-convolution kernel (2, 3 or 4).
        deconv_basic_blocks: BasicBlocks after each transposed convolution.
        num_deconvs: number of 2x upsampling stages (HigherHRNet: 1).
        cat_output: concatenate the previous prediction to the deconv input.
        final_conv_kernel: kernel of the prediction layers (1 or 3).
        attention: :class:`FusionAttention` placement ("none", "high", "all").
        multi_scale_fusion: fuse all four branches into the 1/4 features.
        completion: add a :class:`HeatmapCompletionGenerator`.
        completion_channels: width of the generator.
        init: ``"he"``: He-normal backbone convolutions (as torchvision's ResNets),
            PyTorch's defaults in the deconvolution stage, N(0, 0.001) prediction layers;
            ``"published"``: HigherHRNet's initialisation (:func:`init_published`). The
            modules HRGR-Net adds start as the identity either way.
    """

    def __init__(
        self,
        num_joints: int = 17,
        *,
        stem_inplanes: int = 64,
        stage_channels: Sequence[Sequence[int]] = _W32_CHANNELS,
        stage_blocks: Sequence[Sequence[int]] = _W32_BLOCKS,
        stage_modules: Sequence[int] = _W32_MODULES,
        tag_per_joint: bool = True,
        with_tags: bool = True,
        num_limbs: int = 0,
        deconv_channels: int = 32,
        deconv_kernel: int = 4,
        deconv_basic_blocks: int = 4,
        num_deconvs: int = 1,
        cat_output: bool = True,
        final_conv_kernel: int = 1,
        attention: AttentionPlacement = "none",
        multi_scale_fusion: bool = False,
        completion: bool = False,
        completion_channels: int = 64,
        init: str = "he",
    ) -> None:
        if init not in ("he", "published"):
            raise ValueError(f"init must be 'he' or 'published', got {init!r}")
        super().__init__(
            stem_inplanes=stem_inplanes,
            stage_channels=stage_channels,
            stage_blocks=stage_blocks,
            stage_modules=stage_modules,
            attention=attention,
            multi_scale_output=multi_scale_fusion,
        )
        if num_joints < 1:
            raise ValueError(f"num_joints must be positive, got {num_joints}")
        if num_deconvs < 1:
            raise ValueError("the head needs at least one deconvolution stage")
        self.num_joints = num_joints
        self.num_limbs = num_limbs
        self.init = init
        self.tag_channels = (num_joints if tag_per_joint else 1) if with_tags else 0
        self.cat_output = cat_output
        channels = self.feature_info[0]["num_chs"]

        self.multi_scale_fusion = (
            MultiScaleFeatureFusion([info["num_chs"] for info in self.feature_info])
            if multi_scale_fusion
            else None
        )
        first_out = num_joints + self.tag_channels
        final_layers = [make_prediction_layer(channels, first_out, final_conv_kernel)]
        deconv_layers = []
        previous_out = first_out
        for _ in range(num_deconvs):
            in_channels = channels + (previous_out if cat_output else 0)
            deconv_layers.append(
                make_deconv_stage(in_channels, deconv_channels, deconv_kernel, deconv_basic_blocks)
            )
            final_layers.append(
                make_prediction_layer(deconv_channels, num_joints, final_conv_kernel)
            )
            channels, previous_out = deconv_channels, num_joints
        self.final_layers = nn.ModuleList(final_layers)
        self.deconv_layers = nn.ModuleList(deconv_layers)
        self.limb_head = (
            LimbFieldHead(self.feature_info[0]["num_chs"], num_limbs) if num_limbs > 0 else None
        )
        self.generator = (
            HeatmapCompletionGenerator(
                self.feature_info[0]["num_chs"], num_joints, completion_channels
            )
            if completion
            else None
        )
        if init == "published":
            init_published(self)

    @property
    def output_strides(self) -> tuple[int, ...]:
        """Stride of each heatmap resolution relative to the input (4, 2, ...)."""
        return tuple(4 // 2**i for i in range(len(self.deconv_layers) + 1))

    def forward(self, x: Tensor) -> PoseOutputs:
        """Predict heatmaps, tags, limb fields and completed heatmaps.

        Args:
            x: (B, 3, H, W) float images, ImageNet-normalised RGB, H and W multiples of 32.
        """
        branches = self.forward_features(x)
        features = (
            self.multi_scale_fusion(branches)
            if self.multi_scale_fusion is not None
            else branches[0]
        )
        first = self.final_layers[0](features)
        heatmaps = [first[:, : self.num_joints]]
        tags = first[:, self.num_joints :] if self.tag_channels else None
        y, prediction = features, first
        for deconv, final in zip(self.deconv_layers, self.final_layers[1:], strict=True):
            if self.cat_output:
                y = torch.cat([y, prediction], dim=1)
            y = deconv(y)
            prediction = final(y)
            heatmaps.append(prediction)
        limbs = self.limb_head(features) if self.limb_head is not None else None
        completed = self.generator(features, heatmaps) if self.generator is not None else None
        return PoseOutputs(heatmaps, tags, limbs, completed, features)

    def added_module_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of the modules HRGR-Net adds to HigherHRNet.

        A HigherHRNet checkpoint leaves exactly these uninitialised; the
        checkpoint loader uses this to tell expected gaps from real mismatches.
        """
        prefixes = [
            name
            for name in ("multi_scale_fusion", "limb_head", "generator")
            if getattr(self, name) is not None
        ]
        for name, module in self.named_modules():
            if name.endswith(".attention") and module is not None:
                prefixes.append(name)
        if self.multi_scale_fusion is not None:
            # The last module's extra fuse layers (HigherHRNet outputs one branch).
            last = len(self.stage4) - 1
            prefixes += [f"stage4.{last}.fuse_layers.{i}" for i in range(1, 4)]
        return tuple(prefixes)


class HigherHRNet(HRGRNet):
    """HigherHRNet (Cheng et al., CVPR 2020), faithful to the published models.

    Accepts the keyword arguments of the reference configuration (stem width,
    stage channels/blocks/modules, joints, per-joint tags, deconvolution
    settings); official checkpoints load with ``strict=True``. ``forward``
    returns :class:`PoseOutputs`; :meth:`PoseOutputs.as_higherhrnet` gives the
    published two-tensor format.
    """

    def __init__(
        self,
        num_joints: int = 17,
        *,
        stem_inplanes: int = 64,
        stage_channels: Sequence[Sequence[int]] = _W32_CHANNELS,
        stage_blocks: Sequence[Sequence[int]] = _W32_BLOCKS,
        stage_modules: Sequence[int] = _W32_MODULES,
        tag_per_joint: bool = True,
        deconv_channels: int = 32,
        deconv_kernel: int = 4,
        deconv_basic_blocks: int = 4,
        num_deconvs: int = 1,
        cat_output: bool = True,
        final_conv_kernel: int = 1,
        init: str = "published",
    ) -> None:
        super().__init__(
            num_joints,
            stem_inplanes=stem_inplanes,
            stage_channels=stage_channels,
            stage_blocks=stage_blocks,
            stage_modules=stage_modules,
            tag_per_joint=tag_per_joint,
            deconv_channels=deconv_channels,
            deconv_kernel=deconv_kernel,
            deconv_basic_blocks=deconv_basic_blocks,
            num_deconvs=num_deconvs,
            cat_output=cat_output,
            final_conv_kernel=final_conv_kernel,
            init=init,
        )


def init_published(model: HRGRNet) -> None:
    """HigherHRNet's initialisation (the published ``init_weights``), in place.

    Every ``Conv2d`` and ``ConvTranspose2d`` weight ~ N(0, 0.001) with zero biases, every
    batch norm weight 1 and bias 0, on the modules HigherHRNet has; those HRGR-Net adds
    (``added_module_prefixes``) keep their identity initialisation. The published recipes
    then load an ImageNet HRNet into the backbone, so what remains of this is the head's:
    the prediction layers, the transposed convolution and the BasicBlocks after it.
    """
    added = model.added_module_prefixes()
    for name, module in model.named_modules():
        if any(name == p or name.startswith(p + ".") for p in added):
            continue
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(module.weight, std=0.001)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
