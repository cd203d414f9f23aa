"""occlupose.utils."""
