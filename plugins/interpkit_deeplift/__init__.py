"""Bundled plugin interpkit_deeplift (work in progress: registers nothing yet)."""
