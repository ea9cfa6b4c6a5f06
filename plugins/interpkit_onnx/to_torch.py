"""A small translation of ONNX graphs into PyTorch, so that ONNX models have gradients.

onnxruntime's Python API computes no input gradients, and onnx2torch cannot be
installed beside our torch. This module evaluates the ONNX graph node by node with
torch functions, reading the weights from the model's initializers: it is the same
graph, not a re-implementation of the network. Supported ops (the forms of opsets
7-21; attributes as the ONNX operator specification defines them):

Conv, BatchNormalization, LayerNormalization, Relu, Sigmoid, Tanh, Exp, Elu, LeakyRelu,
Softplus, Clip, Erf, Sqrt, Pow, Neg, Abs, Log, MaxPool, AveragePool, GlobalMaxPool,
GlobalAveragePool, Gemm, MatMul, Add, Sub, Mul, Div, Flatten, Reshape, Transpose,
Unsqueeze, Squeeze, Concat, Constant, Identity, Dropout (inference: identity), Softmax,
LogSoftmax, Pad (constant, reflect, edge), Slice, ReduceMean, ReduceSum, ReduceMax,
and the shape arithmetic exporters emit around them: Shape, Gather, Cast, ConstantOfShape.

Not supported (the model then has no GRADIENT capability, see :func:`unsupported_ops`):
any other op or domain (custom ops), MaxPool's indices output, AveragePool with
dilations or with asymmetric pads that exclude the padding from the average, and
BatchNormalization in training mode.

Every op is checked against onnxruntime's own outputs on real exports (max abs
difference <= 1e-5) in tests/test_onnx_backend.py. torch is imported on first use only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from interpkit.errors import CapabilityError

from .graph import graph_inputs

__all__ = ["SUPPORTED_OPS", "to_torch", "unsupported_ops"]

torch: Any = None  # bound by _import_torch()
F: Any = None


def _import_torch() -> None:
    global torch, F  # torch is imported lazily, once
    if torch is None:
        import torch as _torch
        import torch.nn.functional as _functional

        torch, F = _torch, _functional


# -- geometry helpers ------------------------------------------------------------------
def _spatial_pads(a: dict, spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                  dilations: Sequence[int]) -> list[int]:
    """ONNX pads [begin..., end...] of a Conv/pool, resolving auto_pad against the input size."""
    n = len(kernel)
    auto = a.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return [0] * 2 * n
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        return list(a.get("pads", [0] * 2 * n))
    begin, end = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin + end


def _torch_pad_spec(begin: Sequence[int], end: Sequence[int]) -> list[int]:
    """F.pad's argument (last axis first) for per-axis begin/end pads, leading (0, 0) pairs dropped."""
    spec = [p for i in reversed(range(len(begin))) for p in (int(begin[i]), int(end[i]))]
    while spec[-2:] == [0, 0] and len(spec) > 2:
        spec = spec[:-2]
    return spec


def _window(a: dict, x: Any, kernel: Sequence[int]) -> tuple[list[int], list[int], list[int], list[int]]:
    n = len(kernel)
    strides = [int(s) for s in a.get("strides", [1] * n)]
    dilations = [int(d) for d in a.get("dilations", [1] * n)]
    pads = _spatial_pads(a, x.shape[2:], kernel, strides, dilations)
    return strides, dilations, pads[:n], pads[n:]


# -- op handlers: handler(attrs, *inputs) -> tensor or tuple of tensors ------------------
def _conv(a, x, w, b=None):
    kernel = list(w.shape[2:])
    strides, dilations, begin, end = _window(a, x, kernel)
    if begin != end:
        x, begin = F.pad(x, _torch_pad_spec([0, 0, *begin], [0, 0, *end])), [0] * len(kernel)
    conv = (F.conv1d, F.conv2d, F.conv3d)[len(kernel) - 1]
    return conv(x, w, b, strides, begin, dilations, a.get("group", 1))


def _maxpool(a, x):
    kernel = [int(k) for k in a["kernel_shape"]]
    strides, dilations, begin, end = _window(a, x, kernel)
    if any(begin) or any(end):
        x = F.pad(x, _torch_pad_spec([0, 0, *begin], [0, 0, *end]), value=-math.inf)
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[len(kernel) - 1]
    return pool(x, kernel, strides, 0, dilations, ceil_mode=bool(a.get("ceil_mode", 0)))


def _avgpool(a, x):
    kernel = [int(k) for k in a["kernel_shape"]]
    strides, _, begin, end = _window(a, x, kernel)
    include = bool(a.get("count_include_pad", 0))
    if begin != end or any(2 * p > k for p, k in zip(begin, kernel)):  # torch pads symmetrically, <= k/2
        x, begin = F.pad(x, _torch_pad_spec([0, 0, *begin], [0, 0, *end])), [0] * len(kernel)
    pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(kernel) - 1]
    return pool(x, kernel, strides, begin, ceil_mode=bool(a.get("ceil_mode", 0)), count_include_pad=include)


