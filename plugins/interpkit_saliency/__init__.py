"""Bundled plugin interpkit_saliency (work in progress: registers nothing yet)."""
