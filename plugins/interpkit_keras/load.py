"""The keras backend's loader: a file or an in-memory Keras model -> :class:`KerasModel`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interpkit import InputSpec
from interpkit.adapt import (
    OutputReduction,
    check_output_names,
    infer_layout,
    read_output_names,
    resolve_alphabet,
)
from interpkit.errors import CapabilityError, InputError, InputTypeError, InterpkitWarning, MissingFileError
from interpkit.predictor import LAYOUTS
from interpkit.validation import check_choice, check_scalar

from ._runtime import gpus, is_keras_model
from .layers import seq_axis
from .model import KerasModel
from .read import read_keras_file

__all__ = ["load"]


def _layer_of(tensor: Any) -> str:
    """Name of the layer that produced a symbolic tensor (the InputLayer for model inputs)."""
    return tensor._keras_history[0].name


def _sequence_index(model: Any, shapes: list[tuple], sequence_input: str | None) -> int:
    """Which model input takes the one-hot sequence: the one with a 4-sized axis, or the named one."""
    names = [_layer_of(t) for t in model.inputs]
    if sequence_input is not None:
        if sequence_input not in names:
            raise InputError(f"sequence_input == {sequence_input!r} is not an input of the model; its inputs are "
                             f"{', '.join(names)}.")
        return names.index(sequence_input)
    found = [i for i, shape in enumerate(shapes) if 4 in shape[1:]]
    if len(found) != 1:
        described = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
        raise InputError(f"cannot tell which model input takes the sequence (inputs: {described}); pass "
                         "sequence_input='<input name>'.")
    return found[0]


def _layout_and_length(shape: tuple, layout: str | None, length: int | None) -> tuple[str, int | None]:
    if layout is None:
        layout, declared = infer_layout(shape)
    else:
        check_choice(layout, "layout", LAYOUTS)
        if len(shape) != len(layout):
            raise InputError(f"layout == {layout!r} has {len(layout)} axes but the model's input has shape {shape}.")
        declared = shape[seq_axis(layout, len(shape))]
        if shape[layout.index("C")] != 4:
            raise InputError(f"layout == {layout!r} puts the alphabet on an axis of size "
                             f"{shape[layout.index('C')]} in the model's input shape {shape}; it must be 4.")
    if length is not None:
        check_scalar(length, "length", int, min_val=1)
        if declared is not None and length != declared:
            raise InputError(f"length == {length} but the model's input is fixed at {declared} bp; drop length=.")
    return layout, declared if declared is not None else length


def _extra_values(model: Any, shapes: list[tuple], seq: int, given: Mapping[str, Any] | None,
                  name: str) -> tuple[list[np.ndarray | None], dict[str, tuple[int, ...]]]:
    names = [_layer_of(t) for t in model.inputs]
    extra = {n: s[1:] for i, (n, s) in enumerate(zip(names, shapes)) if i != seq}
    given = dict(given or {})
    unknown = sorted(set(given) - set(extra))
    if unknown:
        raise InputError(f"extra_inputs names {unknown}, which are not extra inputs of {name} "
                         f"(it has: {', '.join(extra) or 'none'}).")
    missing = [n for n in extra if n not in given]
    if missing:
        wanted = ", ".join(f"'{n}': array of shape {extra[n]}" for n in missing)
        warnings.warn(f"model {name} has extra input(s) {', '.join(missing)}; feeding zeros to every sequence (as "
                      f"Xpresso's own script does for its half-life features). Set them with extra_inputs={{{wanted}}}.",
                      InterpkitWarning, stacklevel=3)
    values: list[np.ndarray | None] = []
    for i, (input_name, shape) in enumerate(zip(names, shapes)):
        if i == seq:
            values.append(None)
            continue
        dtype = model.inputs[i].dtype
        dtype = getattr(dtype, "name", dtype)
        if input_name not in given:
            if None in shape[1:]:
                raise InputError(f"extra input {input_name!r} has unknown shape {shape[1:]}; pass its value with "
                                 f"extra_inputs={{'{input_name}': array}}.")
            values.append(np.zeros(shape[1:], dtype=dtype))
            continue
        value = np.asarray(given[input_name], dtype=dtype)
        if value.ndim != len(shape) - 1 or any(d is not None and d != v for d, v in zip(shape[1:], value.shape)):
            raise InputError(f"extra_inputs[{input_name!r}] has shape {value.shape} but the input takes "
                             f"{shape[1:]} per sequence (without the batch axis).")
        values.append(value)
    return values, {n: v.shape for n, v in zip(names, values) if v is not None}


def _outputs(model: Any, output: OutputReduction | str | None, name: str) -> tuple[OutputReduction | None, list[str]]:
    """The reduction for rank-3 outputs (default with a warning) and the model's own output names."""
    tensors = list(model.outputs)
    shapes = [tuple(t.shape) for t in tensors]
    if any(len(s) not in (2, 3) for s in shapes):
        raise InputError(f"model {name} has outputs of shapes {shapes}; the keras backend takes (N, T) outputs and "
                         "per-position (N, P, C) outputs.")
    if isinstance(output, str):
        output = OutputReduction.parse(output, positions="middle")
    if output is not None and not isinstance(output, OutputReduction):
        raise InputTypeError(f"output must be an interpkit.adapt.OutputReduction or its text form "
                             f"'REDUCE[:START:END][@C1,C2]', got {type(output).__name__}.")
    per_position = [s for s in shapes if len(s) == 3]
    if output is not None and not per_position:
        raise InputError(f"output= reduces per-position outputs, but model {name} returns {shapes}; leave output= "
                         "unset.")
    if per_position and output is None:
        output = OutputReduction(positions="middle")
        warnings.warn(f"model {name} predicts per position {per_position[0]} (N, P, C); reducing with the default "
                      f"rule: {output.describe()}. Choose another with output=OutputReduction(...) "
                      "(--output REDUCE[:START:END][@C1,C2]).", InterpkitWarning, stacklevel=3)
    names = []
    for tensor, shape in zip(tensors, shapes):
        layer, kept = _layer_of(tensor), None
        width = shape[1]
        if len(shape) == 3:
            output.check_shape(tuple(10**9 if d is None else d for d in shape))  # unknown P: check channels only
            width, kept = (shape[2] if output.positions == "middle" else shape[1]), output.channels
        if width is None:
            raise InputError(f"output {layer} of {name} has shape {shape} with an unknown number of channels.")
        names += [f"{layer}:{c % width}" for c in (kept if kept is not None else range(width))]
    return (output if per_position else None), names



