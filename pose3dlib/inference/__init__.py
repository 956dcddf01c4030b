"""Inference for users: the demo on photos, folders and videos, the person search, NPY/CSV/BVH
exports and the ONNX export."""
