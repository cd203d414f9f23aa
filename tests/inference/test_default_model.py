"""The bundled default model: present, self-describing, small, and actually trained."""

from __future__ import annotations

import cv2

from occlupose.cli.demo import scene_ground_truth
from occlupose.data.synthetic import render_scene
from occlupose.evaluation import evaluate_keypoints
from occlupose.inference import DEFAULT_WEIGHTS, Predictor, resolve_weights
from occlupose.structures import COCO_KEYPOINTS


def test_default_weights_are_bundled_with_a_model_card():
    path = resolve_weights(None)
    assert path.name == f"{DEFAULT_WEIGHTS}.pt"
    assert path.stat().st_size < 20 * 2**20
    assert (path.parent / "MODEL_CARD.md").is_file()


def test_default_model_finds_people_in_unoccluded_synthetic_scenes():
    predictor = Predictor.from_pretrained()
    assert predictor.keypoint_set is COCO_KEYPOINTS and predictor.grouping == "limbs"
    assert predictor.pose_prior is not None and predictor.pose_prior.poses.shape == (2000, 17, 2)
    ground_truth = {"images": [], "annotations": [], "categories": None}
    results = []
    for i in range(8):
        scene = render_scene(100 + i, size=256, occlusion="none")
        truth = scene_ground_truth(scene, COCO_KEYPOINTS, image_id=i + 1)
        truth["images"][0]["file_name"] = f"{i}.png"
        ground_truth["images"] += truth["images"]
        ground_truth["categories"] = truth["categories"]
        for ann in truth["annotations"]:
            ann["id"] = len(ground_truth["annotations"]) + 1
            ground_truth["annotations"].append(ann)
        people = predictor.predict(cv2.cvtColor(scene.image, cv2.COLOR_BGR2RGB))
        results += [person.to_coco(i + 1) for person in people]
    # Measured 0.783 for the bundled model (0.765 and 0.490 for the runs it continues;
    # the model before them 0.409 on scenes without face marks); random weights give 0.
    assert evaluate_keypoints(ground_truth, results, "coco")["AP"] > 0.5


def test_a_preset_name_gives_its_bundled_weights():
    import occlupose

    assert resolve_weights("hrgr_small") == resolve_weights(None)
    assert occlupose.Predictor is Predictor
