"""Evaluation: COCO/CrowdPose keypoint AP, accuracy under occlusion, reports and plots.

Quick use::

    from occlupose.evaluation import evaluate_keypoints, evaluate_results

    evaluate_keypoints("person_keypoints_val2017.json", "results.json", "coco")
    # {"AP": ..., "AP50": ..., ..., "AR_L": ...}
    report = evaluate_results("crowdpose_val.json", "results.json", "crowdpose")
    # + AP per crowd-index / overlap bin and visible vs hidden keypoint rates

Inference code evaluates ``{image_id: [Person, ...]}`` with :func:`evaluate_people`.
The score thresholds of pictures are chosen with :func:`match_people` and the sweeps
of :mod:`occlupose.evaluation.thresholds`. Any other model is tested under occlusion on
the copies :func:`write_occluded_copies` writes (``occlupose occlude``).
"""

from occlupose.evaluation.coco_eval import (
    COCO_METRIC_NAMES,
    CROWDPOSE_METRIC_NAMES,
    EvaluationProtocol,
    KeypointCOCOeval,
    evaluate_keypoints,
    get_protocol,
)
from occlupose.evaluation.completion import (
    CompletionPeople,
    completion_people,
    completion_scores,
    evaluate_completer,
    hidden_masks,
    hide_patterns,
)
from occlupose.evaluation.controlled_occlusion import OCCLUDER_KINDS, occlude_image
from occlupose.evaluation.inputs import EvaluationError
from occlupose.evaluation.occluded_dataset import load_manifests, write_occluded_copies
from occlupose.evaluation.occlusion import (
    DEFAULT_CROWD_INDEX_BINS,
    DEFAULT_OCCLUSION_BINS,
    DEFAULT_OVERLAP_BINS,
    Bin,
    ap_per_bin,
    bins_from_edges,
    covered_keypoint_localisation,
    keypoint_localisation,
    labelled_poses,
    visible_keypoint_oracle,
)
from occlupose.evaluation.report import (
    evaluate_occlusion_curve,
    evaluate_people,
    evaluate_results,
    occlusion_summary,
    people_to_results,
    report_models,
    write_report,
)
from occlupose.evaluation.thresholds import (
    PersonMatches,
    joint_threshold_sweep,
    keypoint_similarity,
    match_people,
    person_threshold_sweep,
)

__all__ = [
    "COCO_METRIC_NAMES",
    "CROWDPOSE_METRIC_NAMES",
    "DEFAULT_CROWD_INDEX_BINS",
    "DEFAULT_OCCLUSION_BINS",
    "DEFAULT_OVERLAP_BINS",
    "Bin",
    "CompletionPeople",
    "EvaluationError",
    "EvaluationProtocol",
    "KeypointCOCOeval",
    "OCCLUDER_KINDS",
    "PersonMatches",
    "ap_per_bin",
    "bins_from_edges",
    "completion_people",
    "completion_scores",
    "covered_keypoint_localisation",
    "evaluate_completer",
    "evaluate_keypoints",
    "evaluate_occlusion_curve",
    "evaluate_people",
    "evaluate_results",
    "get_protocol",
    "hidden_masks",
    "hide_patterns",
    "joint_threshold_sweep",
    "keypoint_localisation",
    "keypoint_similarity",
    "labelled_poses",
    "load_manifests",
    "match_people",
    "occlude_image",
    "occlusion_summary",
    "people_to_results",
    "person_threshold_sweep",
    "report_models",
    "visible_keypoint_oracle",
    "write_occluded_copies",
    "write_report",
]
