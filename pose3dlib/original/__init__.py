"""Checkpoints of the original hg3d release: safe loading and conversion to pose3d checkpoints."""
