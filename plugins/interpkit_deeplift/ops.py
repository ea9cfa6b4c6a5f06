"""Which torch calls DeepLIFT has a rule for, which are linear, and which are neither.

Every torch call a model makes is classified by its canonical name and by which of its
arguments depend on the input. A tensor depends on the input when it requires grad (the model's
parameters do not, inside :meth:`~interpkit.predictor.Predictor.torch_function`). Tensors
computed from the input without gradients (comparisons such as ``h > 0``, ``argmax``,
``detach()``) are *tainted*: an op that mixes them with input-dependent values (``h * (h > 0)``,
``h[h < 0] = 0``, ``torch.where(h > 0, h, 0.1 * h)``) is nonlinear even though autograd sees a
linear op.

* ruled: element-wise functions, max-pools and max reductions applied to one input-dependent
  tensor (:func:`ruled_kind`);
* linear: an allow-list of ops that are linear in their input-dependent arguments
  (:func:`is_linear`), e.g. convolutions, additions, views, sums over non-batch axes, and
  products or divisions with at most one input-dependent operand (the numerator);
* anything else that returns an input-dependent value has no rule: DeepLIFT reports it by name
  (it is differentiated as it is, at the reference), never silently.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["POOLS", "Tainted", "canonical", "dependent", "indices_slot", "is_linear", "normalize", "out_of_place", "ruled_kind",
           "tensors", "wants_indices"]

_ELEMENTWISE = frozenset({
    "relu", "relu6", "rrelu", "elu", "selu", "celu", "gelu", "silu", "mish", "leaky_relu", "prelu", "sigmoid",
    "tanh", "softplus", "softshrink", "hardshrink", "tanhshrink", "logsigmoid", "log_sigmoid", "softsign",
    "hardtanh", "hardsigmoid", "hardswish", "threshold", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p",
    "sqrt", "rsqrt", "square", "abs", "clamp", "clip", "clamp_min", "clamp_max", "sin", "cos", "tan", "atan",
    "asin", "acos", "sinh", "cosh", "asinh", "atanh", "erf", "erfc", "reciprocal", "pow", "maximum", "minimum",
    "fmax", "fmin", "expit", "special_expit", "logit", "sign", "sgn", "floor", "ceil", "round", "trunc",
})
POOLS = {
    "max_pool1d": F.max_pool1d, "max_pool2d": F.max_pool2d, "max_pool3d": F.max_pool3d,
    "max_pool1d_with_indices": F.max_pool1d, "max_pool2d_with_indices": F.max_pool2d,
    "max_pool3d_with_indices": F.max_pool3d,
    "adaptive_max_pool1d": F.adaptive_max_pool1d, "adaptive_max_pool2d": F.adaptive_max_pool2d,
    "adaptive_max_pool3d": F.adaptive_max_pool3d,
    "adaptive_max_pool1d_with_indices": F.adaptive_max_pool1d,
    "adaptive_max_pool2d_with_indices": F.adaptive_max_pool2d,
    "adaptive_max_pool3d_with_indices": F.adaptive_max_pool3d,
}
_REDUCTIONS = frozenset({"amax", "max"})
#: Linear in their input-dependent arguments, whatever the others (views, sums, concatenation, pads, casts).
_LINEAR = frozenset({
    "add", "__add__", "__radd__", "__iadd__", "sub", "subtract", "__sub__", "__rsub__", "__isub__", "rsub", "neg",
    "negative", "__neg__", "positive", "__pos__", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d", "cat", "concat", "concatenate", "stack", "hstack", "vstack",
    "reshape", "view", "view_as", "flatten", "unflatten", "squeeze", "unsqueeze", "permute", "transpose", "t",
    "swapaxes", "swapdims", "movedim", "moveaxis", "contiguous", "clone", "expand", "expand_as", "repeat",
    "repeat_interleave", "tile", "flip", "fliplr", "flipud", "roll", "narrow", "select", "__getitem__",
    "__setitem__", "index_select", "gather", "take_along_dim", "split", "split_with_sizes", "chunk", "unbind",
    "tensor_split", "pad", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "masked_fill", "where", "to", "type", "type_as", "float", "double", "cpu", "cuda",
    "interpolate", "upsample", "upsample_nearest", "pixel_shuffle", "pixel_unshuffle", "unfold", "fold",
    "__get__", "index_put", "index_add", "scatter", "scatter_add", "diagonal", "tril", "triu", "real",
    "as_strided", "diff", "trace", "copy_", "fill_", "zero_", "new_zeros", "zeros_like", "ones_like",
    "requires_grad", "retain_grad", "register_hook",  # bookkeeping, no computation
})
#: Linear when at most one operand depends on the input.
_PRODUCTS = frozenset({
    "mul", "multiply", "__mul__", "__rmul__", "__imul__", "matmul", "__matmul__", "__rmatmul__", "mm", "bmm",
    "einsum", "tensordot", "linear", "bilinear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "addmm", "baddbmm", "addmv", "outer", "dot", "mv", "kron",
})
#: Linear when the divisor does not depend on the input.
_DIVISIONS = frozenset({"div", "divide", "true_divide", "__truediv__", "__itruediv__", "__div__"})
#: Linear unless they reduce over the batch axis (which mixes sequences with references).
_SUMS = frozenset({"sum", "mean", "nansum", "nanmean", "cumsum"})


class Tainted:
    """Tensors computed from the input without gradients, by identity (tensors compare element-wise)."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref] = {}

    def add(self, tensor: torch.Tensor) -> None:
        self._refs[id(tensor)] = weakref.ref(tensor)

    def __contains__(self, tensor: object) -> bool:
        ref = self._refs.get(id(tensor))
        return ref is not None and ref() is tensor


