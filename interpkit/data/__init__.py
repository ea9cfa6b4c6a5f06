"""Small real example data shipped with interpkit (sources and licences in SOURCE.txt)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CTCF_PEAKS"]

#: 500 GM12878 CTCF ChIP-seq peaks, 200 bp, soft-masked FASTA (gimmemotifs 0.18.4, MIT).
CTCF_PEAKS = Path(__file__).with_name("gm12878_ctcf_top500.fa")