def _batchnorm(a, x, scale, bias, mean, var, *_):
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, a.get("epsilon", 1e-5))


def _layernorm(a, x, scale, bias=None):
    dims = tuple(range(a.get("axis", -1) % x.dim(), x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    y = (x - mean) / torch.sqrt(var + a.get("epsilon", 1e-5)) * scale
    return y if bias is None else y + bias


def _clip(a, x, low=None, high=None):
    low = a.get("min") if low is None else low
    high = a.get("max") if high is None else high
    return x if low is None and high is None else torch.clamp(x, low, high)


def _gemm(a, A, B, C=None):
    A = A.transpose(0, 1) if a.get("transA", 0) else A
    B = B.transpose(0, 1) if a.get("transB", 0) else B
    y = a.get("alpha", 1.0) * (A @ B)
    return y if C is None else y + a.get("beta", 1.0) * C


def _div(a, x, y):
    if not (x.is_floating_point() or y.is_floating_point()):
        return torch.div(x, y, rounding_mode="trunc")
    return x / y


def _flatten(a, x):
    axis = a.get("axis", 1)
    axis = axis + x.dim() if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), -1)


def _reshape(a, x, shape):
    target = [int(v) for v in shape.tolist()]
    if not a.get("allowzero", 0):
        target = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
    fixed, scale = a.get("_batch_scale", (0, 1))
    if scale != 1 and target and target[0] == fixed and x.shape[0] == fixed * scale:
        target[0] = fixed * scale  # a graph exported with a fixed batch size, run on k times as many rows
    return x.reshape(target)


def _axes(a, tensor) -> list[int] | None:
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    return None if tensor is None else [int(v) for v in tensor.reshape(-1).tolist()]


def _unsqueeze(a, x, axes=None):
    axes = _axes(a, axes)
    rank = x.dim() + len(axes)
    for axis in sorted(i % rank for i in axes):
        x = x.unsqueeze(axis)
    return x


def _squeeze(a, x, axes=None):
    axes = _axes(a, axes)
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    return x.squeeze(tuple(i % x.dim() for i in axes)) if axes else x


def _softmax(log: bool):
    def op(a, x):
        fn = F.log_softmax if log else F.softmax
        if a["_opset"] >= 13:
            return fn(x, dim=a.get("axis", -1))
        axis = a.get("axis", 1) % x.dim()  # opset < 13: softmax over the axes from `axis` on, flattened
        return fn(x.reshape(math.prod(x.shape[:axis]), -1), dim=1).reshape(x.shape)
    return op


def _pad(a, x, pads=None, value=None, axes=None):
    if "pads" in a:  # opset < 11
        pads, value = [int(p) for p in a["pads"]], a.get("value", 0.0)
    else:
        pads = [int(p) for p in pads.tolist()]
        value = 0.0 if value is None else float(value.reshape(-1)[0])
    axes = list(range(x.dim())) if axes is None else [int(i) % x.dim() for i in axes.tolist()]
    begin, end = [0] * x.dim(), [0] * x.dim()
    for k, axis in enumerate(axes):
        begin[axis], end[axis] = pads[k], pads[len(axes) + k]
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[a.get("mode", "constant")]
    spec = _torch_pad_spec(begin, end)
    return F.pad(x, spec, value=value) if mode == "constant" else F.pad(x, spec, mode=mode)


def _slice(a, x, starts=None, ends=None, axes=None, steps=None):
    if "starts" in a:  # opset < 10
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = starts.tolist(), ends.tolist()
        axes = None if axes is None else axes.tolist()
        steps = None if steps is None else steps.tolist()
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    for axis, start, stop, step in zip(axes, starts, ends, steps):
        axis = int(axis) % x.dim()
        start, stop, step = slice(int(start), int(stop), int(step)).indices(x.shape[axis])
        if step == 1:
            x = x.narrow(axis, start, max(stop - start, 0))
        else:
            x = x.index_select(axis, torch.arange(start, stop, step, device=x.device))
    return x


def _reduce(name: str):
    def op(a, x, axes=None):
        axes = _axes(a, axes)
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.dim()))
        dims, keep = tuple(i % x.dim() for i in axes), bool(a.get("keepdims", 1))
        return getattr(x, name)(dim=dims, keepdim=keep)
    return op


def _gather(a, x, index):
    axis = a.get("axis", 0) % x.dim()
    index = index.long()
    index = torch.where(index < 0, index + x.shape[axis], index)
    out = x.index_select(axis, index.reshape(-1))
    return out.reshape((*x.shape[:axis], *index.shape, *x.shape[axis + 1:]))


