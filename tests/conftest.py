"""Shared fixtures: where ../shared lives, and small known-answer inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder beside the checkout (real checkpoints and data); CI has it too."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: tests need ../shared beside the checkout.")
    return SHARED


@pytest.fixture(scope="session")
def ctcf_fasta() -> Path:
    """500 GM12878 CTCF ChIP-seq peaks, 200 bp, soft-masked (gimmemotifs, MIT), as shipped in the package."""
    from interpkit.data import CTCF_PEAKS

    return CTCF_PEAKS
