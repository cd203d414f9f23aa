"""Evaluation: COCO/CrowdPose keypoint AP, accuracy under occlusion, reports and plots.

Quick use::

    from occlupose.evaluation import evaluate_keypoints, evaluate_results

    evaluate_keypoints("person_keypoints_val2017.json", "results.json", "coco")
    # {"AP": ..., "AP50": ..., ..., "AR_L": ...}
    report = evaluate_results("crowdpose_val.json", "results.json", "crowdpose")
    # + AP per crowd-index / overlap bin and visible vs hidden keypoint rates

Inference code evaluates ``{image_id: [Person, ...]}`` with :func:`evaluate_people`.
"""

from occlupose.evaluation.coco_eval import (
    COCO_METRIC_NAMES,
    CROWDPOSE_METRIC_NAMES,
    EvaluationProtocol,
    KeypointCOCOeval,
    evaluate_keypoints,
    get_protocol,
)
from occlupose.evaluation.controlled_occlusion import occlude_image
from occlupose.evaluation.inputs import EvaluationError
from occlupose.evaluation.occlusion import (
    DEFAULT_CROWD_INDEX_BINS,
    DEFAULT_OCCLUSION_BINS,
    DEFAULT_OVERLAP_BINS,
    Bin,
    ap_per_bin,
    bins_from_edges,
    keypoint_localisation,
    labelled_poses,
    visible_keypoint_oracle,
)
from occlupose.evaluation.report import (
    evaluate_occlusion_curve,
    evaluate_people,
    evaluate_results,
    people_to_results,
    report_models,
    write_report,
)

__all__ = [
    "COCO_METRIC_NAMES",
    "CROWDPOSE_METRIC_NAMES",
    "DEFAULT_CROWD_INDEX_BINS",
    "DEFAULT_OCCLUSION_BINS",
    "DEFAULT_OVERLAP_BINS",
    "Bin",
    "EvaluationError",
    "EvaluationProtocol",
    "KeypointCOCOeval",
    "ap_per_bin",
    "bins_from_edges",
    "evaluate_keypoints",
    "evaluate_occlusion_curve",
    "evaluate_people",
    "evaluate_results",
    "get_protocol",
    "keypoint_localisation",
    "labelled_poses",
    "occlude_image",
    "people_to_results",
    "report_models",
    "visible_keypoint_oracle",
    "write_report",
]
