"""Bundled plugin interpkit_deepsea (work in progress: registers nothing yet)."""
