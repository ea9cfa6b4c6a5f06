"""Load ResidualBind state_dicts: hyper-parameters from tensor shapes and from the ``model.json`` beside the file."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from interpkit_torch.checkpoint import checkpoint_info, load_strict, read_state_dict

from interpkit.errors import InputError, InterpkitWarning
from interpkit.validation import check_scalar

__all__ = ["DEFAULT_DILATIONS", "infer_hyperparameters", "load", "load_module", "read_record"]

_ARCH = "residualbind"
#: Dilations of the residual block by its number of convolutions (dilations are not stored in a state_dict):
#: 4 is the reference code at HEAD, 3 the block the paper's Methods describe.
DEFAULT_DILATIONS = {4: (1, 2, 4, 8), 3: (1, 2, 4)}


def _shape(state: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
    return tuple(int(n) for n in state[key].shape) if key in state else None


def _shape_hyperparameters(state: Mapping[str, Any], label: str) -> tuple[dict[str, int], dict[str, str], int]:
    """What the tensor shapes fix: (values, the tensor each comes from, flattened dense inputs)."""
    conv, dense, output = (_shape(state, k) for k in ("conv.weight", "dense.weight", "output.weight"))
    convs = 0
    while f"residual.layers.{convs}.conv.weight" in state:
        convs += 1
    residual = _shape(state, "residual.layers.0.conv.weight")
    if (conv is None or len(conv) != 3 or dense is None or len(dense) != 2 or output is None or len(output) != 2
            or residual is None or len(residual) != 3):
        found = {k: _shape(state, k) for k in ("conv.weight", "residual.layers.0.conv.weight", "dense.weight",
                                                "output.weight") if k in state}
        raise InputError(f"{label} is not a ResidualBind state_dict: it needs conv.weight (filters, channels, "
                         "kernel), residual.layers.0.conv.weight (filters, filters, kernel), dense.weight (units, "
                         f"inputs) and output.weight (outputs, units); found {found or 'none of them'}.")
    values = {"in_channels": conv[1], "filters": conv[0], "kernel_size": conv[2], "residual_kernel_size": residual[2],
              "dense_units": dense[0], "num_classes": output[0]}
    where = {"in_channels": f"conv.weight {conv}", "filters": f"conv.weight {conv}",
             "kernel_size": f"conv.weight {conv}", "residual_kernel_size": f"residual.layers.0.conv.weight {residual}",
             "dense_units": f"dense.weight {dense}", "num_classes": f"output.weight {output}",
             "dilations": f"{convs} residual.layers.*.conv.weight"}
    if dense[1] % conv[0]:
        raise InputError(f"{label} is not a ResidualBind state_dict: dense.weight {dense} takes {dense[1]} inputs, "
                         f"not a multiple of the {conv[0]} filters of conv.weight {conv}.")
    values["convs"] = convs
    return values, where, dense[1]


def infer_hyperparameters(state: Mapping[str, Any], *, length: int | None = None,
                          dilations: Sequence[int] | None = None, pool_size: int | None = None,
                          hyperparameters: Mapping[str, Any] | None = None, origin: str = "hyperparameters",
                          label: str = "the state_dict given") -> dict[str, Any]:
    """ResidualBind's constructor arguments for a state_dict, from its tensor shapes and what is given.

    Channels C, filters F and kernel K come from ``conv.weight`` (F, C, K); the residual block's
    kernel and its number of convolutions from ``residual.layers.<i>.conv.weight``; the hidden
    width D and the P F flattened inputs from ``dense.weight`` (D, P F); the outputs T from
    ``output.weight`` (T, D). The input length is not stored: every L with floor(L / pool) = P
    fits, and the shortest, pool P, is taken unless it is given. Dilations are not stored either:
    (1, 2, 4, 8) for 4 residual convolutions (the reference code), (1, 2, 4) for 3 (the paper's
    text), else they must be given.

    Parameters
    ----------
    state : mapping of str to Tensor
    length : int or None
        Input length in bp (``input_length``). Default is None (from ``hyperparameters``, else
        pool P).
    dilations : sequence of int or None
        Default is None (from ``hyperparameters``, else by the number of residual convolutions).
    pool_size : int or None
        Average-pool window and stride in bp. Default is None (from ``hyperparameters``, else 10).
    hyperparameters : mapping or None
        Known constructor arguments (e.g. the ``hyperparameters`` of the ``model.json`` that
        ``interpkit train`` writes); ``length``, ``dilations`` and ``pool_size`` override them.
        Default is None.
    origin : str
        Names ``hyperparameters`` in messages (e.g. the sidecar file). Default is "hyperparameters".
    label : str
        Names the checkpoint in messages.

    Returns
    -------
    dict
        Every argument of :class:`~interpkit_residualbind.architecture.ResidualBind`, in the order
        of :data:`~interpkit_residualbind.architecture.HYPERPARAMETERS`.

    Raises
    ------
    InputError
        If the state_dict is not ResidualBind's; a given value contradicts the shapes (the message
        names the value, where it came from and the tensor); the length does not fit the dense
        layer; the dilations are needed and missing; or a name is unknown.
    """
    from interpkit_residualbind.architecture import HYPERPARAMETERS, length_range

    given = {k: (v, origin) for k, v in dict(hyperparameters or {}).items()}
    unknown = sorted(set(given) - set(HYPERPARAMETERS))
    if unknown:
        raise InputError(f"{origin} names unknown ResidualBind hyper-parameter(s) {', '.join(unknown)}; the "
                         f"hyper-parameters are {', '.join(HYPERPARAMETERS)}.")
    for key, value in (("input_length", length), ("dilations", dilations), ("pool_size", pool_size)):
        if value is not None:
            given[key] = (value, "argument")
    values, where, inputs = _shape_hyperparameters(state, label)
    convs = values.pop("convs")

    def conflict(key: str, value: Any, found: Any) -> InputError:
        source, fix = given[key][1], ("pass the value the checkpoint was built with" if given[key][1] == "argument"
                                      else f"correct or remove it in {origin}")
        return InputError(f"{key}={value!r} ({source}) does not fit {label}, whose {where[key]} gives {key}={found!r}; "
                          f"{fix}.")

    for key, found in values.items():
        if key in given and given[key][0] != found:
            raise conflict(key, given[key][0], found)
    pool = check_scalar(given.get("pool_size", (HYPERPARAMETERS["pool_size"],))[0], "pool_size", int, min_val=1)
    pooled = inputs // values["filters"]
    low, high = length_range(pooled, pool)
    if "input_length" in given:
        input_length = check_scalar(given["input_length"][0], "length", int, min_val=1)
        if not low <= input_length <= high:
            source = given["input_length"][1]
            raise InputError(f"length={input_length} ({source}) does not fit {label}: its dense.weight takes "
                             f"{pooled} pooled positions of {values['filters']} filters, which pool {pool} makes from "
                             f"inputs of {low} to {high} bp; pass a length in that range (or the right pool_size).")
    else:
        input_length = low
    if "dilations" in given:
        chosen = given["dilations"][0]
        if isinstance(chosen, (str, bytes)) or not isinstance(chosen, Sequence):
            raise InputError(f"dilations == {chosen!r} ({given['dilations'][1]}), must be a sequence of int such as "
                             "(1, 2, 4, 8).")
        if len(chosen) != convs:
            raise conflict("dilations", tuple(chosen), f"{convs} dilations")
        chosen = tuple(chosen)
    elif convs in DEFAULT_DILATIONS:
        chosen = DEFAULT_DILATIONS[convs]
    else:
        raise InputError(f"{label} has {convs} residual convolutions, whose dilations a state_dict does not store; "
                         f"pass dilations= ({convs} ints; the reference's 4 are 1, 2, 4, 8).")
    out = {**HYPERPARAMETERS, **{k: v for k, (v, _) in given.items()}, **values, "input_length": input_length,
           "dilations": chosen, "pool_size": pool}
    return {k: out[k] for k in HYPERPARAMETERS}


def read_record(source: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The ``model.json`` record beside a checkpoint file written by ``interpkit train``, if it is ResidualBind's.

    Returns
    -------
    (dict or None, str or None)
        The record and its file name; (None, None) for an in-memory source, no record, or a
        record of another architecture (with a warning: its hyper-parameters are not used).

    Raises
    ------
    InputError
        If the record is not readable JSON, or its ``hyperparameters`` is not a mapping.

    Warns
    -----
    InterpkitWarning
        If the record names another architecture.
    """
    if not isinstance(source, (str, os.PathLike)):
        return None, None
    from interpkit.training import read_sidecar, sidecar_path

    record = read_sidecar(source)
    if record is None:
        return None, None
    name = sidecar_path(source).name
    if record["arch"] != _ARCH:
        warnings.warn(f"{name} beside {Path(source).name} records architecture {record['arch']!r}, not "
                      f"{_ARCH!r}; its hyper-parameters are not used (they are read from the tensor shapes).",
                      InterpkitWarning, stacklevel=3)
        return None, None
    if not isinstance(record.get("hyperparameters", {}), Mapping):
        raise InputError(f"{name} beside {Path(source).name}: 'hyperparameters' is a "
                         f"{type(record['hyperparameters']).__name__}, not a mapping of ResidualBind's arguments; "
                         "fix the file or move it away.")
    return record, name


