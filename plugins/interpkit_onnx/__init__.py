"""Bundled plugin interpkit_onnx (work in progress: registers nothing yet)."""