def _cast(a, x):
    dtype = torch.from_numpy(np.empty(0, onnx.helper.tensor_dtype_to_np_dtype(a["to"]))).dtype
    return x.to(dtype)


def _constant_of_shape(a, shape):
    value = a.get("value")
    fill = torch.from_numpy(numpy_helper.to_array(value).reshape(-1)[:1].copy() if value is not None
                            else np.zeros(1, np.float32))
    return torch.full([int(d) for d in shape.tolist()], fill.item(), dtype=fill.dtype, device=shape.device)


def _shape(a, x):
    return torch.tensor(list(x.shape)[a.get("start", 0):a.get("end")], dtype=torch.int64, device=x.device)


_OPS = {
    "Conv": _conv, "BatchNormalization": _batchnorm, "LayerNormalization": _layernorm,
    "Relu": lambda a, x: F.relu(x), "Sigmoid": lambda a, x: torch.sigmoid(x), "Tanh": lambda a, x: torch.tanh(x),
    "Exp": lambda a, x: torch.exp(x), "Elu": lambda a, x: F.elu(x, a.get("alpha", 1.0)),
    "LeakyRelu": lambda a, x: F.leaky_relu(x, a.get("alpha", 0.01)), "Softplus": lambda a, x: F.softplus(x),
    "Clip": _clip, "Erf": lambda a, x: torch.erf(x), "Sqrt": lambda a, x: torch.sqrt(x),
    "Pow": lambda a, x, y: torch.pow(x, y), "Neg": lambda a, x: -x, "Abs": lambda a, x: torch.abs(x),
    "Log": lambda a, x: torch.log(x),
    "MaxPool": _maxpool, "AveragePool": _avgpool,
    "GlobalMaxPool": lambda a, x: x.amax(dim=tuple(range(2, x.dim())), keepdim=True),
    "GlobalAveragePool": lambda a, x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    "Gemm": _gemm, "MatMul": lambda a, x, y: torch.matmul(x, y),
    "Add": lambda a, x, y: x + y, "Sub": lambda a, x, y: x - y, "Mul": lambda a, x, y: x * y, "Div": _div,
    "Flatten": _flatten, "Reshape": _reshape, "Transpose": lambda a, x: x.permute(
        *(a.get("perm") or range(x.dim() - 1, -1, -1))),
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Concat": lambda a, *xs: torch.cat(xs, dim=a["axis"]),
    "Identity": lambda a, x: x, "Dropout": lambda a, x, *_: (x, torch.ones_like(x, dtype=torch.bool)),
    "Softmax": _softmax(log=False), "LogSoftmax": _softmax(log=True), "Pad": _pad, "Slice": _slice,
    "ReduceMean": _reduce("mean"), "ReduceSum": _reduce("sum"), "ReduceMax": _reduce("amax"),
    "Shape": _shape, "Gather": _gather, "Cast": _cast, "ConstantOfShape": _constant_of_shape, "Constant": None,  # constants are read at translation
}
#: ONNX op types :func:`to_torch` translates (default domain only).
SUPPORTED_OPS = frozenset(_OPS)


def _attrs(node: onnx.NodeProto, opset: int) -> dict[str, Any]:
    out: dict[str, Any] = {"_opset": opset}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        out[attr.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)


def _needed(graph: onnx.GraphProto, outputs: Sequence[str]) -> list[int]:
    """Indices of the nodes that ``outputs`` depend on, in graph order."""
    needed, keep = set(outputs), []
    for index in reversed(range(len(graph.node))):
        node = graph.node[index]
        if any(t in needed for t in node.output):
            keep.append(index)
            needed.update(t for t in node.input if t)
    return keep[::-1]


def _limitation(node: onnx.NodeProto, opset: int) -> str | None:
    """Why a node cannot be translated, as "<OpType>[(reason)]", or None."""
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return f"{node.domain}:{op}"
    if op not in SUPPORTED_OPS:
        return op
    a = _attrs(node, opset)
    if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
        return "MaxPool(indices output)"
    if op == "AveragePool":
        n = len(a["kernel_shape"])
        pads = list(a.get("pads", [0] * 2 * n))
        if any(d != 1 for d in a.get("dilations", [1] * n)):
            return "AveragePool(dilations)"
        if not a.get("count_include_pad", 0) and (pads[:n] != pads[n:] or a.get("auto_pad", "NOTSET") != "NOTSET"
                                                  or any(2 * p > k for p, k in zip(pads, a["kernel_shape"] * 2))):
            return "AveragePool(asymmetric pads excluded from the average)"
    if op == "BatchNormalization" and (a.get("training_mode", 0) or len([t for t in node.output if t]) > 1):
        return "BatchNormalization(training mode)"
    if op == "Pad" and a.get("mode", "constant") not in ("constant", "reflect", "edge"):
        return f"Pad(mode {a['mode']})"
    return None