def _load(source: Any, length: int | None, dilations: Sequence[int] | None,
          pool_size: int | None) -> tuple[Any, dict[str, Any]]:
    from interpkit_residualbind.architecture import ResidualBind

    if length is not None:
        length = check_scalar(length, "length", int, min_val=1)
    if pool_size is not None:
        pool_size = check_scalar(pool_size, "pool_size", int, min_val=1)
    record, name = read_record(source)
    record = record or {}
    given = dict(record.get("hyperparameters") or {})
    if "input_length" not in given and isinstance(record.get("length"), int):
        given["input_length"] = record["length"]
    state, label = read_state_dict(source, arch=_ARCH)
    params = infer_hyperparameters(state, length=length, dilations=dilations, pool_size=pool_size,
                                   hyperparameters=given, origin=name or "hyperparameters", label=label)
    model = load_strict(ResidualBind(**params), state, label=label, arch=_ARCH)
    model.checkpoint_info = {**checkpoint_info(source, {}), **({"record": name} if name else {})}
    targets = record.get("targets")
    if isinstance(targets, list) and len(targets) == params["num_classes"] and all(isinstance(t, str) for t in targets):
        model.output_names = tuple(targets)  # the torch backend's default output names
    return model, record


def load_module(source: Any, *, length: int | None = None, dilations: Sequence[int] | None = None,
                pool_size: int | None = None) -> Any:
    """Build ResidualBind for a state_dict and load it strictly.

    Hyper-parameters come from, in increasing priority: the defaults, the tensor shapes
    (:func:`infer_hyperparameters`), the ``model.json`` record beside a file (``interpkit
    train`` writes it; used when its ``arch`` is "residualbind"), and the arguments; the shapes
    must agree with whatever is given.

    Parameters
    ----------
    source : path-like, state_dict or nn.Module
        A ``torch.save(model.state_dict(), path)`` file (CUDA-saved files load on the CPU; read
        with ``weights_only=True``), a state_dict or a ResidualBind.
    length : int or None
        Input length in bp. Default is None (the record's, else pool P).
    dilations : sequence of int or None
        Dilations of the residual convolutions. Default is None (the record's, else (1, 2, 4, 8)
        for 4 convolutions and (1, 2, 4) for 3).
    pool_size : int or None
        Average-pool window and stride in bp. Default is None (the record's, else 10).

    Returns
    -------
    ResidualBind
        In eval mode, on the CPU, with ``options`` (the hyper-parameters), ``checkpoint_info``
        (file, md5, and ``record``: the sidecar's name when one was used) and, when the record
        lists one name per output, ``output_names``.

    Raises
    ------
    InputError
        If the file is unreadable, not ResidualBind's, its keys or shapes do not fit the
        hyper-parameters (the message names missing, unexpected and wrongly shaped keys), or a
        given hyper-parameter contradicts the shapes.
    """
    return _load(source, length, dilations, pool_size)[0]


