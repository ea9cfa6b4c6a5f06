"""What each PyTorch module is, geometrically: kinds, 1-D geometry, and reading outputs as (N, C, L').

The layer table of a model is built from the module calls seen during one dry run (see
:mod:`interpkit_torch.trace`): every leaf module (a module without children; LSTM, GRU, RNN
and MultiheadAttention count as one) gets a row, in execution order, named by its name in
``named_modules()``. A module called k > 1 times gets rows ``name``, ``name#2``, ...,
``name#k``. Containers have no row.

Limitation: operations written in ``forward()`` as functions or tensor methods (residual
additions ``x + f(x)``, ``torch.cat``, cropping by slicing or ``F.pad``, reshapes) are not
modules, so forward hooks cannot see them. The table follows module order; a merge done in
``forward()`` has no row, and the geometry of the row after it follows the previous module.
For a residual network (SpliceAI, Pangolin) the receptive fields are those of the main
branch, and a crop done by slicing does not shift ``start``. A module may state its own kind
with a class attribute ``interpkit_kind`` (one of :data:`interpkit.probe.LAYER_KINDS`, e.g.
"identity" for a module that permutes the alphabet channels), plus ``kernel_size``,
``stride``, ``dilation`` and ``padding`` attributes for a local kind.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from interpkit.errors import InputError
from interpkit.probe import LAYER_KINDS, LOCAL_KINDS, LayerInfo

__all__ = ["Site", "describe_site", "infer_layout", "infer_length", "probe_modules", "static_receptive_field",
           "to_ncl", "torch_class"]

_CONV = {"Conv1d": 1, "Conv2d": 2, "LazyConv1d": 1, "LazyConv2d": 2}
_POOL = {"MaxPool1d": "maxpool", "MaxPool2d": "maxpool", "AvgPool1d": "avgpool", "AvgPool2d": "avgpool"}
_ADAPTIVE = {"AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"}
_NORM = {"BatchNorm1d", "BatchNorm2d", "SyncBatchNorm", "LazyBatchNorm1d", "LazyBatchNorm2d"}
_ACTIVATION = {"ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
               "Sigmoid", "LogSigmoid", "Hardsigmoid", "Tanh", "Hardtanh", "Hardswish", "Softplus", "Softsign",
               "Softshrink", "Hardshrink", "Tanhshrink", "Threshold"}
_SOFTMAX = {"Softmax", "LogSoftmax", "Softmin"}
_DROPOUT = {"Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "FeatureAlphaDropout"}
_DENSE = {"Linear", "LazyLinear"}
_RECURRENT = {"LSTM", "GRU", "RNN"}
_ATTENTION = {"MultiheadAttention"}
_SIMPLE = {**dict.fromkeys(_NORM, "norm"), **dict.fromkeys(_DROPOUT, "dropout"), "Identity": "identity",
           **dict.fromkeys(_RECURRENT, "recurrent"), **dict.fromkeys(_ATTENTION, "attention")}
_KNOWN = set(_CONV) | set(_POOL) | _ADAPTIVE | _ACTIVATION | _SOFTMAX | set(_SIMPLE) | _DENSE | {"Flatten", "Sequential"}
#: Custom activation classes recognised by name (e.g. ExplaiNN's exponential activation).
_CUSTOM_ACTIVATION = re.compile(r"(exp|exponential)(activation)?|.+activation", re.IGNORECASE)


def torch_class(module: nn.Module) -> str:
    """The torch.nn class a module is (its TorchScript ``original_name``, or the first known class in its MRO)."""
    if isinstance(module, torch.jit.ScriptModule):
        return str(module.original_name)
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn") and cls.__name__ in _KNOWN:
            return cls.__name__
    return type(module).__name__


def _declared_kind(module: nn.Module) -> str | None:
    kind = getattr(module, "interpkit_kind", None)
    if kind is not None and kind not in LAYER_KINDS:
        raise InputError(f"{type(module).__name__}.interpkit_kind == {kind!r}, must be one of {', '.join(LAYER_KINDS)}.")
    return kind


def _is_opaque(module: nn.Module) -> bool:
    """Modules probed as one layer although they have children."""
    return torch_class(module) in _RECURRENT | _ATTENTION or _declared_kind(module) is not None


def probe_modules(root: nn.Module, *, script_sequential: bool = False) -> list[tuple[str, nn.Module]]:
    """The modules that get rows, with their ``named_modules()`` names, in registration order.

    Parameters
    ----------
    root : nn.Module
    script_sequential : bool
        For a TorchScript module: descend only into ``nn.Sequential`` containers (whose
        forward is known), treating any other module as one layer. Default is False.

    Returns
    -------
    list of (name, module)
        Leaves (and opaque modules), each module once under its first name; a root that is
        itself a leaf is named by its class.
    """
    found: dict[int, tuple[str, nn.Module]] = {}

    def visit(name: str, module: nn.Module) -> None:
        children = list(module.named_children())
        descend = children and not _is_opaque(module) and (not script_sequential or torch_class(module) == "Sequential")
        if not descend:
            found.setdefault(id(module), (name or torch_class(module), module))
            return
        for key, child in children:
            visit(f"{name}.{key}" if name else key, child)

    visit("", root)
    return list(found.values())


# -- geometry -----------------------------------------------------------------------------
def _ivalue(value: Any) -> Any:
    node = value.node()
    if node.kind() == "prim::Constant":
        return value.toIValue()
    if node.kind() == "prim::ListConstruct":
        return [_ivalue(v) for v in node.inputs()]
    return None


#: TorchScript ops -> names of their arguments after the input (for traced modules, which keep no attributes).
_GRAPH_ARGS = {
    "aten::_convolution": ("weight", "bias", "stride", "padding", "dilation"),
    "aten::_convolution_mode": ("weight", "bias", "stride", "padding", "dilation"),
    "aten::conv1d": ("weight", "bias", "stride", "padding", "dilation"),
    "aten::conv2d": ("weight", "bias", "stride", "padding", "dilation"),
    "aten::max_pool1d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "aten::max_pool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "aten::avg_pool1d": ("kernel_size", "stride", "padding", "ceil_mode"),
    "aten::avg_pool2d": ("kernel_size", "stride", "padding", "ceil_mode"),
}


def _attributes(module: nn.Module, names: tuple[str, ...]) -> dict[str, Any]:
    """Geometry attributes of a module, from its Python/TorchScript attributes or, when traced, its graph."""
    found = {n: getattr(module, n) for n in names if hasattr(module, n)}
    if len(found) < len(names) and isinstance(module, torch.jit.ScriptModule):
        for node in module.graph.nodes():
            if node.kind() in _GRAPH_ARGS:
                args = list(node.inputs())[1:]
                values = {n: _ivalue(v) for n, v in zip(_GRAPH_ARGS[node.kind()], args)}
                found = {**{n: v for n, v in values.items() if n in names}, **found}
                break
    return found


def _pick(value: Any, axis: int) -> Any:
    if isinstance(value, (tuple, list)):
        return value[axis] if len(value) > axis else value[0]
    return value


@dataclass(frozen=True)
class _Geometry:
    kernel_size: int
    stride: int
    dilation: int
    padding: int  # left
    total_padding: int  # left + right, for output lengths
    ceil_mode: bool = False


def _local_geometry(module: nn.Module, cls: str, axis: int) -> _Geometry | None:
    """Kernel, stride, dilation and padding along sequence axis ``axis`` (0 for 1-D ops), or None if unknown."""
    if cls in _CONV:
        attrs = _attributes(module, ("stride", "padding", "dilation"))
        weight = getattr(module, "weight", None)
        if weight is None or isinstance(weight, nn.parameter.UninitializedParameter) or len(attrs) < 3:
            return None
        kernel = int(weight.shape[2 + axis])
    elif cls in _POOL or _declared_kind(module) in LOCAL_KINDS:
        attrs = _attributes(module, ("kernel_size", "stride", "padding", "dilation", "ceil_mode"))
        if "kernel_size" not in attrs:
            return None
        kernel = int(_pick(attrs["kernel_size"], axis))
    else:
        return None
    stride = _pick(attrs.get("stride") or kernel if cls in _POOL else attrs.get("stride", 1), axis)
    dilation = int(_pick(attrs.get("dilation", 1) or 1, axis))
    padding = attrs.get("padding", 0)
    k_eff = dilation * (kernel - 1) + 1
    if padding == "same":
        left, total = (k_eff - 1) // 2, k_eff - 1
    elif padding == "valid":
        left = total = 0
    else:
        left = int(_pick(padding, axis))
        total = 2 * left
    return _Geometry(kernel, int(stride), dilation, left, total, bool(attrs.get("ceil_mode", False)))


def _seq_axis(layout: str, shape: tuple[int, ...]) -> int:
    """Axis (2 or 3) of a 4-D tensor (N, C, H, W) that runs along the sequence."""
    if layout == "NCL1":
        return 2
    if layout == "NC1L":
        return 3
    return 2 if shape[3] == 1 and shape[2] > 1 else 3


def _geometry_axis(cls: str, layout: str, shape: tuple[int, ...] | None) -> int:
    if cls not in ("Conv2d", "LazyConv2d", "MaxPool2d", "AvgPool2d"):
        return 0
    if shape is None or len(shape) != 4:
        return 0 if layout == "NCL1" else 1
    return _seq_axis(layout, shape) - 2


# -- one row of the table ------------------------------------------------------------------
@dataclass(frozen=True)
class Site:
    """One module call in the layer table.

    Attributes
    ----------
    info : LayerInfo
        The row (name ``module_name`` or ``module_name#k`` for the k-th call).
    module_name : str
        The module's name in ``named_modules()``.
    orient : str
        How the module's output becomes (N, C, L'): "ncl", "nlc" (channels last), "lnc"
        (sequence-first recurrent output), "nc2"/"nc3" (4-D with the sequence on axis 2/3),
        "flat" ((N, F) -> (N, F, 1)).
    """

    info: LayerInfo
    module_name: str
    orient: str


def _orientation(cls: str, module: nn.Module, out_shape: tuple[int, ...], in_shape: tuple[int, ...] | None,
                 layout: str, previous: tuple[str, tuple[int, ...]] | None) -> str:
    if len(out_shape) != 3 and len(out_shape) != 4:
        return "flat"
    if len(out_shape) == 4:
        return f"nc{_seq_axis(layout, out_shape)}"
    if cls in _RECURRENT | _ATTENTION:
        return "nlc" if getattr(module, "batch_first", False) else "lnc"
    if cls in _DENSE:
        return "nlc"
    if cls in _CONV or cls in _POOL or cls in _ADAPTIVE or cls in _NORM:
        return "ncl"
    if previous is not None and previous[1] == in_shape:
        return previous[0]
    return "nlc" if layout == "NLC" else "ncl"


def _kind(cls: str, module: nn.Module, in_shape: tuple[int, ...] | None, out_shape: tuple[int, ...],
          orient: str) -> str:
    declared = _declared_kind(module)
    if declared is not None:
        return declared
    if cls in _CONV or cls in _POOL:
        return "conv" if cls in _CONV else _POOL[cls]
    if cls in _ADAPTIVE:
        return "global_pool" if out_shape[-1] == 1 and (len(out_shape) < 4 or out_shape[-2] == 1) else "unknown"
    if cls in _DENSE:
        return "dense" if len(out_shape) == 2 else "conv"  # a Linear applied per position is a 1x1 convolution
    if cls in _SIMPLE:
        return _SIMPLE[cls]
    if cls == "Flatten":
        return "flatten"
    same_shape = in_shape == out_shape
    if cls in _ACTIVATION and same_shape:
        return "activation"
    if cls in _SOFTMAX and same_shape:
        dim = getattr(module, "dim", None)
        channel_axis = {"ncl": 1, "nc2": 1, "nc3": 1, "flat": 1, "nlc": 2, "lnc": 2}[orient]
        return "activation" if dim is not None and dim % len(out_shape) == channel_axis else "unknown"
    if same_shape and _CUSTOM_ACTIVATION.fullmatch(type(module).__name__):
        return "activation"
    if in_shape is not None and len(in_shape) > 2 and len(out_shape) == 2 and math.prod(in_shape[1:]) == out_shape[1]:
        return "flatten"  # e.g. Kipoi's Lambda(lambda x: x.view(x.size(0), -1))
    return "unknown"


def describe_site(name: str, module_name: str, module: nn.Module, in_shape: tuple[int, ...] | None,
                  out_shape: tuple[int, ...], layout: str, previous: tuple[str, tuple[int, ...]] | None) -> Site:
    """The layer-table row of one module call.

    Parameters
    ----------
    name, module_name : str
        Row name and ``named_modules()`` name.
    module : nn.Module
    in_shape, out_shape : tuple of int
        Shapes of its first input (None if passed by keyword) and of its output, batch axis included.
    layout : str
        The model's input layout (decides which axis of a 4-D tensor is the sequence).
    previous : (orient, out_shape) or None
        The previous row's orientation and output shape (pointwise modules inherit it).

    Returns
    -------
    Site
    """
    cls = torch_class(module)
    orient = _orientation(cls, module, out_shape, in_shape, layout, previous)
    kind = _kind(cls, module, in_shape, out_shape, orient)
    probe = torch.empty(out_shape, device="meta")
    channels = int(to_ncl(probe, orient).shape[1])
    geometry = None
    if kind in LOCAL_KINDS:
        geometry = _local_geometry(module, cls, _geometry_axis(cls, layout, out_shape))
        if geometry is None and cls in _DENSE:
            geometry = _Geometry(1, 1, 1, 0, 0)
        if geometry is None:
            kind = "unknown"
    extra = {} if geometry is None else {"kernel_size": geometry.kernel_size, "stride": geometry.stride,
                                          "dilation": geometry.dilation, "padding": geometry.padding}
    return Site(LayerInfo(name, kind, channels=channels, **extra), module_name, orient)


def to_ncl(tensor: torch.Tensor, orient: str) -> torch.Tensor:
    """A module output as (N, C, L') given its orientation (see :class:`Site`)."""
    if orient == "ncl":
        return tensor
    if orient == "nlc":
        return tensor.transpose(1, 2)
    if orient == "lnc":
        return tensor.permute(1, 2, 0)
    if orient == "flat":
        return tensor.reshape(len(tensor), -1, 1)
    if orient == "nc2":
        tensor = tensor.transpose(2, 3)
    return tensor.reshape(tensor.shape[0], -1, tensor.shape[3])  # (N, C, 1, L) -> (N, C, L)


# -- static analysis (no forward pass) -------------------------------------------------------
def _leaves(root: nn.Module) -> Iterator[tuple[nn.Module, str]]:
    for _, module in probe_modules(root):
        yield module, torch_class(module)


def infer_layout(root: nn.Module, name: str) -> str:
    """The input layout from the first convolution (registration order): Conv1d(4, ...) -> "NCL";
    Conv2d(4, ...) with kernel (k, 1) -> "NCL1", (1, k) -> "NC1L".

    Raises
    ------
    InputError
        If there is no convolution, it does not take 4 channels, or its kernel does not tell.
    """
    hint = "pass layout= one of NCL, NLC, NC1L, NCL1 (--layout)"
    first = next(((m, c) for m, c in _leaves(root) if c in _CONV), None)
    if first is None:
        raise InputError(f"cannot infer the input layout of {name}: it has no Conv1d/Conv2d layer; {hint}.")
    module, cls = first
    weight = getattr(module, "weight", None)
    if weight is None or isinstance(weight, nn.parameter.UninitializedParameter):
        raise InputError(f"cannot infer the input layout of {name}: its first convolution has no weights yet; {hint}.")
    in_channels = int(weight.shape[1]) * int(getattr(module, "groups", 1))
    if in_channels != 4:
        raise InputError(f"cannot infer the input layout of {name}: its first convolution takes {in_channels} "
                         f"channels, not 4 (A, C, G, T); {hint}.")
    if _CONV[cls] == 1:
        return "NCL"
    kh, kw = int(weight.shape[2]), int(weight.shape[3])
    if kw == 1 and kh > 1:
        return "NCL1"
    if kh == 1 and kw > 1:
        return "NC1L"
    raise InputError(f"cannot infer the input layout of {name}: its first Conv2d has kernel ({kh}, {kw}), which "
                     f"does not tell which axis is the sequence; {hint}.")


def _length_steps(root: nn.Module, layout: str, *, stop_at_dense: bool) -> tuple[list[_Geometry], Any, int | None]:
    """Conv/pool geometries in registration order, the module that stopped the walk, and the last channel count."""
    steps, channels = [], None
    axis = 0 if layout == "NCL1" else 1
    for module, cls in _leaves(root):
        if cls in _DENSE and stop_at_dense:
            return steps, module, channels
        geometry = _local_geometry(module, cls, axis if cls.endswith("2d") else 0)
        if geometry is not None:
            steps.append(geometry)
            if cls in _CONV:
                channels = int(module.weight.shape[0])
        elif not (cls in _NORM | _ACTIVATION | _DROPOUT | {"Identity", "Flatten"} or
                  _declared_kind(module) in ("activation", "norm", "dropout", "identity", "flatten")):
            return steps, module, None
    return steps, None, channels


def infer_length(root: nn.Module, layout: str) -> tuple[int, int] | None:
    """Input lengths (bp) that fit the first nn.Linear after the convolution stack.

    Walks the leaves in registration order up to the first Linear, through convolutions,
    pools and position-wise modules only, and solves ``in_features = C * L_out(L)`` by
    inverting ``L' = floor((L + P - d (k - 1) - 1) / s) + 1`` layer by layer.

    Returns
    -------
    (low, high) or None
        The inclusive range of input lengths giving that ``in_features`` (several when a
        pool drops a remainder), or None when the walk meets anything else or finds no Linear.
    """
    steps, stop, channels = _length_steps(root, layout, stop_at_dense=True)
    if stop is None or torch_class(stop) not in _DENSE or channels is None:
        return None
    weight = getattr(stop, "weight", None)
    if weight is None or isinstance(weight, nn.parameter.UninitializedParameter) or weight.shape[1] % channels:
        return None
    low = high = int(weight.shape[1]) // channels
    for g in reversed(steps):
        if g.ceil_mode:
            return None
        shift = g.total_padding - g.dilation * (g.kernel_size - 1) - 1
        low, high = (low - 1) * g.stride - shift, high * g.stride - shift - 1
    low = max(low, 1)
    return (low, high) if low <= high else None


def static_receptive_field(root: nn.Module, layout: str) -> int:
    """Receptive field (bp) of all convolutions and pools chained in registration order: a dry-run length."""
    steps, _, _ = _length_steps(root, layout, stop_at_dense=False)
    field, jump = 1, 1
    for g in steps:
        field += g.dilation * (g.kernel_size - 1) * jump
        jump *= g.stride
    return field
