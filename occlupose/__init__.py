"""occlupose: multi-person 2D pose estimation that stays accurate under occlusion."""

__version__ = "0.1.0"
