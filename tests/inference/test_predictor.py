"""The Predictor, end to end: ideal network maps of known poses come back as those poses.

A stub network renders perfect heatmaps, tags and limb fields for known people
given in original-image pixels, through the same resize the Predictor applies;
it recognises a mirrored input by a white marker in the image's top-left corner.
Whatever the Predictor gets wrong (resizing, flip test, merging resolutions or
scales, grouping, projection back to the image) moves the recovered joints.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from occlupose.data.synthetic.template import standing_person
from occlupose.data.targets import render_heatmaps, render_limb_fields, render_tag_maps
from occlupose.decode import DecodeSettings
from occlupose.inference import Predictor, PredictorOptions
from occlupose.structures import COCO_KEYPOINTS, PoseOutputs

IMAGE_H, IMAGE_W = 200, 300


PEOPLE = np.stack([standing_person(80, 100, 150), standing_person(200, 110, 120)])


class IdealNetwork(nn.Module):
    """Outputs the maps a perfectly trained HRGR-Net would give for ``PEOPLE``."""

    num_joints = 17
    tag_channels = 17
    output_strides = (4, 2)

    def __init__(self, people: np.ndarray, with_limbs: bool) -> None:
        super().__init__()
        self.people = people
        self.limb_head = nn.Identity() if with_limbs else None

    def forward(self, x: torch.Tensor) -> PoseOutputs:
        outputs = [self._render(image) for image in x]
        stack = lambda i: torch.stack([o[i] for o in outputs])  # noqa: E731
        quarter, half = stack(0), stack(1)
        limbs = stack(3) if self.limb_head is not None else None
        return PoseOutputs([quarter, half], stack(2), limbs, None, torch.zeros_like(quarter))

    def _render(self, image: torch.Tensor):
        h, w = image.shape[-2:]
        scale = h / IMAGE_H  # the test sizes make the resize exact, without padding
        people = self.people.copy()
        people[..., :2] = scale * (people[..., :2] + 0.5) - 0.5  # input pixel centres
        if image[0, 2, -3] > image[0, 2, 2]:  # marker on the right: mirrored input
            people[..., 0] = w - 1 - people[..., 0]
            people = people[:, list(COCO_KEYPOINTS.flip_index)]
        maps = []
        for stride in (4, 2):
            at = people.copy()
            at[..., :2] = (at[..., :2] + 0.5) / stride - 0.5
            maps.append(render_heatmaps(at, (h // stride, w // stride), sigma=2.0))
        at = people.copy()
        at[..., :2] = (at[..., :2] + 0.5) / 4 - 0.5
        tag_values = 2.0 * np.arange(len(at)) - 1.0
        tags = render_tag_maps(at, tag_values, (h // 4, w // 4), radius=3)
        limbs = render_limb_fields(at, COCO_KEYPOINTS.limbs, (h // 4, w // 4), width=1.5)
        return [torch.from_numpy(np.asarray(m, np.float32)) for m in (*maps, tags, limbs)]


def _image() -> np.ndarray:
    image = np.full((IMAGE_H, IMAGE_W, 3), 90, np.uint8)
    image[:8, :8] = 255  # orientation marker (see IdealNetwork)
    return image


def _match(found, expected, min_score=0.5):
    assert len(found) == len(expected)
    errors = []
    for person in expected:
        best = min(found, key=lambda p: np.abs(p.keypoints[:, :2] - person[:, :2]).mean())
        errors.append(np.abs(best.keypoints[:, :2] - person[:, :2]).max())
        assert (best.keypoints[:, 2] > min_score).all()
    return max(errors)


@pytest.mark.parametrize("grouping", ["tags", "limbs"])
@pytest.mark.parametrize("flip", [False, True])
def test_recovers_known_people(grouping, flip):
    network = IdealNetwork(PEOPLE, with_limbs=grouping == "limbs")
    options = PredictorOptions(input_size=128, flip=flip, decode=DecodeSettings(grouping=grouping))
    people = Predictor(network, COCO_KEYPOINTS, options).predict(_image())
    # 1 px at the 1/2 maps of a 128-pixel input is 200/128 px in the image.
    assert _match(people, PEOPLE) < 1.6
    assert all(0 < p.score <= 1 for p in people)
    x0, y0, x1, y1 = people[0].box
    assert x0 < x1 and y0 < y1


def test_multi_scale_views_are_merged_in_place():
    network = IdealNetwork(PEOPLE, with_limbs=True)
    options = PredictorOptions(input_size=128, scales=(1.0, 2.0), flip=True)
    people = Predictor(network, COCO_KEYPOINTS, options).predict(_image())
    assert _match(people, PEOPLE) < 1.6


def test_an_image_without_people_gives_no_people():
    network = IdealNetwork(PEOPLE[:0], with_limbs=True)
    predictor = Predictor(network, COCO_KEYPOINTS, PredictorOptions(input_size=128))
    assert predictor.predict(_image()) == []
    assert predictor.predict([_image(), _image()]) == [[], []]


def test_grouping_must_match_the_heads():
    with pytest.raises(ValueError, match="limb-field head"):
        Predictor(
            IdealNetwork(PEOPLE, with_limbs=False),
            "coco",
            PredictorOptions(decode=DecodeSettings(grouping="limbs")),
        )
    with pytest.raises(ValueError, match="half precision needs a CUDA"):
        Predictor(IdealNetwork(PEOPLE, with_limbs=False), "coco", half=True)
    with pytest.raises(ValueError, match="17 joints"):
        Predictor(IdealNetwork(PEOPLE, with_limbs=False), "crowdpose")


def test_batched_frames_give_the_maps_and_people_of_single_images(tiny_checkpoint):
    path, _ = tiny_checkpoint
    predictor = Predictor.from_pretrained(
        path,
        options=PredictorOptions(
            input_size=64, flip=True, decode=DecodeSettings(detection_threshold=0.0)
        ),
    )
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8) for _ in range(3)]
    other = rng.integers(0, 256, (80, 48, 3), dtype=np.uint8)  # another size: own batch
    batch_sizes = []
    hook = predictor.network.register_forward_hook(
        lambda module, args, out: batch_sizes.append(args[0].shape[0])
    )
    batched = predictor.maps_batch(frames)
    assert batch_sizes == [6]  # 3 frames and their mirrors in one run
    for frame, (maps, to_image) in zip(frames, batched, strict=True):
        single, single_to_image = predictor.maps(frame)
        torch.testing.assert_close(maps.heatmaps, single.heatmaps, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(maps.limbs, single.limbs, atol=1e-5, rtol=1e-4)
        np.testing.assert_array_equal(to_image, single_to_image)
    # Images of one size are batched up to batch_size; a size change starts a new batch.
    batch_sizes.clear()
    people = predictor.predict([*frames, other, frames[0]], batch_size=2)
    assert batch_sizes == [4, 2, 2, 2]
    hook.remove()
    expected = [predictor.predict_image(image) for image in [*frames, other, frames[0]]]
    assert [len(p) for p in people] == [len(p) for p in expected] and len(expected[0]) > 0
    for found, wanted in zip(people, expected, strict=True):
        for a, b in zip(found, wanted, strict=True):
            np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)
    with pytest.raises(ValueError, match="images of one size"):
        predictor.maps_batch([frames[0], other])
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        predictor.predict_images(frames, batch_size=0)


def test_a_pose_prior_places_the_joints_the_network_misses():
    from occlupose.decode import PosePrior

    seen = PEOPLE.copy()
    seen[:, [9, 10, 15], 2] = 0  # no peaks for the wrists and the left ankle
    network = IdealNetwork(seen, with_limbs=True)
    options = PredictorOptions(input_size=128, flip=False, completion="none")
    plain = Predictor(network, COCO_KEYPOINTS, options).predict(_image())
    assert all((p.keypoints[[9, 10, 15], 2] == 0).all() for p in plain)
    assert all(not p.completed.any() for p in plain)
    prior = PosePrior(standing_person(0, 0, 1.0)[None, :, :2])
    options = PredictorOptions(input_size=128, flip=False, completion="prior")
    people = Predictor(network, COCO_KEYPOINTS, options, pose_prior=prior).predict(_image())
    assert _match(people, PEOPLE, min_score=0.0) < 1.6  # every joint, the missing ones too
    assert [p.score for p in people] == [p.score for p in plain]
    for p in people:
        np.testing.assert_array_equal(np.flatnonzero(p.completed), [9, 10, 15])
        assert p.keypoints[[9, 10, 15], 2].max() < p.keypoints[p.completed == 0, 2].min()


def test_the_learned_completer_is_the_default_and_places_missing_joints():
    from occlupose.decode import PoseCompleter

    seen = PEOPLE.copy()
    seen[:, [9, 10, 15], 2] = 0
    network = IdealNetwork(seen, with_limbs=True)
    predictor = Predictor(network, COCO_KEYPOINTS, PredictorOptions(input_size=128, flip=False))
    assert isinstance(predictor.completer, PoseCompleter)
    people = predictor.predict(_image())
    for p in people:
        np.testing.assert_array_equal(np.flatnonzero(p.completed), [9, 10, 15])
        assert (p.keypoints[[9, 10, 15], 2] > 0).all()
    # Within a tenth of the person's height of the truth (people are 150 and 120 px tall).
    errors = [
        np.linalg.norm(
            min(people, key=lambda p: np.abs(p.keypoints[:5, :2] - t[:5, :2]).mean()).keypoints[
                [9, 10, 15], :2
            ]
            - t[[9, 10, 15], :2],
            axis=1,
        ).max()
        for t in PEOPLE
    ]
    assert max(errors) < 15.0


def test_completion_options_and_their_errors():
    from occlupose.structures import KeypointSet

    network = IdealNetwork(PEOPLE, with_limbs=True)
    none = Predictor(network, COCO_KEYPOINTS, PredictorOptions(completion="none"))
    assert none.completer is None
    with pytest.raises(ValueError, match="completion='prior' needs a pose prior"):
        Predictor(network, COCO_KEYPOINTS, PredictorOptions(completion="prior"))
    with pytest.raises(ValueError, match="completion must be"):
        PredictorOptions(completion="gan")
    three = KeypointSet("three", ("a", "b", "c"), ((0, 1),), (0.1, 0.1, 0.1))
    network.num_joints = 3
    with pytest.raises(ValueError, match="no completer is bundled for keypoint set 'three'"):
        Predictor(network, three, PredictorOptions(completion="learned"))
    assert Predictor(network, three, PredictorOptions()).completer is None  # auto: nothing


def test_validation_and_the_predictor_decode_the_same_maps_identically():
    from occlupose.data.augment import resize_short_side
    from occlupose.engine.validation import decode_batch

    network = IdealNetwork(PEOPLE, with_limbs=True)
    # A square image: the Predictor's canvas is a square network input, as in validation.
    image = np.full((IMAGE_H, IMAGE_H, 3), 90, np.uint8)
    # Validation decodes without completion (people cut by the square frame lack joints).
    options = PredictorOptions(input_size=128, flip=False, completion="none")
    predictor = Predictor(network, COCO_KEYPOINTS, options)
    people = predictor.predict(image)
    assert len(people) == 2
    view = resize_short_side(image, 128, size_divisor=32)
    outputs = network(torch.zeros(1, 3, 128, 128))
    matrix = torch.from_numpy(view.matrix)[None]
    validated = decode_batch(
        outputs, matrix, [5], COCO_KEYPOINTS, input_size=128, settings=predictor.settings
    )[5]
    assert [p.score for p in validated] == [p.score for p in people]
    for a, b in zip(validated, people, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)


TINY_HIGHERHRNET = dict(
    stem_inplanes=8,
    stage_channels=((4, 8), (4, 8, 16), (4, 8, 16, 32)),
    stage_blocks=((1, 1), (1, 1, 1), (1, 1, 1, 1)),
    stage_modules=(1, 1, 1),
    deconv_channels=4,
    deconv_basic_blocks=1,
)


def _higherhrnet(**kwargs):
    from occlupose.models import HigherHRNet

    torch.manual_seed(0)
    return HigherHRNet(**TINY_HIGHERHRNET, **kwargs)


def test_decoding_defaults_official_for_higherhrnet_only():
    assert Predictor(_higherhrnet(), "coco").options.decoding == "official"
    assert Predictor(_higherhrnet(), "coco").settings == DecodeSettings.official()
    assert Predictor(IdealNetwork(PEOPLE, with_limbs=True), "coco").options.decoding == "occlupose"
    options = PredictorOptions(decoding="occlupose")
    assert Predictor(_higherhrnet(), "coco", options).settings == DecodeSettings()


def test_official_decoding_refuses_what_the_official_code_cannot_decode():
    official = PredictorOptions(decoding="official")
    with pytest.raises(ValueError, match="limb-field head: use decoding='occlupose'"):
        Predictor(IdealNetwork(PEOPLE, with_limbs=True), "coco", official)
    with pytest.raises(ValueError, match="one associative-embedding tag map per joint"):
        Predictor(_higherhrnet(tag_per_joint=False), "coco", official)
    from occlupose.structures import KeypointSet

    custom = KeypointSet(
        name="three",
        keypoint_names=("a", "left_b", "right_b"),
        limbs=((0, 1), (0, 2)),
        flip_pairs=((1, 2),),
        sigmas=(0.05, 0.05, 0.05),
    )
    with pytest.raises(ValueError, match="keypoint sets coco, crowdpose, not 'three'"):
        Predictor(_higherhrnet(num_joints=3), custom, official)
    with pytest.raises(ValueError, match="takes its tags from scale 1"):
        Predictor(_higherhrnet(), "coco", PredictorOptions(scales=(2.0, 0.5)))
    # A bare HigherHRNet falls back to occlupose's decoding for a custom set.
    assert Predictor(_higherhrnet(num_joints=3), custom).options.decoding == "occlupose"


def test_checkpoints_say_how_they_are_decoded(tmp_path):
    from occlupose.inference import default_decoding, save_pretrained

    assert default_decoding("higherhrnet_w32_512", {}) == "official"
    assert default_decoding("hrgr_w32_512", {}) == "official"  # an official file
    assert default_decoding("hrgr_small", {"preset": "hrgr_small"}) == "occlupose"
    assert default_decoding("higherhrnet_w32_512", {"preset": "higherhrnet_w32_512"}) == (
        "official"
    )
    assert default_decoding("hrgr_small", {"decoding": "official"}) == "official"
    trained = {"preset": "higherhrnet_w32_512", "heatmap_centres": "subpixel"}
    assert default_decoding("higherhrnet_w32_512", trained) == "occlupose"
    # An official-layout file (a bare state dict) decodes officially.
    model = _higherhrnet()
    official_file = tmp_path / "official.pth"
    torch.save(model.state_dict(), official_file)
    saved = tmp_path / "occlupose.pt"
    save_pretrained(
        model,
        saved,
        preset="higherhrnet_w32_512",
        keypoint_set="coco",
        model_kwargs=TINY_HIGHERHRNET,
        input_size=64,
        decoding="occlupose",
        pixel_convention="official",
    )
    predictor = Predictor.from_pretrained(saved)
    assert predictor.options.decoding == "occlupose" and predictor.options.input_size == 64
    assert predictor.settings == DecodeSettings(pixel_convention="official")


def test_fast_path_finds_the_people_of_the_plain_network():
    from occlupose.data.synthetic import render_scene

    image = render_scene(3, size=256, occlusion="low").image
    plain = Predictor.from_pretrained(options=PredictorOptions(precision="fp32", fuse=False))
    fast = Predictor.from_pretrained(options=PredictorOptions(precision="fp32", fuse=True))
    assert fast.network is not fast.model and plain.network is plain.model
    expected, found = plain.predict(image), fast.predict(image)
    assert len(found) == len(expected) > 0
    for a, b in zip(found, expected, strict=True):
        assert abs(a.score - b.score) < 1e-4
        visible = b.keypoints[:, 2] > 0
        np.testing.assert_array_equal(a.keypoints[:, 2] > 0, visible)
        assert np.abs(a.keypoints[visible, :2] - b.keypoints[visible, :2]).max() < 0.1


def test_bf16_without_native_support_runs_float32_and_says_so(monkeypatch, caplog):
    import occlupose.inference.predictor as predictor_module

    network = IdealNetwork(PEOPLE, with_limbs=True)
    monkeypatch.setattr(predictor_module, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level("WARNING"):
        predictor = Predictor(network, COCO_KEYPOINTS, PredictorOptions(precision="bf16"))
    assert predictor.precision == "fp32"
    assert "no bfloat16 instructions" in caplog.text
    assert Predictor(network, COCO_KEYPOINTS).precision == "fp32"  # auto
    monkeypatch.setattr(predictor_module, "cpu_has_native_bf16", lambda: True)
    assert Predictor(network, COCO_KEYPOINTS).precision == "bf16"  # auto
    official = PredictorOptions(decoding="official")
    assert Predictor(_higherhrnet(), COCO_KEYPOINTS, official).precision == "fp32"
    with pytest.raises(ValueError, match="precision must be auto, fp32 or bf16"):
        PredictorOptions(precision="fp16")


def test_onnxruntime_finds_the_people_of_torch():
    pytest.importorskip("onnxruntime")
    from occlupose.data.synthetic import render_scene

    image = render_scene(4, size=256, occlusion="low").image
    plain = Predictor.from_pretrained(options=PredictorOptions(precision="fp32", fuse=False))
    onnx = Predictor.from_pretrained(options=PredictorOptions(runtime="onnxruntime"))
    assert onnx.precision == "fp32"
    expected, found = plain.predict(image), onnx.predict(image)
    assert len(found) == len(expected) > 0
    for a, b in zip(found, expected, strict=True):
        visible = b.keypoints[:, 2] > 0
        np.testing.assert_array_equal(a.keypoints[:, 2] > 0, visible)
        assert np.abs(a.keypoints[visible, :2] - b.keypoints[visible, :2]).max() < 0.1
    with pytest.raises(ValueError, match="runtime must be torch or onnxruntime"):
        PredictorOptions(runtime="tensorrt")
