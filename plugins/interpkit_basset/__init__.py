"""Bundled plugin: the Basset architecture (Kelley et al. 2016) for Kipoi's PyTorch weights.

Registers the architecture ``basset``: ``interpkit.load("pretrained_model_reloaded_th.pth",
arch="basset")`` builds the network in Kipoi's exact state_dict layout, loads the weights
strictly (weights only), checks the file's md5 against Kipoi's, and hands the module to the
``torch`` backend with input layout (N, 4, 600, 1) and the 164 target names.
"""

from __future__ import annotations

from pathlib import Path

from interpkit import ModelSpec, hookimpl

__all__ = ["TARGET_NAMES_FILE", "register_models", "target_names"]

#: Basset's 164 target (cell type) names, one per line, from github.com/davek44/Basset (MIT); see data/SOURCE.txt.
TARGET_NAMES_FILE = Path(__file__).with_name("data") / "targets.txt"


def target_names() -> tuple[str, ...]:
    """Basset's 164 output names in output order (e.g. "8988T", "AoSMC", ..., "PANC")."""
    return tuple(line.strip() for line in TARGET_NAMES_FILE.read_text().splitlines() if line.strip())


@hookimpl
def register_models() -> list[ModelSpec]:
    """The Basset architecture."""
    return [
        ModelSpec(
            name="basset",
            backend="torch",
            load="interpkit_basset.model:load",
            summary="Basset DNase-seq accessibility CNN, 600 bp -> 164 cell types (Kipoi PyTorch weights).",
            source="Kelley, Snoek & Rinn (2016) Genome Res. 26:990-999; Kipoi Basset "
                   "(kipoi/models Basset/pretrained_model_reloaded_th.py, zenodo 1466068).",
            # The module carries the 164 target names as ``output_names``, so labels= can replace them.
            backend_options={"layout": "NCL1", "length": 600},
        )
    ]
