"""The layer table of an ONNX graph: one layer per node on the sequence's data path.

Nodes are read in the graph's (topological) order. Only nodes whose inputs depend on
the sequence input count as layers; shape arithmetic (Shape -> Gather -> Concat) and
constants do not. Each tensor carries where its channel and position (sequence) axes
are, starting from the input layout, so that transposes, reshapes and 2-D
convolutions over (1, L) inputs keep the geometry right, and every tensor can be
returned as (N, C, L').

Op -> kind: Conv -> conv (kernel, stride, dilation and left padding along the
position axis); MaxPool/AveragePool -> maxpool/avgpool; GlobalMaxPool/GlobalAveragePool
and reductions over positions -> global_pool; BatchNormalization -> norm; Relu, Sigmoid,
Tanh, Exp, Elu, LeakyRelu, Softplus, Clip, ... -> activation; Gemm and MatMul (with a
following bias Add folded in) -> dense, or a per-position conv of kernel 1 when MatMul
contracts the channel axis; Flatten, and reshapes that merge positions into channels ->
flatten; Add/Sub, Mul/Div, Concat -> add, multiply, concat with ``inputs`` from the
graph edges; Dropout -> dropout; Identity, Cast, Transpose, Unsqueeze, Squeeze and
reshapes that only move or drop singleton and channel axes -> identity (position
preserving); LSTM/GRU/RNN -> recurrent; a zero Pad feeding one Conv is folded into its padding; anything else
(cropping slices, upsampling, softmax over positions, custom ops) -> unknown, which
makes the geometry above it unknown rather than silently wrong.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from interpkit.probe import INPUT, LayerInfo, same_padding

from .graph import SHAPE_OPS, constant_values

__all__ = ["INPUT_AXES", "Axes", "LayerGraph", "build_layers", "to_ncl_order"]

ACTIVATIONS = frozenset({
    "Relu", "Sigmoid", "Tanh", "Exp", "Elu", "LeakyRelu", "Softplus", "Clip", "Selu", "Celu", "HardSigmoid",
    "HardSwish", "Softsign", "Gelu", "Mish", "PRelu", "ThresholdedRelu", "Erf", "Abs", "Log", "Sqrt", "Neg",
    "Reciprocal",
})
_MERGE_KINDS = {"Add": "add", "Sub": "add", "Sum": "add", "Mean": "add", "Mul": "multiply", "Div": "multiply"}


@dataclass(frozen=True)
class Axes:
    """Where a tensor's channel and position axes are (None: absent or unknown)."""

    rank: int | None
    ch: int | None
    pos: int | None


#: Axes of the sequence input for each layout.
INPUT_AXES = {"NCL": Axes(3, 1, 2), "NLC": Axes(3, 2, 1), "NC1L": Axes(4, 1, 3), "NCL1": Axes(4, 1, 2)}
_NO_AXES = Axes(None, None, None)


def to_ncl_order(axes: Axes, rank: int) -> list[int]:
    """Axis order putting batch first, channels (and any other axes) next, positions last.

    Reshaping the transposed tensor to (N, -1, L') (or (N, -1, 1) without a position
    axis) gives the (N, C, L') form of :meth:`LayerProbe.activations`.
    """
    ch = [axes.ch] if axes.ch is not None and axes.ch != axes.pos and axes.ch < rank else []
    pos = [axes.pos] if axes.pos is not None and axes.pos < rank else []
    rest = [i for i in range(1, rank) if i not in ch + pos]
    return [0, *ch, *rest, *pos]


