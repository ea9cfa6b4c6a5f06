"""Bundled plugin interpkit_keras (work in progress: registers nothing yet)."""
