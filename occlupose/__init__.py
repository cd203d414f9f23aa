"""occlupose: multi-person 2D pose estimation that stays accurate under occlusion."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``occlupose.Predictor`` without importing torch and the models at package import.
    if name == "Predictor":
        from occlupose.inference import Predictor

        return Predictor
    raise AttributeError(f"module 'occlupose' has no attribute {name!r}")