@dataclass
class LayerGraph:
    """The layer table and where each layer's tensors are.

    Attributes
    ----------
    layers : list of LayerInfo
    output : dict of str to str
        Layer name -> the tensor it outputs.
    pre_activation : dict of str to str
        Activation layer name -> its input tensor.
    pool_input : dict of str to str
        Max-pool layer name -> its input tensor.
    axes : dict of str to Axes
        Tensor -> its channel and position axes.
    below : dict of str to frozenset of str
        Layer name -> the layers it depends on, itself included.
    """

    layers: list[LayerInfo] = field(default_factory=list)
    output: dict[str, str] = field(default_factory=dict)
    pre_activation: dict[str, str] = field(default_factory=dict)
    pool_input: dict[str, str] = field(default_factory=dict)
    axes: dict[str, Axes] = field(default_factory=dict)
    below: dict[str, frozenset[str]] = field(default_factory=dict)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        out[attr.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _shift(axes: Axes, rank: int | None) -> Axes:
    """Axes of a tensor broadcast (right-aligned) to ``rank``."""
    if axes.rank is None or rank is None:
        return axes
    d = rank - axes.rank
    return Axes(rank, None if axes.ch is None else axes.ch + d, None if axes.pos is None else axes.pos + d)


def _remap(axes: Axes, mapping: dict[int, int], rank: int) -> Axes:
    return Axes(rank, mapping.get(axes.ch), mapping.get(axes.pos))


class _Walker:
    """Classifies one node at a time; handlers return (kind, geometry fields, output axes)."""

    def __init__(self, model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]],
                 values: dict[str, np.ndarray]) -> None:
        graph = model.graph
        self.shapes = shapes
        self.values = {**constant_values(graph), **values}
        self.weights = {t.name: tuple(t.dims) for t in graph.initializer}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.axes: dict[str, Axes] = {}
        self.folded_pad: dict[str, int] = {}  # Pad output -> its left padding (bp), added to the Conv reading it
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for node in graph.node:
            for t in node.input:
                self.consumers[t].append(node.op_type)

    # -- helpers ---------------------------------------------------------------------
    def _ints(self, node: onnx.NodeProto, attrs: dict, name: str, index: int) -> list[int] | None:
        """An int list given as attribute ``name`` (old opsets) or as constant input ``index``."""
        if name in attrs:
            return [int(v) for v in attrs[name]]
        if len(node.input) > index and node.input[index] in self.values:
            return [int(v) for v in np.atleast_1d(self.values[node.input[index]])]
        return None

    def _unknown(self, x: str, out: str) -> tuple[str, dict, Axes]:
        same = x in self.shapes and self.shapes.get(x) == self.shapes.get(out)
        rank = len(self.shapes[out]) if out in self.shapes else None
        return "unknown", {}, self.axes[x] if same else Axes(rank, None, None)

    # -- handlers --------------------------------------------------------------------
    def local(self, node, attrs, x, out, kind):
        a = self.axes[x]
        if a.ch != 1 or (a.pos is not None and a.pos < 2):
            return self._unknown(x, out)
        if a.pos is None:  # above a global layer: geometry no longer matters
            return kind, {}, a
        s = a.pos - 2
        kernel = attrs.get("kernel_shape") or list(self.weights.get(node.input[1], ())[2:])
        if len(kernel) <= s:
            return self._unknown(x, out)
        k, stride = int(kernel[s]), int(attrs.get("strides", [1] * len(kernel))[s])
        dilation = int(attrs.get("dilations", [1] * len(kernel))[s])
        k_eff = dilation * (k - 1) + 1
        auto = attrs.get("auto_pad", "NOTSET")
        length = self.shapes[x][a.pos] if x in self.shapes and len(self.shapes[x]) > a.pos else None
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            padding = same_padding(k_eff, stride, length, lower=auto == "SAME_LOWER")
        else:
            padding = 0 if auto == "VALID" else int(attrs.get("pads", [0] * 2 * len(kernel))[s])
        padding += self.folded_pad.get(x, 0)
        fields = {"kernel_size": k, "stride": stride, "dilation": dilation, "padding": padding}
        if kind == "conv" and node.input[1] in self.weights:
            fields["channels"] = int(self.weights[node.input[1]][0])
        return kind, fields, a

    def global_pool(self, node, attrs, x, out):
        a = self.axes[x]
        return "global_pool", {}, Axes(a.rank, a.ch, None)

    def reduce(self, node, attrs, x, out):
        a = self.axes[x]
        axes = self._ints(node, attrs, "axes", 1)
        if a.rank is None:
            return self._unknown(x, out)
        reduced = set(range(a.rank)) if not axes else {i % a.rank for i in axes}
        if 0 in reduced:  # over the sequences too
            return self._unknown(x, out)
        keep = bool(attrs.get("keepdims", 1))
        mapping = {i: i if keep else i - sum(r < i for r in reduced) for i in range(a.rank) if i not in reduced}
        rank = a.rank if keep else a.rank - len(reduced)
        return "global_pool" if a.pos in reduced else "identity", {}, _remap(a, mapping, rank)

    def norm(self, node, attrs, x, out):
        a = self.axes[x]
        if node.op_type == "BatchNormalization":
            return ("norm", {}, a) if a.ch == 1 else self._unknown(x, out)
        normalized = range(attrs.get("axis", -1) % a.rank, a.rank) if a.rank else None
        return ("norm", {}, a) if normalized is not None and a.pos not in normalized else self._unknown(x, out)

    def softmax(self, node, attrs, x, out):
        a = self.axes[x]
        if a.rank is None:
            return self._unknown(x, out)
        axis = attrs.get("axis", -1 if self.opset >= 13 else 1) % a.rank
        over = {axis} if self.opset >= 13 else set(range(axis, a.rank))
        return ("activation", {}, a) if a.pos not in over else self._unknown(x, out)

    def merge(self, node, attrs, x, out, ins):
        rank = len(self.shapes[out]) if out in self.shapes else self.axes[x].rank
        shifted = [_shift(self.axes[t], rank) for t in ins]
        positions = {s.pos for s in shifted if s.pos is not None}
        kind = _MERGE_KINDS.get(node.op_type)
        if (kind is None and len(ins) > 1) or len(positions) > 1:
            return self._unknown(x, out)
        best = next((s for s in shifted if s.pos is not None), shifted[0])
        return kind or "activation", {}, best

    def matmul(self, node, attrs, x, out):
        a = self.axes[x]
        b = self.weights.get(node.input[1])
        if b is None or len(b) != 2 or a.rank is None:
            return self._unknown(x, out)
        last = a.rank - 1
        if a.pos is not None and last == a.ch:  # a Linear applied at every position: a 1 bp convolution
            return "conv", {"channels": int(b[1])}, a
        return "dense", {"channels": int(b[1])}, Axes(a.rank, last, None)

    def gemm(self, node, attrs, x, out):
        b = self.weights.get(node.input[1])
        if b is None:
            return self._unknown(x, out)
        return "dense", {"channels": int(b[0] if attrs.get("transB", 0) else b[1])}, Axes(2, 1, None)

    def flatten(self, node, attrs, x, out):
        a = self.axes[x]
        if attrs.get("axis", 1) == 1 or a.pos is None:
            return "flatten", {}, Axes(2, 1, None)
        return self._unknown(x, out)

    def reshape(self, node, attrs, x, out):
        a = self.axes[x]
        if x not in self.shapes or out not in self.shapes:
            return self._unknown(x, out)
        s_in, s_out = self.shapes[x], self.shapes[out]
        big_in = [(i, d) for i, d in enumerate(s_in) if i and d != 1]
        big_out = [(i, d) for i, d in enumerate(s_out) if i and d != 1]
        if [d for _, d in big_in] == [d for _, d in big_out]:  # only singleton axes move
            mapping = {i: j for (i, _), (j, _) in zip(big_in, big_out)}
            return "identity", {}, _remap(a, mapping, len(s_out))
        if len(big_out) <= 1:
            return "flatten", {}, Axes(len(s_out), big_out[0][0] if big_out else 1, None)
        return self._unknown(x, out)

    def transpose(self, node, attrs, x, out):
        a = self.axes[x]
        perm = attrs.get("perm") or (list(range(a.rank))[::-1] if a.rank else None)
        if not perm or perm[0] != 0:
            return self._unknown(x, out)
        return "identity", {}, _remap(a, {old: new for new, old in enumerate(perm)}, len(perm))

    def unsqueeze(self, node, attrs, x, out):
        a = self.axes[x]
        axes = self._ints(node, attrs, "axes", 1)
        if axes is None or a.rank is None:
            return self._unknown(x, out)
        rank = a.rank + len(axes)
        inserted = {i % rank for i in axes}
        if 0 in inserted:
            return self._unknown(x, out)
        kept = [i for i in range(rank) if i not in inserted]
        return "identity", {}, _remap(a, dict(enumerate(kept)), rank)

    def squeeze(self, node, attrs, x, out):
        a = self.axes[x]
        axes = self._ints(node, attrs, "axes", 1)
        if axes is None and x in self.shapes:
            axes = [i for i, d in enumerate(self.shapes[x]) if i and d == 1]
        if axes is None or a.rank is None or 0 in {i % a.rank for i in axes}:
            return self._unknown(x, out)
        removed = {i % a.rank for i in axes}
        kept = [i for i in range(a.rank) if i not in removed]
        return "identity", {}, _remap(a, {old: new for new, old in enumerate(kept)}, len(kept))

    def concat(self, node, attrs, x, out, ins):
        a = self.axes[x]
        axis = attrs.get("axis", 1) % a.rank if a.rank else None
        if axis not in (None, 0) and all(self.axes[t].pos is None for t in ins):  # above global layers
            return "concat", {}, Axes(a.rank, axis, None)
        if axis in (None, 0, a.pos) or any(self.axes[t] != a for t in ins):
            return self._unknown(x, out)
        return "concat", {}, a

    def pad(self, node, attrs, x, out):
        a = self.axes[x]
        pads = self._ints(node, attrs, "pads", 1)
        if pads is None or a.rank is None or a.pos is None:
            return self._unknown(x, out)
        axes = self._ints(node, {}, "", 3) or list(range(len(pads) // 2))
        axes = [i % a.rank for i in axes]
        if a.pos not in axes:
            return "identity", {}, a
        k = axes.index(a.pos)
        begin, end = pads[k], pads[len(axes) + k]
        value = self.values.get(node.input[2]) if len(node.input) > 2 and node.input[2] else 0
        if begin == end == 0:
            return "identity", {}, a
        zero = attrs.get("mode", "constant") == "constant" and value is not None and float(np.sum(value)) == 0
        if zero and begin >= 0 and self.consumers[out] == ["Conv"]:
            return "fold", {"padding": begin}, a
        return self._unknown(x, out)

    def slice(self, node, attrs, x, out):
        a = self.axes[x]
        s_in, s_out = self.shapes.get(x), self.shapes.get(out)
        starts = self._ints(node, attrs, "starts", 1)
        axes = self._ints(node, attrs, "axes", 3) or (list(range(len(starts))) if starts else None)
        if s_in is None or s_out is None or len(s_in) != len(s_out) or axes is None:
            return self._unknown(x, out)
        steps = self._ints(node, {}, "", 4) or [1] * len(axes)
        axes = [i % len(s_in) for i in axes]
        if a.pos in axes and (steps[axes.index(a.pos)] != 1 or s_in[a.pos] != s_out[a.pos]):
            return self._unknown(x, out)  # cropping or reversing positions
        return "identity", {}, a

    def classify(self, node, x, out, ins) -> tuple[str, dict, Axes]:
        attrs = _attrs(node)
        op = node.op_type
        if op in ("Conv", "MaxPool", "AveragePool"):
            return self.local(node, attrs, x, out, {"Conv": "conv", "MaxPool": "maxpool"}.get(op, "avgpool"))
        if op in ("GlobalMaxPool", "GlobalAveragePool", "GlobalLpPool"):
            return self.global_pool(node, attrs, x, out)
        if op.startswith("Reduce"):
            return self.reduce(node, attrs, x, out)
        if op in ("BatchNormalization", "LayerNormalization"):
            return self.norm(node, attrs, x, out)
        if op in ("Softmax", "LogSoftmax"):
            return self.softmax(node, attrs, x, out)
        if op in ACTIVATIONS and len(ins) == 1:
            return "activation", {}, self.axes[x]
        if op in (*_MERGE_KINDS, "Max", "Min", "Pow"):
            return self.merge(node, attrs, x, out, ins)
        if op == "Concat":
            return self.concat(node, attrs, x, out, ins)
        if op in ("LSTM", "GRU", "RNN"):
            return "recurrent", {}, _NO_AXES
        if op in ("Dropout", "Identity", "Cast"):
            return ("dropout" if op == "Dropout" else "identity"), {}, self.axes[x]
        handler = {"MatMul": self.matmul, "Gemm": self.gemm, "Flatten": self.flatten, "Reshape": self.reshape,
                   "Transpose": self.transpose, "Unsqueeze": self.unsqueeze, "Squeeze": self.squeeze,
                   "Pad": self.pad, "Slice": self.slice}.get(op)
        if handler is None or (op in ("MatMul", "Gemm") and len(ins) > 1):
            return self._unknown(x, out)
        return handler(node, attrs, x, out)


def _channels(shape: tuple[int, ...] | None, axes: Axes, batch: int) -> int | None:
    """C of the (N, C, L') form of a tensor of the probe run (``batch`` sequences)."""
    if shape is None:
        return None
    if shape and shape[0] == batch:
        sizes = [d for i, d in enumerate(shape) if i and i != axes.pos]
    elif list(shape).count(batch) == 1:  # sequences on another axis: everything else is channels
        sizes = [d for d in shape if d != batch]
    else:
        return None
    return int(np.prod(sizes)) if sizes else 1


def build_layers(model: onnx.ModelProto, names: Sequence[str], input_name: str, layout: str,
                 shapes: dict[str, tuple[int, ...]], values: dict[str, np.ndarray] | None = None, *,
                 batch: int = 1) -> LayerGraph:
    """The layer table of a graph whose sequence input is ``input_name`` in ``layout``.

    Parameters
    ----------
    model : onnx.ModelProto
    names : sequence of str
        Node names (see :func:`interpkit_onnx.graph.node_names`).
    input_name : str
    layout : {"NCL", "NLC", "NC1L", "NCL1"}
    shapes : dict of str to tuple of int
        Shapes of the data-path tensors for one probe batch (from a run); tensors
        missing here make reshapes and slices "unknown".
    values : dict of str to ndarray or None
        Values of computed (non-constant) small tensors read by data-path nodes, such
        as pads built from Shape ops, from the same run. Default is None.
    batch : int
        Number of sequences in that run. Default is 1.

    Returns
    -------
    LayerGraph
    """
    walker = _Walker(model, shapes, values or {})
    walker.axes[input_name] = INPUT_AXES[layout]
    owner = {input_name: INPUT}  # data tensor -> the layer that produced it
    result = LayerGraph()
    previous = INPUT
    for name, node in zip(names, model.graph.node):
        ins = [t for t in node.input if t in owner]
        if not ins or node.op_type in SHAPE_OPS:
            continue
        x, out = ins[0], node.output[0]
        parents = list(dict.fromkeys(owner[t] for t in ins))
        bias_of = owner[x]
        if (node.op_type == "Add" and len(ins) == 1 and walker.consumers[x] == ["Add"]
                and result.output.get(bias_of) == x and _kind(result, bias_of) in ("dense", "conv")
                and node.input[1 - list(node.input).index(x)] in walker.weights):
            result.output[bias_of] = out  # MatMul + bias Add = one dense layer
            owner[out], walker.axes[out] = bias_of, walker.axes[x]
            continue
        kind, fields, out_axes = walker.classify(node, x, out, ins)
        walker.axes[out] = out_axes
        for extra in node.output[1:]:
            if extra:
                owner[extra], walker.axes[extra] = name, _NO_AXES
        if kind == "fold":
            walker.folded_pad[out] = fields["padding"]
            owner[out] = owner[x]
            continue
        owner[out] = name
        fields.setdefault("channels", _channels(shapes.get(out), out_axes, batch))
        if kind in ("add", "multiply", "concat") and len(parents) > 1:
            inputs = tuple(parents)
        else:
            inputs = () if parents[0] == previous else (parents[0],)
        result.layers.append(LayerInfo(name, kind, inputs=inputs, **fields))
        result.output[name] = out
        if kind == "activation":
            result.pre_activation[name] = x
        if kind == "maxpool":
            result.pool_input[name] = x
        result.below[name] = frozenset({name}).union(*(result.below.get(p, ()) for p in parents))
        previous = name
    result.axes = walker.axes
    return result


def _kind(result: LayerGraph, name: str) -> str | None:
    return next((info.kind for info in result.layers if info.name == name), None)
