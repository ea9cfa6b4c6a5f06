"""Bundled plugin interpkit_explainn (work in progress: registers nothing yet)."""
