"""Bundled plugin interpkit_torch (work in progress: registers nothing yet)."""
