"""occlupose.decode."""
