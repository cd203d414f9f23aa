"""occlupose.engine."""
