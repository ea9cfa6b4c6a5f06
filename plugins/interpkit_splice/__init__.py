"""Bundled plugin: splice-site architectures OpenSpliceAI and Pangolin (``arch="openspliceai"/"pangolin"``).

Both are SpliceAI-style residual dilated CNNs published as PyTorch state_dicts; the modules
are re-implemented from the papers' descriptions and the checkpoints' key names (no upstream
code is copied) and load the published files strictly. Outputs are per position, so pick an
output reduction (``output=`` / ``--output``, e.g. ``center@1,2`` for the acceptor and donor
probabilities at the central position).
"""

from __future__ import annotations

from interpkit import ModelSpec, hookimpl

__all__ = ["register_models"]


@hookimpl
def register_models() -> list[ModelSpec]:
    """OpenSpliceAI (any flank) and Pangolin."""
    return [
        ModelSpec("openspliceai", "torch", "interpkit_splice.model:load_openspliceai",
                  "OpenSpliceAI splice-site CNN; flank (80/400/2000/10000 nt) inferred from the weights.",
                  source="Chao et al. (2025) eLife, OpenSpliceAI; SpliceAI architecture (Jaganathan et al. 2019).",
                  backend_options={"layout": "NCL"}),
        ModelSpec("pangolin", "torch", "interpkit_splice.model:load_pangolin",
                  "Pangolin splice-site CNN: P(splice) and usage for heart, liver, brain, testis.",
                  source="Zeng & Li (2022) Genome Biology 23:103.",
                  backend_options={"layout": "NCL"}),
    ]
