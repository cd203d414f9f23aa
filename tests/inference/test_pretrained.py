"""Loading weights for the Predictor: self-describing files, official files, clear errors."""

from __future__ import annotations

import numpy as np
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


def test_a_pose_prior_saved_with_the_weights_is_loaded_with_them(
    tiny_checkpoint, tiny_widths, tmp_path
):
    from occlupose.data.synthetic.template import standing_person
    from occlupose.decode import PosePrior
    from occlupose.inference import save_pretrained

    path, model = tiny_checkpoint
    assert Predictor.from_pretrained(path).pose_prior is None
    prior = PosePrior(np.stack([standing_person(0, 0, 1.0)[:, :2]] * 3), min_known=5)
    with_prior = save_pretrained(
        model, tmp_path / "with_prior.pt", preset="hrgr_small", keypoint_set="coco",
        model_kwargs=tiny_widths, input_size=64, pose_prior=prior,
    )  # fmt: skip
    loaded = Predictor.from_pretrained(with_prior).pose_prior
    np.testing.assert_allclose(loaded.poses, prior.poses, atol=1e-6)
    assert loaded.min_known == 5
    assert Predictor.from_pretrained(with_prior, use_pose_prior=False).pose_prior is None
    with pytest.raises(ValueError, match="pose prior has 14 joints, the model 17"):
        Predictor(
            model, "coco", pose_prior=PosePrior(np.zeros((1, 14, 2)) + np.arange(14)[:, None])
        )
