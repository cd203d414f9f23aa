"""Evaluation: COCO and CrowdPose metrics, accuracy under occlusion."""
