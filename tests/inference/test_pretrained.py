"""Loading weights for the Predictor: self-describing files, official files, clear errors."""

from __future__ import annotations

import pytest
import torch

from occlupose.inference import Predictor, resolve_weights
from occlupose.models import CheckpointError, create_model


def test_self_describing_checkpoint_rebuilds_the_same_model(tiny_checkpoint):
    path, model = tiny_checkpoint
    predictor = Predictor.from_pretrained(path)
    assert predictor.options.input_size == 64
    assert predictor.keypoint_set.name == "coco" and predictor.grouping == "limbs"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(predictor.model(x).final_heatmaps[1], model(x).final_heatmaps[1])


def test_official_checkpoint_needs_a_preset_and_infers_the_keypoints(tmp_path):
    # An official-layout HigherHRNet-W32 CrowdPose file (14 joints, no metadata).
    official = create_model("higherhrnet_w32_512", keypoint_set="crowdpose")
    path = tmp_path / "pose_higher_hrnet_w32_512_crowdpose.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in official.state_dict().items()}}, path)
    with pytest.raises(ValueError, match="pass preset="):
        Predictor.from_pretrained(path)
    predictor = Predictor.from_pretrained(path, preset="higherhrnet_w32_512")
    assert predictor.keypoint_set.name == "crowdpose"
    assert predictor.grouping == "tags" and predictor.options.input_size == 512
    torch.testing.assert_close(predictor.model.conv1.weight, official.conv1.weight)
    with pytest.raises(CheckpointError, match="predicts 14 joints and the model 17"):
        Predictor.from_pretrained(path, preset="higherhrnet_w32_512", keypoint_set="coco")


def test_missing_weights_say_nothing_is_downloaded(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        resolve_weights(tmp_path / "pose_higher_hrnet_w32_512.pth")