def _check_profiles(module: Any, extra: Mapping[str, Any]) -> None:
    """The structure profiles a model with more than 4 input channels needs, as a fixed extra input."""
    S, L = module.num_profiles, module.input_length
    if S == 0:
        if "profiles" in extra:
            raise InputError("extra_inputs names 'profiles', but this ResidualBind takes 4 one-hot channels and no "
                             "structure profiles; leave it out.")
        return
    if "profiles" not in extra:
        raise InputError(f"this ResidualBind takes {module.options['in_channels']} input channels: the one-hot and "
                         f"{S} structure profile(s); pass extra_inputs={{'profiles': array of shape ({S}, {L})}} "
                         "(--extra-input profiles=FILE.npy), one profile used for every sequence.")
    shape = np.shape(extra["profiles"])
    if shape != (S, L):
        raise InputError(f"extra_inputs['profiles'] has shape {shape}, but this ResidualBind takes ({S}, {L}) "
                         f"({S} structure channels x {L} bp), one profile broadcast to every sequence; per-sequence "
                         "profiles are not supported by the torch backend.")


def load(source: Any, *, length: int | None = None, dilations: Sequence[int] | None = None,
         pool_size: int | None = None, **options: Any) -> Any:
    """``interpkit.load(path, arch="residualbind")``: a ResidualBind checkpoint as a torch-backend Predictor.

    The module (:func:`load_module`) goes to the ``torch`` backend with layout "NCL", its input
    length and the RNA alphabet "ACGU" (the record's alphabet when it has one), so FASTA with U
    is read as the model was trained. For DNA input (T), pass ``alphabet="ACGT"`` (``--alphabet
    ACGT``): channel 3 is U or T alike, so the predictions are the same. A model with more than
    4 input channels needs its structure profiles as ``extra_inputs={"profiles": (S, L) array}``,
    one profile for every sequence.

    Parameters
    ----------
    source, length, dilations, pool_size
        As :func:`load_module`.
    **options
        Options of the torch backend (``alphabet``, ``extra_inputs``, ``output_names``,
        ``labels``, ``device``, ``batch_size``, ...).

    Returns
    -------
    Predictor

    Raises
    ------
    InputError
        As :func:`load_module`; for missing, unexpected or wrongly shaped ``profiles``; or for
        options the torch backend does not take.
    PluginError
        If no ``torch`` backend is registered.
    """
    from interpkit.api import load as load_model

    module, record = _load(source, length, dilations, pool_size)
    _check_profiles(module, dict(options.get("extra_inputs") or {}))
    alphabet = record.get("alphabet") if record.get("alphabet") in ("ACGT", "ACGU") else "ACGU"
    return load_model(module, backend="torch",
                      **{"layout": "NCL", "alphabet": alphabet, **options, "length": module.input_length})
