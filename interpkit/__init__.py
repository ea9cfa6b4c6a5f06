"""interpkit: interpret trained genomics sequence models."""

__version__ = "0.1.0"
