"""Load Kipoi's DeepSEA state_dicts strictly, whichever of Kipoi's three layouts they use."""

from __future__ import annotations

from typing import Any

from interpkit_torch.checkpoint import check_keys, checkpoint_info, load_strict, read_state_dict

from interpkit.validation import check_scalar

__all__ = ["KIPOI_FILES", "load_predict", "load_variant_effects"]

#: Published DeepSEA weights: file name -> (md5, where); md5s from kipoi/models
#: DeepSEA/predict/model.yaml and DeepSEA/variantEffects/model.yaml.
KIPOI_FILES = {
    "deepsea_predict.pth": ("89e640bf6bdbe1ff165f484d9796efc7", "Kipoi DeepSEA/predict, zenodo.org/record/1466993"),
    "deepsea_variant_effects.pth": ("35956ab9c28960b5a3693f470fe980c1",
                                    "Kipoi DeepSEA/variantEffects, zenodo.org/record/1466993"),
}


def _load(source: Any, arch: str, logits: bool) -> Any:
    from interpkit_deepsea.architecture import CORE_PREFIX, DeepSEA, DeepSEAVariantEffects, deepsea_cpu

    logits = check_scalar(logits, "logits", bool)
    state, label = read_state_dict(source, arch=arch)
    model = (DeepSEA if arch == "deepsea" else DeepSEAVariantEffects)(logits=logits)
    core = {k: tuple(v.shape) for k, v in deepsea_cpu().state_dict().items()}
    layouts = {p: {p + k: s for k, s in core.items()} for p in CORE_PREFIX.values()}
    own = CORE_PREFIX[arch]
    # The same weights are published under three prefixes: take the layout the keys share most with.
    prefix = max(layouts, key=lambda p: (len(layouts[p].keys() & state.keys()), p == own))
    check_keys(layouts[prefix], state, label=label, arch=arch)
    state = {own + k[len(prefix):]: v for k, v in state.items()}
    model = load_strict(model, state, label=label, arch=arch)
    model.checkpoint_info = checkpoint_info(source, KIPOI_FILES)
    return model


def load_predict(source: Any, *, logits: bool = False) -> Any:
    """Build Kipoi's DeepSEA/predict (strand-averaged) and load DeepSEA weights into it.

    Parameters
    ----------
    source : path-like, state_dict or nn.Module
        ``deepsea_predict.pth`` (keys ``2.<i>...``); ``deepsea_variant_effects.pth`` (``1.<i>...``)
        and a bare ``deepsea_cpu`` state_dict (``<i>...``) hold the same weights and load too.
    logits : bool
        Drop the final Sigmoid (average logits over strands). Default is False.

    Returns
    -------
    DeepSEA
        In eval mode, on the CPU, with ``checkpoint_info`` (file, md5, ``verified``).

    Raises
    ------
    InputError
        If the file is unreadable or its keys or shapes differ from every Kipoi layout (the
        message names missing, unexpected and wrongly shaped keys of the closest layout).

    Warns
    -----
    InterpkitWarning
        If the file has a published file's name but another md5.
    """
    return _load(source, "deepsea", logits)


def load_variant_effects(source: Any, *, logits: bool = False) -> Any:
    """Build Kipoi's DeepSEA/variantEffects (one strand) and load DeepSEA weights into it.

    Parameters, returns, raises and warnings as :func:`load_predict`; returns a
    :class:`~interpkit_deepsea.architecture.DeepSEAVariantEffects`.
    """
    return _load(source, "deepsea-veff", logits)