def _device(device: str | None) -> str:
    found = gpus()
    if device is None:
        device = "cuda" if found else "cpu"
    check_choice(device, "device", ("cpu", "cuda"))
    if device == "cuda" and not found:
        raise CapabilityError("device == 'cuda' but TensorFlow sees no GPU (CPU-only build, or no CUDA driver); "
                              "use device='cpu'.")
    return "/GPU:0" if device == "cuda" else "/CPU:0"


def load(
    source: Any,
    *,
    layout: str | None = None,
    length: int | None = None,
    alphabet: str | None = None,
    output: OutputReduction | str | None = None,
    output_names: Sequence[str] | None = None,
    labels: str | os.PathLike | None = None,
    extra_inputs: Mapping[str, Any] | None = None,
    trust: bool = False,
    device: str | None = None,
    batch_size: int | None = None,
    weights: str | os.PathLike | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    sequence_input: str | None = None,
) -> KerasModel:
    """Load a Keras model (Keras 3 or legacy tf_keras) as a Predictor and LayerProbe.

    Parameters
    ----------
    source : path-like or keras.Model or tf_keras.Model
        ``.keras`` (Keras 3 archive), ``.h5``/``.hdf5`` (full model), ``.json`` (architecture;
        weights from ``weights`` or the sibling file: ``X_modelJson.json`` -> ``X_modelWeights.h5``,
        else ``X.json`` -> ``X.weights.h5``, ``X.h5`` or ``X.hdf5``), or a built model object.
        Files are read with Keras 3 first, then with tf_keras for those Keras 3 refuses.
    layout : {"NCL", "NLC", "NC1L", "NCL1"} or None
        Layout of the model's sequence input. Default is None (inferred from its declared shape,
        e.g. (None, 200, 4) -> "NLC").
    length : int or None
        Sequence length in bp for models that accept any length. Default is None (the declared
        length, or any).
    alphabet : str or None
        The model's own channel order, e.g. "AGCT"; with a U it is RNA ("ACGU" canonical).
        Default is None ("ACGT").
    output : OutputReduction, str or None
        Rule reducing per-position outputs (N, P, C) to (N, T); a string is parsed with
        ``OutputReduction.parse(text, positions="middle")`` (Keras' (N, P, C) convention). Default
        is None: mean over all positions and channels (``positions="middle"``), with an
        :class:`~interpkit.errors.InterpkitWarning`.
    output_names : sequence of str or None
        One name per output. Default is None (``"<last layer>:<channel>"``).
    labels : path-like or None
        Text file with one output name per line (instead of ``output_names``). Default is None.
    extra_inputs : mapping of str to array-like, or None
        For models with several inputs: input name -> value of that input's shape without the
        batch axis, fed with every sequence. Default is None (zeros, with an InterpkitWarning).
    trust : bool
        Allow Lambda layers (Python code stored in the file) and Keras' unsafe deserialization.
        Default is False.
    device : {"cpu", "cuda"} or None
        Default is None (a GPU when TensorFlow sees one, else the CPU).
    batch_size : int or None
        Default sequences per forward pass. Default is None (chosen from free memory).
    weights : path-like or None
        HDF5 weights for a JSON architecture. Default is None (the sibling file, see ``source``).
    custom_objects : mapping of str to object, or None
        Custom layers and functions, passed to the framework's loader. Default is None.
    sequence_input : str or None
        Name of the input taking the sequence when several have a 4-sized axis. Default is None
        (the only input with a 4-sized axis).

    Returns
    -------
    KerasModel

    Raises
    ------
    MissingFileError
        For a missing model, weights or labels file.
    InputError
        For an unreadable file, Lambda layers without ``trust``, a file neither Keras 3 nor
        tf_keras loads (both reasons are given), an input layout that cannot be inferred, or
        options that do not fit the model.
    InputTypeError
        For a source that is neither a path nor a Keras model.
    CapabilityError
        If TensorFlow, Keras or tf_keras is missing, Keras 3 runs on another backend, or
        ``device="cuda"`` without a GPU.
    """
    check_scalar(trust, "trust", bool)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise MissingFileError(f"model file {path} does not exist.")
        model, name = read_keras_file(path, weights=weights, custom_objects=custom_objects, trust=trust), path.name
    elif is_keras_model(source):
        if weights is not None or custom_objects is not None:
            raise InputError("weights= and custom_objects= apply when loading a file, not an in-memory model.")
        model, name = source, source.name
    else:
        raise InputTypeError(f"the keras backend loads .keras/.h5/.json files or Keras models, not "
                             f"{type(source).__name__}.")
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):
        inputs = []
    if not inputs:
        raise InputError(f"model {name} has no declared inputs (a subclassed or unbuilt model); build it on "
                         "keras.Input(shape), e.g. keras.Model(inp, model(inp)).")
    shapes = [tuple(t.shape) for t in inputs]
    seq = _sequence_index(model, shapes, sequence_input)
    layout, length = _layout_and_length(shapes[seq], layout, length)
    canonical, model_alphabet = resolve_alphabet(alphabet)
    extra_values, extra_shapes = _extra_values(model, shapes, seq, extra_inputs, name)
    reduction, names = _outputs(model, output, name)
    if batch_size is not None:
        check_scalar(batch_size, "batch_size", int, min_val=1)
    spec = InputSpec(alphabet=canonical, length=length, layout=layout, model_alphabet=model_alphabet,
                     extra_inputs=extra_shapes, dtype=getattr(inputs[seq].dtype, "name", str(inputs[seq].dtype)))
    given = read_output_names(output_names, labels)
    names = list(check_output_names(given, len(names), name)) if given is not None else names
    return KerasModel(model, input_spec=spec, output_names=names,
                      reduction=reduction, sequence_index=seq, extra_values=extra_values, device=_device(device),
                      batch_size=batch_size, name=name)
