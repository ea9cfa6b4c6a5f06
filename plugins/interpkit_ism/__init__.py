"""Bundled plugin interpkit_ism (work in progress: registers nothing yet)."""
