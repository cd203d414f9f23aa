from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from occlupose.data.augment import ColorJitter, RandomAffine
from occlupose.data.bottom_up import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BottomUpPoseDataset,
    prepare_batch,
)
from occlupose.data.datasets import load_coco_keypoints, load_crowdpose
from occlupose.data.occluders import SyntheticOccluders
from occlupose.structures.keypoint_set import COCO_KEYPOINTS, CROWDPOSE_KEYPOINTS

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def coco():
    return load_coco_keypoints(
        HERE / "coco_subset" / "person_keypoints_subset.json", HERE / "coco_subset" / "images"
    )


def _index(records, image_id: int) -> int:
    return next(i for i, r in enumerate(records) if r.image_id == image_id)


def test_sample_fields_and_shapes(coco):
    dataset = BottomUpPoseDataset(coco, COCO_KEYPOINTS, input_size=256, max_people=30)
    sample = dataset[_index(coco, 40083)]
    assert sample["image"].shape == (3, 256, 256) and sample["image"].dtype == torch.float32
    assert [tuple(h.shape) for h in sample["heatmaps"]] == [(17, 64, 64), (17, 128, 128)]
    assert [tuple(h.shape) for h in sample["complete_heatmaps"]] == [(17, 64, 64), (17, 128, 128)]
    assert [tuple(m.shape) for m in sample["masks"]] == [(64, 64), (128, 128)]
    assert sample["joints"].shape == (30, 17, 2) and sample["joints"].dtype == torch.int64
    assert sample["limb_fields"].shape == (2 * COCO_KEYPOINTS.num_limbs, 64, 64)
    assert sample["keypoints"].shape == (30, 17, 3) and sample["hidden"].shape == (30, 17)
    assert sample["joint_weights"].shape == (17,)
    assert int(sample["num_people"]) == 2  # 3 annotations, one without keypoints
    assert int(sample["image_id"]) == 40083
    assert sample["keypoints"][2:].abs().sum() == 0


def test_targets_without_augmentation_sit_on_the_keypoints(coco):
    dataset = BottomUpPoseDataset(coco, COCO_KEYPOINTS, input_size=256)
    index = _index(coco, 785)  # 640x425, one person
    record = coco[index]
    sample = dataset[index]
    # Fitted: scale 256/640 = 0.4 about the image centre; then stride 4 (centre convention).
    scale = 0.4
    x_in = scale * (record.keypoints[0, :, 0] - 319.5) + 127.5
    y_in = scale * (record.keypoints[0, :, 1] - 212.0) + 127.5
    u, v = (x_in + 0.5) / 4 - 0.5, (y_in + 0.5) / 4 - 0.5
    heatmaps = sample["complete_heatmaps"][0].numpy()
    for j in np.flatnonzero(record.keypoints[0, :, 2] > 0):
        peak_y, peak_x = np.unravel_index(heatmaps[j].argmax(), heatmaps[j].shape)
        assert abs(peak_x - u[j]) <= 0.5 + 1e-4 and abs(peak_y - v[j]) <= 0.5 + 1e-4
        assert heatmaps[j].max() == pytest.approx(1.0, abs=0.25)
    # No occluders, no augmentation: "visible" and "complete" targets are the same.
    for visible, complete in zip(sample["heatmaps"], sample["complete_heatmaps"], strict=True):
        torch.testing.assert_close(visible, complete)
    assert not sample["hidden"].any()
    np.testing.assert_allclose(sample["keypoints"][0, :, 0].numpy(), x_in, atol=1e-3)


def test_image_is_normalised_with_imagenet_statistics(coco):
    dataset = BottomUpPoseDataset(coco, COCO_KEYPOINTS, input_size=256)
    index = _index(coco, 785)
    sample = dataset[index]
    image = coco[index].read_image()
    # The top-left input pixel is padding (black): (0 - mean) / std.
    expected = -np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(sample["image"][:, 0, 0].numpy(), expected, rtol=1e-5)
    # The centre input pixel comes from the image centre (bilinear of 4 neighbours).
    centre = image[211:214, 318:322].reshape(-1, 3).astype(float) / 255
    value = sample["image"][:, 127, 127].numpy() * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)
    assert np.all(value >= centre.min(axis=0) - 1e-3) and np.all(value <= centre.max(axis=0) + 1e-3)


def test_crowd_region_is_masked_at_every_stride(coco):
    dataset = BottomUpPoseDataset(coco, COCO_KEYPOINTS, input_size=256)
    crowd_sample = dataset[_index(coco, 204805)]
    clean_sample = dataset[_index(coco, 785)]
    record = coco[_index(coco, 204805)]
    x, y, w, h = record.boxes[record.iscrowd][0]  # crowd box [382, 138, 45, 48] in 500x346
    scale = 256 / 500
    for stride, mask in zip((4, 2), crowd_sample["masks"], strict=True):
        cx_in = scale * (x + w / 2 - 249.5) + 127.5
        cy_in = scale * (y + h / 2 - 172.5) + 127.5
        u, v = (cx_in + 0.5) / stride - 0.5, (cy_in + 0.5) / stride - 0.5
        assert mask[round(v), round(u)] == 0
        assert 0 < (mask == 0).float().mean() < 0.2
    assert all(bool((m == 1).all()) for m in clean_sample["masks"])


