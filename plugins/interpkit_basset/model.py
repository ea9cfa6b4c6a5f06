"""Load Kipoi's Basset state_dict (``pretrained_model_reloaded_th.pth``) strictly."""

from __future__ import annotations

from typing import Any

from interpkit_torch.checkpoint import checkpoint_info, load_strict, read_state_dict

from interpkit.validation import check_scalar

__all__ = ["KIPOI_FILES", "load"]

#: Published Basset weights: file name -> (md5, where). The md5 is the one kipoi/models
#: ``Basset/model.yaml`` checks after download.
KIPOI_FILES = {
    "pretrained_model_reloaded_th.pth": (
        "4878981d84499eb575abd0f3b45570d3",
        "Kipoi Basset, zenodo.org/record/1466068 (md5 from kipoi/models Basset/model.yaml)",
    ),
}


def load(source: Any, *, logits: bool = False) -> Any:
    """Build Basset and load a Kipoi-layout state_dict into it.

    Parameters
    ----------
    source : path-like, state_dict or nn.Module
        Kipoi's ``pretrained_model_reloaded_th.pth`` or any state_dict with its keys and
        shapes (see :mod:`interpkit_basset.architecture`).
    logits : bool
        Return logits instead of probabilities (drop the final Sigmoid). Default is False.

    Returns
    -------
    Basset
        In eval mode, on the CPU, with ``checkpoint_info`` set (file, md5, and ``verified``
        True when the file is Kipoi's published one).

    Raises
    ------
    InputError
        If the file is unreadable or its keys or shapes differ from Kipoi's layout (the
        message names the missing and unexpected keys and the wrong shapes).

    Warns
    -----
    InterpkitWarning
        If the file is named ``pretrained_model_reloaded_th.pth`` but its md5 differs from
        Kipoi's.
    """
    from interpkit_basset.architecture import Basset

    logits = check_scalar(logits, "logits", bool)
    state, label = read_state_dict(source, arch="basset")
    model = load_strict(Basset(logits=logits), state, label=label, arch="basset")
    model.checkpoint_info = checkpoint_info(source, KIPOI_FILES)
    return model
