"""Load ExplaiNN checkpoints of the reference code, hyper-parameters inferred from tensor shapes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from interpkit_torch.checkpoint import checkpoint_info, load_strict, read_state_dict

from interpkit.errors import InputError
from interpkit.training import read_sidecar, sidecar_path
from interpkit.validation import check_scalar

__all__ = ["infer_hyperparameters", "load", "load_module"]

_ARCH = "explainn"


def infer_hyperparameters(state: Mapping[str, Any], *, length: int | None = None, pool_size: int = 7,
                          pool_stride: int = 7, label: str = "the state_dict given") -> dict[str, int]:
    """ExplaiNN's constructor arguments, read from a reference-layout state_dict.

    Units U and filter size F come from ``linears.0.weight`` (U, 4, F), outputs T from
    ``final.weight`` (T, U), ``num_fc`` from which layers exist, the hidden width from
    ``linears.6.weight`` and the input length from the P pooled positions per unit that
    ``linears.6.weight`` (., P, 1) expects: every L with floor((L - F + 1 - pool) / stride) + 1 == P
    fits, and the smallest, F - 1 + pool + (P - 1) * stride, is taken unless ``length`` is given.

    Parameters
    ----------
    state : mapping of str to Tensor
    length : int or None
        Input length in bp; required when ``num_fc == 0`` (a global max-pool fixes no length).
        Default is None (inferred).
    pool_size, pool_stride : int
        The units' max-pool window and stride in bp (not stored in checkpoints). Default is 7, 7
        (the reference's defaults).
    label : str
        Names the checkpoint in messages.

    Returns
    -------
    dict
        ``num_units``, ``input_length``, ``num_classes``, ``filter_size``, ``num_fc``,
        ``pool_size``, ``pool_stride``, ``hidden``: the arguments of
        :class:`~interpkit_explainn.architecture.ExplaiNN`.

    Raises
    ------
    InputError
        If the state_dict is not ExplaiNN's, ``length`` does not fit it, or it is needed and missing.
    """
    conv, final = state.get("linears.0.weight"), state.get("final.weight")
    if conv is None or final is None or conv.ndim != 3 or conv.shape[1] != 4 or final.ndim != 2:
        found = {k: tuple(state[k].shape) for k in ("linears.0.weight", "final.weight") if k in state}
        raise InputError(f"{label} is not an ExplaiNN state_dict: it needs linears.0.weight of shape (units, 4, "
                         f"filter size) and final.weight (outputs, units); found {found or 'neither'}.")
    units, _, filter_size = (int(n) for n in conv.shape)
    blocks = {k.split(".")[1] for k in state if k.startswith("linears_bg.")}
    num_fc = 2 + len(blocks) if blocks else 2 if "linears.10.weight" in state else int("linears.6.weight" in state)
    hidden = int(state["linears.6.weight"].shape[0]) // units if num_fc >= 2 else 100
    params = {"num_units": units, "num_classes": int(final.shape[0]), "filter_size": filter_size,
              "num_fc": num_fc, "pool_size": pool_size, "pool_stride": pool_stride, "hidden": hidden}
    if num_fc == 0:
        if length is None:
            raise InputError(f"{label} is an ExplaiNN without per-unit layers (num_fc=0), whose global max-pool "
                             "fixes no input length; pass length= (--length) in bp.")
        return {**params, "input_length": length}
    pooled = int(state["linears.6.weight"].shape[1])
    shortest = filter_size - 1 + pool_size + (pooled - 1) * pool_stride
    if length is not None and not shortest <= length < shortest + pool_stride:
        raise InputError(f"length={length} does not fit {label}: its units pool {pooled} positions (filter "
                         f"{filter_size}, pool {pool_size}/{pool_stride}), which takes inputs of {shortest} to "
                         f"{shortest + pool_stride - 1} bp; pass a length in that range or the right "
                         "pool_size/pool_stride.")
    return {**params, "input_length": shortest if length is None else length}


def load_module(source: Any, *, length: int | None = None, pool_size: int | None = None,
                pool_stride: int | None = None) -> Any:
    """Build ExplaiNN for a reference-layout state_dict and load it strictly.

    Parameters
    ----------
    source : path-like, state_dict or nn.Module
        A ``torch.save(model.state_dict(), path)`` file of the reference code (e.g.
        ``model_epoch_best_4.pth``; CUDA-saved files load on the CPU) or an interpkit ExplaiNN.
        For a checkpoint written by ``interpkit train`` the record ``model.json`` beside it gives
        the input length, pool sizes, output names and alphabet (``data_alphabet``).
    length, pool_size, pool_stride
        As :func:`infer_hyperparameters`; None (the default) takes the recorded value, else
        the length is inferred and the pool is 7/7 (the reference's defaults).

    Returns
    -------
    ExplaiNN
        In eval mode, on the CPU, with ``options`` (the hyper-parameters) and ``checkpoint_info``.

    Raises
    ------
    InputError
        If the file is unreadable, not ExplaiNN's, or its keys or shapes do not fit the inferred
        hyper-parameters (the message names missing, unexpected and wrongly shaped keys).
    """
    from interpkit_explainn.architecture import ExplaiNN

    recorded, targets, alphabet = _record(source)
    length = recorded.get("input_length") if length is None else length
    pool_size = recorded.get("pool_size", 7) if pool_size is None else pool_size
    pool_stride = recorded.get("pool_stride", 7) if pool_stride is None else pool_stride
    if length is not None:
        length = check_scalar(length, "length", int, min_val=1)
    pool_size = check_scalar(pool_size, "pool_size", int, min_val=1)
    pool_stride = check_scalar(pool_stride, "pool_stride", int, min_val=1)
    state, label = read_state_dict(source, arch=_ARCH)
    params = infer_hyperparameters(state, length=length, pool_size=pool_size, pool_stride=pool_stride, label=label)
    model = load_strict(ExplaiNN(**params), state, label=label, arch=_ARCH)
    model.checkpoint_info = checkpoint_info(source, {})
    if targets is not None:
        model.output_names = targets
        model.data_alphabet = alphabet  # an ExplaiNN trained on RNA reads ACGU
    return model


def _record(source: Any) -> tuple[dict[str, Any], list[str] | None, str]:
    """Hyper-parameters, output names and alphabet from the ``model.json`` of an interpkit-trained checkpoint.

    Returns ({}, None, "ACGT") when there is none, or it is another architecture's.

    Raises
    ------
    InputError
        If the record's fields have the wrong types (a damaged or hand-edited file); the message names it.
    """
    record = read_sidecar(source) if isinstance(source, (str, os.PathLike)) else None
    if not record or record["arch"] != _ARCH:
        return {}, None, "ACGT"
    where = f"{sidecar_path(source).name} beside {os.path.basename(source)}"
    hyper, targets, alphabet = record.get("hyperparameters"), record.get("targets"), record.get("alphabet", "ACGT")
    if not isinstance(hyper, Mapping):
        raise InputError(f"{where}: 'hyperparameters' is {type(hyper).__name__}, not a mapping of ExplaiNN's "
                         "arguments; fix the file or move it away (the shapes in the checkpoint then decide).")
    for key in ("input_length", "pool_size", "pool_stride"):
        if key in hyper:
            check_scalar(hyper[key], f"{where}: hyperparameters.{key}", int, min_val=1)
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise InputError(f"{where}: 'targets' must be a list of output names, not {type(targets).__name__}; fix "
                         "the file or move it away.")
    if alphabet not in ("ACGT", "ACGU"):
        raise InputError(f"{where}: 'alphabet' is {alphabet!r}, must be 'ACGT' or 'ACGU'; fix the file or move it "
                         "away.")
    return dict(hyper), targets, alphabet


def load(source: Any, *, length: int | None = None, pool_size: int | None = None, pool_stride: int | None = None,
         **options: Any) -> Any:
    """``interpkit.load(path, arch="explainn")``: an ExplaiNN checkpoint as a torch-backend Predictor.

    The input length is inferred from the checkpoint (:func:`infer_hyperparameters`), so this
    loader hands the module to the ``torch`` backend itself, with layout "NCL" and that length.

    Parameters
    ----------
    source, length, pool_size, pool_stride
        As :func:`load_module`.
    **options
        Options of the torch backend (``output_names``, ``labels``, ``device``, ``batch_size``, ...).

    Returns
    -------
    Predictor

    Raises
    ------
    InputError
        As :func:`load_module`, or for options the torch backend does not take.
    PluginError
        If no ``torch`` backend is registered.
    """
    from interpkit.api import load as load_model

    module = load_module(source, length=length, pool_size=pool_size, pool_stride=pool_stride)
    defaults = {"layout": "NCL", "alphabet": getattr(module, "data_alphabet", None)}
    return load_model(module, backend="torch", **{**defaults, **options, "length": module.input_length})