def test_occluded_joints_leave_the_visible_heatmaps_only(coco):
    dataset = BottomUpPoseDataset(
        coco,
        COCO_KEYPOINTS,
        input_size=256,
        occluders=SyntheticOccluders(probability=1.0, max_occluders=3, size_range=(0.4, 0.8)),
        seed=0,
    )
    index = _index(coco, 785)  # one person: no other peak of the same joint nearby
    found = 0
    for epoch in range(6):
        dataset.set_epoch(epoch)
        sample = dataset[index]
        hidden = sample["hidden"][0].numpy()
        for j in np.flatnonzero(hidden):
            x, y = sample["keypoints"][0, j, :2].numpy()
            u, v = round((x + 0.5) / 4 - 0.5), round((y + 0.5) / 4 - 0.5)
            assert sample["complete_heatmaps"][0][j, v, u] > 0.5
            assert sample["heatmaps"][0][j].max() == 0
            found += 1
        visible = ~hidden & (sample["keypoints"][0, :, 2].numpy() > 0)
        for j in np.flatnonzero(visible):
            torch.testing.assert_close(sample["heatmaps"][0][j], sample["complete_heatmaps"][0][j])
    assert found > 0


def test_v1_flags_can_count_as_hidden(coco):
    index = _index(coco, 40083)  # two people; the first has 3 joints with v=1
    record = coco[index]
    flags = record.keypoints[record.labelled][:, :, 2]
    assert (flags == 1).any()
    sample = BottomUpPoseDataset(coco, COCO_KEYPOINTS, input_size=256, v1_is_hidden=True)[index]
    for j in range(17):
        has_peak = bool(sample["heatmaps"][0][j].max() > 0)
        assert has_peak == bool((flags[:, j] == 2).any())
        assert bool(sample["complete_heatmaps"][0][j].max() > 0) == bool((flags[:, j] > 0).any())


def test_seeded_samples_are_reproducible(coco):
    def make():
        return BottomUpPoseDataset(
            coco,
            COCO_KEYPOINTS,
            input_size=256,
            augment=RandomAffine(),
            color_jitter=ColorJitter(),
            occluders=SyntheticOccluders(probability=0.5),
            seed=3,
        )

    first, second = make()[2], make()[2]
    for key in ("image", "keypoints", "hidden", "joints", "limb_fields"):
        torch.testing.assert_close(first[key], second[key])
    other_epoch = make()
    other_epoch.set_epoch(1)
    assert not torch.equal(other_epoch[2]["image"], first["image"])


def test_dataloader_batches_samples(coco):
    dataset = BottomUpPoseDataset(coco, COCO_KEYPOINTS, input_size=128, augment=RandomAffine())
    batch = next(iter(DataLoader(dataset, batch_size=3, num_workers=0)))
    assert batch["image"].shape == (3, 3, 128, 128)
    assert batch["heatmaps"][1].shape == (3, 17, 64, 64)
    assert batch["masks"][0].shape == (3, 32, 32)
    assert batch["joints"].shape == (3, 30, 17, 2)


def test_crowdpose_samples():
    dataset = load_crowdpose(
        HERE / "crowdpose_sample" / "crowdpose_sample.json", HERE / "crowdpose_sample" / "images"
    )
    # Seeded: an unseeded random crop can leave the masked person outside the input.
    samples = BottomUpPoseDataset(
        dataset,
        CROWDPOSE_KEYPOINTS,
        input_size=256,
        with_tags=False,
        augment=RandomAffine(),
        seed=0,
    )
    sample = samples[2]  # 106848: one person without keypoints, masked by its box
    assert sample["heatmaps"][0].shape == (14, 64, 64)
    assert sample["limb_fields"].shape == (2 * CROWDPOSE_KEYPOINTS.num_limbs, 64, 64)
    assert "joints" not in sample
    assert (sample["masks"][0] == 0).any()


def test_configuration_errors(coco):
    with pytest.raises(ValueError, match="2 sigmas for 1 output strides"):
        BottomUpPoseDataset(coco, COCO_KEYPOINTS, output_strides=(4,), sigmas=(2.0, 2.0))
    with pytest.raises(ValueError, match="not divisible by stride 4"):
        BottomUpPoseDataset(coco, COCO_KEYPOINTS, input_size=510)
    with pytest.raises(ValueError, match="records have 17 keypoints"):
        BottomUpPoseDataset(coco, CROWDPOSE_KEYPOINTS)


def test_compact_samples_match_after_prepare_batch(coco):
    def make(compact):
        return BottomUpPoseDataset(
            coco, COCO_KEYPOINTS, input_size=128, augment=RandomAffine(), seed=1, compact=compact
        )

    full = next(iter(DataLoader(make(False), batch_size=2)))
    compact = next(iter(DataLoader(make(True), batch_size=2)))
    assert compact["image"].dtype == torch.uint8
    assert compact["heatmaps"][0].dtype == torch.float16
    assert compact["masks"][0].dtype == torch.uint8
    restored = prepare_batch(compact, "cpu")
    torch.testing.assert_close(restored["image"], full["image"], atol=1e-5, rtol=1e-5)
    for key in ("heatmaps", "complete_heatmaps", "masks"):
        for a, b in zip(restored[key], full[key], strict=True):
            assert a.dtype == torch.float32
            torch.testing.assert_close(a, b, atol=1e-3, rtol=0)
    torch.testing.assert_close(restored["limb_fields"], full["limb_fields"], atol=1e-3, rtol=0)
    torch.testing.assert_close(restored["joints"], full["joints"])