def canonical(func: Any) -> tuple[str, bool]:
    """(name, in_place): ``F._threshold`` -> ("threshold", False), ``Tensor.relu_`` -> ("relu", True)."""
    name = getattr(func, "__name__", "") or ""
    in_place = name.endswith("_") and not name.endswith("__") and name not in ("copy_", "fill_", "zero_")
    if in_place:
        name = name[:-1]
    if name.startswith("_") and not name.startswith("__"):
        name = name.lstrip("_")
    return name, in_place


def normalize(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """The call with its input first: ``torch.sigmoid(input=h)`` -> ``torch.sigmoid(h)``."""
    if not args and "input" in kwargs:
        kwargs = dict(kwargs)
        return (kwargs.pop("input"),), kwargs
    return args, kwargs


def tensors(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor in nested tuples, lists and dict values."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors(item)


def dependent(value: Any) -> bool:
    """A floating tensor that requires grad: it depends on the input."""
    return isinstance(value, torch.Tensor) and value.requires_grad and value.is_floating_point()


def _dims(args: tuple, kwargs: dict, ndim: int) -> tuple[int, ...] | None:
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if dim is None or isinstance(dim, torch.Tensor) or not ndim:
        return None
    return tuple(d % ndim for d in ((dim,) if isinstance(dim, int) else dim))


def ruled_kind(name: str, args: tuple, kwargs: dict, tainted: Tainted) -> str | None:
    """"elementwise", "pool" or "reduce" for a call DeepLIFT has a rule for, else None.

    The rule needs the first argument to be the only input-dependent (or tainted) tensor of the
    call, and a reduction over some axes other than the batch axis.
    """
    if name not in _ELEMENTWISE and name not in POOLS and name not in _REDUCTIONS:
        return None
    if not args or not dependent(args[0]) or args[0] in tainted:
        return None
    if any(dependent(t) or t in tainted for t in tensors((args[1:], kwargs))):
        return None
    if name in _ELEMENTWISE:
        return "elementwise"
    if name in POOLS:
        return "pool" if args[0].ndim >= 3 else None
    dims = _dims(args, kwargs, args[0].ndim)
    return "reduce" if dims and 0 not in dims else None


def is_linear(name: str, args: tuple, kwargs: dict, tainted: Tainted) -> bool:
    """Whether a call whose output depends on the input is linear in it (see the module docstring)."""
    inputs = list(tensors((args, kwargs)))
    if any(t in tainted for t in inputs):
        return False
    if name in _PRODUCTS:
        return sum(dependent(t) for t in inputs) <= 1
    if name in _DIVISIONS:
        divisor = args[1] if len(args) > 1 else kwargs.get("other")
        return not dependent(divisor)
    if name in _SUMS:
        dims = _dims(args, kwargs, args[0].ndim if args and isinstance(args[0], torch.Tensor) else 0)
        return bool(dims) and 0 not in dims
    if name == "batch_norm":
        training = args[5] if len(args) > 5 else kwargs.get("training", False)
        return not training and sum(dependent(t) for t in inputs) <= 1
    return name in _LINEAR


def out_of_place(name: str) -> Any:
    """The out-of-place function of an in-place ruled op (``relu_`` -> ``torch.relu``).

    Looked up in torch, torch.nn.functional and the Tensor methods, in that order.

    Raises
    ------
    AttributeError
        If none of them has it.
    """
    for space in (torch, F, torch.Tensor):
        func = getattr(space, name, None)
        if callable(func):
            return func
    raise AttributeError(name)


def wants_indices(func: Any, name: str, args: tuple, kwargs: dict) -> bool:
    """Whether a max-pool call returns (values, indices)."""
    if "with_indices" in name or func in (torch.adaptive_max_pool1d,):
        return True
    slot = indices_slot(name)
    return bool(kwargs.get("return_indices")) or (len(args) > slot and bool(args[slot]))


def indices_slot(name: str) -> int:
    """Position of ``return_indices`` in a max-pool call's arguments."""
    return 2 if "adaptive" in name else 6
