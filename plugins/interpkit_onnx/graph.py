"""ONNX graph tools: read a model, free its batch axis, name its nodes, cut out sub-graphs.

Everything here edits a private copy of the user's ``onnx.ModelProto`` with the onnx
package's own protobuf API; nothing re-implements the model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from interpkit.errors import InputError, first_line

__all__ = [
    "BATCH",
    "baked_batch_nodes",
    "constant_values",
    "data_tensors",
    "dims",
    "extract",
    "free_batch",
    "graph_inputs",
    "node_names",
    "read_model",
]

#: dim_param given to the batch axis when the file fixes it.
BATCH = "N"
#: Ops whose output describes a tensor's shape, not its values: data flow stops there.
SHAPE_OPS = frozenset({"Shape", "Size"})


def read_model(source: Any) -> tuple[onnx.ModelProto, str]:
    """A private copy of an ONNX model and a display name.

    Parameters
    ----------
    source : path-like, bytes or onnx.ModelProto
        A ``.onnx`` file (external data files are read from its folder), its bytes, or
        an in-memory model (copied, never modified).

    Returns
    -------
    (model, name)
        name is the file name, or the graph name for in-memory models.

    Raises
    ------
    InputError
        If the file or bytes are not a readable ONNX model (corrupt or truncated), or
        the model has no graph.
    """
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        name = source.graph.name or "ModelProto"
    else:
        name = Path(source).name if isinstance(source, (str, os.PathLike)) else "ONNX bytes"
        try:
            if isinstance(source, bytes):
                model = onnx.load_model_from_string(source)
            else:
                model = onnx.load(os.fspath(source))
        except Exception as exc:  # noqa: BLE001 - protobuf, IO and onnx errors all mean "unreadable"
            detail = first_line(exc)
            raise InputError(
                f"{name} is not a readable ONNX model ({detail}); the file may be truncated or in another "
                "format: check the download or re-export it (torch.onnx.export)."
            ) from None
    if not model.graph.node or not graph_inputs(model.graph) or not model.graph.output:
        raise InputError(
            f"{name} holds no usable ONNX graph ({len(model.graph.node)} nodes, {len(graph_inputs(model.graph))} "
            f"inputs, {len(model.graph.output)} outputs); the file may be truncated or not an ONNX model."
        )
    return model, name


def graph_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """The graph's real inputs (old IR versions also list initializers as inputs)."""
    initializers = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in initializers]


def dims(value_info: onnx.ValueInfoProto) -> list[int | None] | None:
    """Declared shape, None for symbolic or unknown sizes; None when even the rank is unknown."""
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]


def free_batch(model: onnx.ModelProto, input_name: str) -> int | None:
    """Make axis 0 of every graph input and output symbolic (``N``), in place.

    Intermediate ``value_info`` entries are dropped: which of their axes is the batch
    is not known in general, and onnxruntime re-derives them.

    Returns
    -------
    int or None
        The batch size the file fixed on input ``input_name``, or None if it was free.
    """
    fixed = None
    graph = model.graph
    for value in [*graph_inputs(graph), *graph.output]:
        shape = value.type.tensor_type.shape
        if not value.type.tensor_type.HasField("shape") or not shape.dim:
            continue
        first = shape.dim[0]
        if first.HasField("dim_value"):
            if value.name == input_name:
                fixed = first.dim_value
            first.Clear()
            first.dim_param = BATCH
    del graph.value_info[:]
    return fixed


def node_names(graph: onnx.GraphProto) -> list[str]:
    """Node names, "<OpType>_<index>" for unnamed nodes, made unique with a "#k" suffix."""
    names: list[str] = []
    seen: set[str] = set()
    for index, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{index}"
        unique, k = name, 1
        while unique in seen:
            unique, k = f"{name}#{k}", k + 1
        seen.add(unique)
        names.append(unique)
    return names


def constant_values(graph: onnx.GraphProto, *, max_size: int = 64) -> dict[str, np.ndarray]:
    """Values of small initializers and ``Constant`` node outputs (at most ``max_size`` elements).

    Enough to read shapes, axes, pads, slice bounds and pad values without copying weights.
    """
    values: dict[str, np.ndarray] = {}
    for tensor in graph.initializer:
        if np.prod(tensor.dims) <= max_size:
            values[tensor.name] = numpy_helper.to_array(tensor)
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            attr = node.attribute[0]
            if attr.name == "value" and np.prod(attr.t.dims) <= max_size:
                values[node.output[0]] = numpy_helper.to_array(attr.t)
            elif attr.name.startswith("value_"):
                values[node.output[0]] = np.array(onnx.helper.get_attribute_value(attr))
    return values


def data_tensors(graph: onnx.GraphProto, input_name: str) -> set[str]:
    """Tensors whose values depend on the sequence input (data flow stops at Shape/Size)."""
    data = {input_name}
    for node in graph.node:
        if node.op_type not in SHAPE_OPS and any(t in data for t in node.input):
            data.update(t for t in node.output if t)
    return data


def baked_batch_nodes(graph: onnx.GraphProto, input_name: str, batch: int) -> list[str]:
    """Names of data-path Reshape/Expand nodes whose constant target shape starts with ``batch``.

    Exporters fold ``x.view(x.size(0), -1)`` into ``Reshape(x, [B, -1])`` when the batch
    size B was fixed at export time; such a graph only runs in batches of exactly B.
    """
    values = constant_values(graph)
    data = data_tensors(graph, input_name)
    names = node_names(graph)
    found = []
    for name, node in zip(names, graph.node):
        if node.op_type in ("Reshape", "Expand") and node.input[0] in data and len(node.input) > 1:
            shape = values.get(node.input[1])
            if shape is not None and shape.ndim == 1 and len(shape) and int(shape[0]) == batch:
                found.append(name)
    return found


def _subgraph_names(node: onnx.NodeProto) -> Iterable[str]:
    """Outer-scope names read by the sub-graphs of control-flow nodes (If, Loop, Scan)."""
    for attr in node.attribute:
        for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
            for inner in sub.node:
                yield from inner.input
                yield from _subgraph_names(inner)


def extract(model: onnx.ModelProto, outputs: Sequence[str]) -> bytes:
    """Serialised model computing only ``outputs`` (intermediate tensors allowed).

    Keeps the nodes, initializers and graph inputs these outputs need, in the original
    order; the outputs are declared by name only (onnxruntime infers their types).
    """
    graph = model.graph
    needed = set(outputs)
    keep = []
    for node in reversed(graph.node):
        if any(t in needed for t in node.output):
            keep.append(node)
            needed.update(t for t in node.input if t)
            needed.update(_subgraph_names(node))
    sub = onnx.ModelProto()  # built field by field: the weights are copied once, only those needed
    sub.ir_version = model.ir_version
    sub.opset_import.extend(model.opset_import)
    sub.functions.extend(model.functions)
    sub.producer_name = model.producer_name
    sub.graph.name = graph.name
    sub.graph.node.extend(reversed(keep))
    sub.graph.initializer.extend(t for t in graph.initializer if t.name in needed)
    sub.graph.sparse_initializer.extend(t for t in graph.sparse_initializer if t.values.name in needed)
    sub.graph.input.extend(v for v in graph.input if v.name in needed)  # IR < 4 lists initializers too
    declared = {v.name: v for v in graph.output}
    for name in outputs:
        sub.graph.output.append(declared[name] if name in declared else onnx.ValueInfoProto(name=name))
    return sub.SerializeToString()
