"""The ONNX backend's loader: a ``.onnx`` file (or ``onnx.ModelProto``) -> :class:`OnnxModel`."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from interpkit import InputSpec
from interpkit.adapt import (
    OutputReduction,
    check_output_names,
    infer_layout,
    read_output_names,
    resolve_alphabet,
)
from interpkit.errors import InputError, InputTypeError, InterpkitWarning, MissingFileError, first_line
from interpkit.predictor import LAYOUTS
from interpkit.validation import check_choice, check_scalar

from .graph import baked_batch_nodes, dims, extract, free_batch, graph_inputs, read_model
from .layers import INPUT_AXES
from .model import PROBE_LENGTHS, OnnxModel
from .session import default_threads, make_session, resolve_device
from .to_torch import unsupported_ops

__all__ = ["load"]


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
    graph_output: str | None = None,
    sequence_input: str | None = None,
    threads: int | None = None,
    custom_op_libraries: Sequence[str | os.PathLike] | None = None,
) -> OnnxModel:
    """Load an ONNX model as a Predictor and LayerProbe.

    Parameters
    ----------
    source : path-like, bytes or onnx.ModelProto
        A ``.onnx`` file (external data beside it is read too) or an in-memory model
        (copied; never modified).
    layout : {"NCL", "NLC", "NC1L", "NCL1"} or None
        Layout of the sequence input. Default is None: inferred from the input's
        declared shape (:func:`interpkit.adapt.infer_layout`), else from the first
        convolution's kernel.
    length : int or None
        Sequence length in bp; must agree with the graph where it fixes one. Default is
        None (the graph's, or any length).
    alphabet : str or None
        The model's own channel order, e.g. "AGCT" (or "ACGU" for RNA). Default is None
        (A, C, G, T).
    output : OutputReduction, str or None
        Rule for per-position (N, C, P) outputs; a string is parsed with
        :meth:`OutputReduction.parse`. Default is None: the mean over all positions and
        channels-as-outputs, with an :class:`InterpkitWarning` (positions taken as the
        last axis, or the middle one for NLC models).
    output_names : sequence of str or None
        One name per output. Default is None ("out0", "out1", ...).
    labels : path-like or None
        Text file with one output name per line (instead of ``output_names``).
    extra_inputs : mapping of str to array-like or None
        Values for the graph's other inputs (shape without the batch axis), given to
        every sequence. Default is None: zeros, with a warning naming them.
    trust : bool
        ONNX files run no code of their own; ``trust=True`` is needed only to load
        ``custom_op_libraries``. Default is False.
    device : {"cpu", "cuda"} or None
        Default is None: onnxruntime's CUDA provider when a GPU and its libraries are
        usable, else the CPU provider (found out quietly, see
        :func:`interpkit_onnx.session.cuda_status`).
    batch_size : int or None
        Default sequences per run when a call gives none. Default is None (from
        available memory, :func:`interpkit.adapt.auto_batch_size`).
    graph_output : str or None
        Name of the graph output to predict. Default is None (the first).
    sequence_input : str or None
        Name of the graph input that takes the one-hot sequence. Default is None: the
        only input whose shape fits a layout.
    threads : int or None
        onnxruntime intra-op threads. Default is None (the cores this process may use,
        at most 16).
    custom_op_libraries : sequence of path-like or None
        Shared libraries with custom ops, registered with onnxruntime only together
        with ``trust=True`` (they are native code); never registered implicitly.

    Returns
    -------
    OnnxModel

    Raises
    ------
    InputError
        For a corrupt or truncated file, an undetermined layout, option values that
        contradict the graph, or a graph onnxruntime cannot run; the message names the
        file.
    MissingFileError
        If a labels file or custom-op library does not exist.
    CapabilityError
        For ``device="cuda"`` where onnxruntime cannot use CUDA.

    Notes
    -----
    A file exported with a fixed batch size gets a symbolic batch axis. When reshapes
    in the graph bake that batch size in (``Reshape(x, [1, -1])`` from
    ``x.view(x.size(0), -1)`` exported with batch 1), or the graph fails on another
    batch size, the model runs in chunks of exactly the fixed size, the last chunk
    padded with all-N sequences (``OnnxModel.batch_chunk``).
    """
    check_scalar(trust, "trust", bool)  # never truthiness: trust="false" must not load custom ops
    libraries = _libraries(custom_op_libraries, trust)
    device = resolve_device(device)
    threads = default_threads() if threads is None else check_scalar(threads, "threads", int, min_val=1)
    if batch_size is not None:
        check_scalar(batch_size, "batch_size", int, min_val=1)
    model, name = read_model(source)
    graph = model.graph
    written = {p.key: p.value for p in model.metadata_props}  # by interpkit_torch.export.to_onnx
    if alphabet is None and "interpkit.alphabet" in written:
        alphabet = written["interpkit.alphabet"]
    if output_names is None and labels is None and "interpkit.output_names" in written:
        output_names = json.loads(written["interpkit.output_names"])
    seq, extras = _sequence_input(graph, sequence_input, layout, name)
    layout, length = _layout(seq, graph, layout, length, name)
    canonical, model_alphabet = resolve_alphabet(alphabet)
    out = _graph_output(graph, graph_output, name)
    fixed = free_batch(model, seq.name)
    chunk = fixed if fixed is not None and baked_batch_nodes(graph, seq.name, fixed) else None
    values = _extra_values(extras, extra_inputs, name)
    spec = InputSpec(
        alphabet=canonical, length=length, layout=layout, model_alphabet=model_alphabet,
        extra_inputs={k: tuple(v.shape) for k, v in values.items()},
        dtype=str(onnx.helper.tensor_dtype_to_np_dtype(seq.type.tensor_type.elem_type)),
    )
    try:
        session = make_session(extract(model, [out]), device=device, threads=threads, custom_op_libraries=libraries)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
        custom = _custom_ops(model)
        if custom and not libraries:
            raise InputError(
                f"{name} uses custom op(s) {', '.join(custom)} that onnxruntime does not define; interpkit never "
                "loads custom-op libraries implicitly (they are native code). If you trust the library that "
                "implements them, pass it in Python: interpkit.load(path, custom_op_libraries=['libops.so'], "
                "trust=True).") from None
        raise InputError(f"onnxruntime cannot run {name}: {first_line(exc)}") from None
    shape, chunk, probe_length = _probe(session, seq.name, out, spec, values, fixed, chunk, name)
    reduction, shape = _reduction(shape, output, layout, name)
    if reduction is None:
        count = shape[1] if len(shape) == 2 else 1
    else:
        count = len(reduction.channels) if reduction.channels else shape[1 if reduction.positions == "last" else 2]
    problem = None if importlib.util.find_spec("torch") else "torch is not installed (pip install 'interpkit[torch]')"
    ops = [] if problem else unsupported_ops(model, [out])
    if ops:
        problem = f"its graph uses ops without a torch translation: {', '.join(ops)}"
    return OnnxModel(
        model, name=name, input_name=seq.name, spec=spec, output_tensor=out,
        output_names=_output_names(output_names, labels, count, name), reduction=reduction, extra_values=values,
        device=device, threads=threads, custom_op_libraries=libraries, batch_chunk=chunk, batch_size=batch_size,
        gradient_problem=problem, sessions={(out,): session}, probe_length=probe_length,
    )


#: Op domains whose ops onnxruntime implements itself (the ONNX standard and its contrib ops).
_BUILTIN_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training", "com.microsoft", "com.microsoft.nchwc",
                    "com.microsoft.experimental", "com.ms.internal.nhwc")


def _custom_ops(model: onnx.ModelProto) -> list[str]:
    """``domain:op`` of every node whose op comes from a custom domain (not one onnxruntime implements, nor
    a function defined in the model), in graph order, subgraphs included."""
    local = {(f.domain, f.name) for f in model.functions}
    found: list[str] = []

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            if node.domain not in _BUILTIN_DOMAINS and (node.domain, node.op_type) not in local:
                found.append(f"{node.domain}:{node.op_type}")
            for attribute in node.attribute:
                for sub in [attribute.g, *attribute.graphs]:  # empty unless a GRAPH(S) attribute
                    walk(sub)

    walk(model.graph)
    return list(dict.fromkeys(found))


def _libraries(libraries: Sequence[str | os.PathLike] | None, trust: bool) -> list[str]:
    if not libraries:
        return []
    if not trust:
        raise InputError("custom_op_libraries load native code into this process, so they need trust=True as "
                         "well; pass it only for libraries you trust.")
    paths = [os.fspath(p) for p in ([libraries] if isinstance(libraries, (str, os.PathLike)) else libraries)]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise MissingFileError(f"custom op librar{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)} "
                               "not found.")
    return paths


def _fits(value: onnx.ValueInfoProto, layout: str | None) -> bool:
    shape = dims(value)
    if shape is None:
        return False
    if layout is not None:
        axes = INPUT_AXES[layout]
        return len(shape) == axes.rank and shape[axes.ch] in (4, None)
    try:
        infer_layout([None, *shape[1:]])
    except InputError:
        return False
    return True


def _sequence_input(graph: onnx.GraphProto, wanted: str | None, layout: str | None, name: str
                    ) -> tuple[onnx.ValueInfoProto, list[onnx.ValueInfoProto]]:
    """The graph input taking the sequence, and the others."""
    inputs = graph_inputs(graph)
    names = [v.name for v in inputs]
    if wanted is not None:
        if wanted not in names:
            raise InputError(f"{name} has no input {wanted!r} (sequence_input); its inputs are {names}.")
        seq = inputs[names.index(wanted)]
    elif len(inputs) == 1:
        seq = inputs[0]
    else:
        fitting = [v for v in inputs if _fits(v, layout)]
        if len(fitting) != 1:
            raise InputError(f"{name} has inputs {names} and {len(fitting)} of them look like one-hot sequences; "
                             "name the sequence input with sequence_input=.")
        seq = fitting[0]
    return seq, [v for v in inputs if v.name != seq.name]


def _first_conv_layout(graph: onnx.GraphProto, input_name: str) -> str | None:
    """Layout from the convolution reading the input (directly or after a Transpose to channels first)."""
    weights = {t.name: tuple(t.dims) for t in graph.initializer}
    source, transposed = input_name, False
    for node in graph.node:
        if source not in node.input:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Transpose" and not transposed and list(attrs.get("perm", [])) == [0, 2, 1]:
            source, transposed = node.output[0], True
        elif node.op_type == "Conv":
            w = weights.get(node.input[1], ())
            if len(w) == 3 and w[1] == 4:
                return "NLC" if transposed else "NCL"
            if len(w) == 4 and w[1] == 4 and not transposed:
                return "NC1L" if w[2] == 1 else "NCL1" if w[3] == 1 else None
            return None
    return None


def _layout(seq: onnx.ValueInfoProto, graph: onnx.GraphProto, layout: str | None, length: int | None,
            name: str) -> tuple[str, int | None]:
    """Layout and length (bp) of the sequence input, from the options, its shape or the first conv."""
    shape = dims(seq)
    if layout is None:
        error = f"declares no shape; pass layout= one of {', '.join(LAYOUTS)} (--layout)."
        if shape is not None:
            try:
                layout = infer_layout([None, *shape[1:]])[0]
            except InputError as exc:
                error = str(exc)
        layout = layout or _first_conv_layout(graph, seq.name)
        if layout is None:
            raise InputError(f"{name}: input {seq.name!r} {error}")
    check_choice(layout, "layout", LAYOUTS)
    declared = None
    if shape is not None:
        axes = INPUT_AXES[layout]
        if len(shape) != axes.rank or shape[axes.ch] not in (4, None):
            raise InputError(f"{name}: input {seq.name!r} has shape {_show(shape)}, which is not layout {layout} "
                             f"with 4 channels; pass the right layout= (one of {', '.join(LAYOUTS)}).")
        declared = shape[axes.pos]
    if length is not None:
        check_scalar(length, "length", int, min_val=1)
        if declared is not None and declared != length:
            raise InputError(f"length == {length} but {name} fixes the sequence length at {declared} bp; "
                             "drop length= or pass the model's length.")
    return layout, length if length is not None else declared


def _show(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _graph_output(graph: onnx.GraphProto, wanted: str | None, name: str) -> str:
    names = [v.name for v in graph.output]
    if wanted is None:
        return names[0]
    if wanted not in names:
        raise InputError(f"{name} has no output {wanted!r} (graph_output); its outputs are {names}.")
    return wanted


def _extra_shape(value: onnx.ValueInfoProto, name: str) -> list[int | None]:
    shape = dims(value)
    if not shape:
        raise InputError(f"{name}: extra input {value.name!r} has no batch axis (shape {shape}); only inputs with "
                         "one value per sequence are supported.")
    return shape[1:]


def _extra_values(extras: list[onnx.ValueInfoProto], given: Mapping[str, Any] | None, name: str
                  ) -> dict[str, np.ndarray]:
    """One value per extra input (shape without batch), from ``extra_inputs`` or zeros."""
    if given is not None and not isinstance(given, Mapping):
        raise InputTypeError(f"extra_inputs must be a dict of input name -> array, got {type(given).__name__}.")
    given = dict(given or {})
    names = [v.name for v in extras]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InputError(f"extra_inputs names {unknown}, which {name} does not have; its extra inputs are {names}.")
    values = {}
    missing = []
    for value in extras:
        shape = _extra_shape(value, name)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        if value.name in given:
            array = np.asarray(given[value.name], dtype=dtype)
            if None not in shape:
                try:
                    array = np.broadcast_to(array, shape)
                except ValueError:
                    raise InputError(f"extra_inputs[{value.name!r}] has shape {array.shape}; {name} needs "
                                     f"{tuple(shape)} per sequence.") from None
            values[value.name] = array
        elif None in shape:
            raise InputError(f"{name}: extra input {value.name!r} has shape {_show(shape)} per sequence; give its "
                             "value with extra_inputs=.")
        else:
            values[value.name] = np.zeros(shape, dtype=dtype)
            missing.append(value.name)
    if missing:
        warnings.warn(f"{name} has extra input(s) {missing}, fed zeros for every sequence; give their values with "
                      "extra_inputs={name: array}.", InterpkitWarning, stacklevel=3)
    return values


def _probe(session: Any, input_name: str, out: str, spec: InputSpec, values: Mapping[str, np.ndarray],
           fixed: int | None, chunk: int | None, name: str) -> tuple[tuple[int, ...], int | None, int]:
    """Run all-N sequences once: the raw output shape, the batch chunk, the probe length (bp).

    With a fixed batch size B that no reshape visibly bakes in, B + 1 sequences are
    tried first; if the graph fails on them it runs in chunks of B. Models of any
    length are probed at :data:`PROBE_LENGTHS` in turn.
    """
    axes = INPUT_AXES[spec.layout]

    def run(n: int, length: int) -> np.ndarray:
        shape = [n] + [1] * (axes.rank - 1)
        shape[axes.ch], shape[axes.pos] = 4, length
        feeds = {input_name: np.zeros(shape, dtype=spec.dtype),
                 **{k: np.broadcast_to(v, (n, *v.shape)).copy() for k, v in values.items()}}
        return session.run([out], feeds)[0]

    error = None
    for length in [spec.length] if spec.length else PROBE_LENGTHS:
        if fixed is not None and chunk is None:
            with contextlib.suppress(Exception):  # failing means a batch size baked in where we did not see it
                return run(fixed + 1, length).shape, None, length
        try:
            return run(chunk or fixed or 2, length).shape, chunk or fixed, length
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
            error = exc
    hint = "" if spec.length else f" at {' and '.join(map(str, PROBE_LENGTHS))} bp (pass the model's length=)"
    raise InputError(f"{name} fails on all-N input{hint}: {first_line(error)}")


def _reduction(shape: Sequence[int], output: OutputReduction | str | None, layout: str, name: str
               ) -> tuple[OutputReduction | None, list[int]]:
    """The rule for a per-position (3-D after squeezing) output (None for (N,) and (N, T)), and the shape."""
    shape = [shape[0], *[d for d in shape[1:] if d != 1]] if len(shape) > 3 else list(shape)
    if len(shape) > 3:
        raise InputError(f"{name} outputs shape {tuple(shape)}; only (N, T) and per-position (N, C, P) outputs "
                         "are supported (choose another graph_output=).")
    positions = "middle" if layout == "NLC" else "last"
    if isinstance(output, str):
        output = OutputReduction.parse(output, positions=positions)
    if output is not None and not isinstance(output, OutputReduction):
        raise InputTypeError(f"output must be an OutputReduction or a string such as 'max:4000:6000@1,2', "
                             f"got {type(output).__name__}.")
    if len(shape) < 3:
        if output is not None:
            raise InputError(f"output= reduces per-position outputs, but {name} outputs shape {tuple(shape)}; "
                             "drop output=.")
        return None, shape
    if output is None:
        output = OutputReduction(positions=positions)
        warnings.warn(f"{name} outputs one value per position (shape {tuple(shape)}); using {output.describe()} "
                      f"with positions on the {positions} axis. Choose the rule with output= (--output), e.g. "
                      "'max:4000:6000@1,2'.", InterpkitWarning, stacklevel=3)
    output.check_shape(shape)
    return output, shape


def _output_names(output_names: Any, labels: Any, count: int, name: str) -> tuple[str, ...]:
    given = read_output_names(output_names, labels)
    return tuple(f"out{i}" for i in range(count)) if given is None else check_output_names(given, count, name)