def unsupported_ops(model: onnx.ModelProto, outputs: Sequence[str]) -> list[str]:
    """The ops on the way to ``outputs`` that :func:`to_torch` cannot translate (sorted, unique).

    Needs no torch: the model's GRADIENT capability is decided from this at load time.
    """
    opset = _opset(model)
    found = {_limitation(model.graph.node[i], opset) for i in _needed(model.graph, outputs)}
    return sorted(found - {None})


@functools.cache
def _module_class() -> type:
    _import_torch()

    class OnnxModule(torch.nn.Module):
        """An ONNX graph evaluated with torch ops; weights are non-trainable buffers.

        ``forward(*inputs)`` takes the graph inputs in order and returns its output(s);
        :meth:`run` returns any named tensors of the graph.
        """

        def __init__(self, model: onnx.ModelProto) -> None:
            super().__init__()
            graph, opset = model.graph, _opset(model)
            self.graph = graph
            self.input_names = [v.name for v in graph_inputs(graph)]
            self.output_names = [v.name for v in graph.output]
            self._constants: dict[str, str] = {}
            arrays = [(t.name, numpy_helper.to_array(t)) for t in graph.initializer]
            arrays += [(n.output[0], numpy_helper.to_array(n.attribute[0].t) if n.attribute[0].name == "value"
                        else np.array(onnx.helper.get_attribute_value(n.attribute[0])))
                       for n in graph.node if n.op_type == "Constant"]
            for index, (name, array) in enumerate(arrays):
                if array.dtype.kind in "biuf":
                    self.register_buffer(f"c{index}", torch.from_numpy(np.array(array)))
                    self._constants[name] = f"c{index}"
            self._nodes = [(n.op_type, _attrs(n, opset), list(n.input), list(n.output), _limitation(n, opset))
                           for n in graph.node]
            self._plans: dict[tuple[str, ...], list[int]] = {}

        def run(self, feeds: dict[str, Any], outputs: Sequence[str], *, batch: int | None = None) -> list[Any]:
            """Tensors ``outputs`` (graph outputs or intermediate tensors) for input tensors ``feeds``.

            ``batch``: the fixed batch size the graph was exported with, if any. Feeds of k times
            as many rows then run at once: a Reshape whose target starts with that batch size and
            whose input holds k batches keeps the k batches (its first target entry is scaled).

            Raises
            ------
            CapabilityError
                If a needed node is not translatable (see :func:`unsupported_ops`).
            """
            env = {name: getattr(self, attr) for name, attr in self._constants.items()}
            env.update(feeds)
            key = tuple(o for o in outputs if o not in env)
            if key not in self._plans:
                self._plans[key] = _needed(self.graph, key)
            rows = next(iter(feeds.values())).shape[0] if feeds else 0
            scale = rows // batch if batch and rows % batch == 0 and rows != batch else 1
            for index in self._plans[key]:
                op, attrs, inputs, outs, limitation = self._nodes[index]
                if op == "Constant":
                    continue
                if op == "Reshape" and scale != 1:
                    attrs = {**attrs, "_batch_scale": (batch, scale)}
                if limitation is not None:
                    raise CapabilityError(f"the ONNX op {limitation} has no torch translation, so this tensor "
                                          "has no gradient.")
                result = _OPS[op](attrs, *[env[t] if t else None for t in inputs])
                for name, value in zip(outs, result if isinstance(result, tuple) else (result,)):
                    if name:
                        env[name] = value
            return [env[o] for o in outputs]

        def forward(self, *inputs: Any) -> Any:
            outs = self.run(dict(zip(self.input_names, inputs)), self.output_names)
            return outs[0] if len(outs) == 1 else tuple(outs)

    return OnnxModule


def to_torch(model: onnx.ModelProto) -> Any:
    """Translate an ONNX model into a ``torch.nn.Module`` (eval mode, CPU, no trainable weights).

    Parameters
    ----------
    model : onnx.ModelProto

    Returns
    -------
    torch.nn.Module
        ``module(*inputs)`` returns the graph output(s); ``module.run(feeds, names)``
        returns named intermediate tensors.

    Raises
    ------
    CapabilityError
        If torch is not installed. Untranslatable ops raise when a tensor that needs
        them is computed; check with :func:`unsupported_ops` first.
    """
    try:
        module_class = _module_class()
    except ImportError:
        raise CapabilityError("gradients of ONNX models need torch (pip install 'interpkit[torch]').") from None
    return module_class(model).eval()
