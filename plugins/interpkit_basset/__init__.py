"""Bundled plugin interpkit_basset (work in progress: registers nothing yet)."""
