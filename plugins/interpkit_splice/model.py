"""Loaders for ``arch="openspliceai"`` and ``arch="pangolin"``: strict, weights only."""

from __future__ import annotations

import re
from typing import Any

from interpkit_torch.checkpoint import checkpoint_info, load_strict, read_state_dict

from interpkit.errors import InputError

__all__ = ["load_openspliceai", "load_pangolin"]


def _unit_widths(state: dict[str, Any], pattern: str) -> list[int]:
    found = sorted((int(m[1]), tuple(v.shape)[-1]) for k, v in state.items() if (m := re.fullmatch(pattern, k)))
    return [w for _, w in found]


def load_openspliceai(source: Any) -> Any:
    """Build OpenSpliceAI for a checkpoint (flank inferred from its kernel widths) and load it strictly.

    Parameters
    ----------
    source : path-like, state_dict or nn.Module
        E.g. ``model_80nt_rs10.pt`` from OpenSpliceAI's models/openspliceai-mane.

    Returns
    -------
    nn.Module
        In eval mode; output (N, 3, L) per position, ``output_names`` non_splice/acceptor/donor.

    Raises
    ------
    MissingFileError, InputError
        For a missing or unreadable file, or keys/shapes that are not OpenSpliceAI's.
    """
    from interpkit_splice.architecture import OpenSpliceAI

    state, label = read_state_dict(source, arch="openspliceai")
    widths = _unit_widths(state, r"residual_units\.(\d+)\.conv1\.weight")
    if not widths:
        raise InputError(f"{label} has no residual_units.*.conv1.weight keys; it is not an OpenSpliceAI checkpoint.")
    module = load_strict(OpenSpliceAI(widths), state, label=label, arch="openspliceai")
    module.checkpoint_info = {**checkpoint_info(source, {}), "context_bp": module.crop * 2}
    return module


def load_pangolin(source: Any) -> Any:
    """Build Pangolin and load a checkpoint strictly (e.g. ``final.1.0.3.v2``).

    Returns
    -------
    nn.Module
        In eval mode; output (N, 12, L - 10000) per position.

    Raises
    ------
    MissingFileError, InputError
        For a missing or unreadable file, or keys/shapes that are not Pangolin's.
    """
    from interpkit_splice.architecture import Pangolin

    state, label = read_state_dict(source, arch="pangolin")
    module = load_strict(Pangolin(), state, label=label, arch="pangolin")
    module.checkpoint_info = {**checkpoint_info(source, {}), "context_bp": module.crop * 2}
    return module
