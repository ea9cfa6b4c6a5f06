"""A translation of Keras models into PyTorch, so that methods that rewrite the backward pass run on them.

DeepLIFT's rules attach to torch calls (``F.relu``, ``torch.sigmoid``, ``F.max_pool1d``, ...). This
module evaluates a Keras 3 or tf_keras model layer by layer with torch functions, using the Keras
layers' own weights (copied once into buffers): it is the same functional graph (branches, merges,
shared layers, models used as layers), not a re-implementation. Tensors keep the Keras layout
(channels last unless a layer says ``data_format="channels_first"``); convolutions and pools move
the channel axis to where torch wants it and back. Every nonlinearity is one plain torch call:
activations through their ``torch.nn.functional`` form, max pools through ``F.max_pool1d/2d``
(TensorFlow's "same" padding added with ``F.pad`` and ``-inf``), global max pools and ``Maximum``
through ``torch.amax``.

Supported layers (exact classes of ``keras.layers`` / ``tf_keras.layers``; inference behaviour):

- InputLayer; Functional and Sequential models used as layers;
- Conv1D, Conv2D (padding "valid", "same" as TensorFlow pads, "causal"; strides, dilation_rate,
  groups, data_format, use_bias, inline ``activation``); Dense (any rank, on the last axis);
- BatchNormalization (moving statistics; any axis, center/scale), LayerNormalization (trailing
  axes, no rms_scaling);
- Activation and ReLU (max_value, negative_slope, threshold), LeakyReLU, ELU, PReLU (shared_axes),
  Softmax (one or several axes), ThresholdedReLU (tf_keras);
- MaxPooling1D/2D, AveragePooling1D/2D ("same" averages exclude the padding, as TensorFlow),
  GlobalMaxPooling1D/2D, GlobalAveragePooling1D/2D (keepdims);
- Flatten, Reshape, Permute, RepeatVector, ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D;
- Dropout, SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, AlphaDropout,
  ActivityRegularization, Identity (identity at inference);
- Add, Subtract, Multiply, Average, Maximum, Minimum (ranks aligned as Keras does), Concatenate.

Activations by name (inline or in Activation layers), as each framework defines them: linear, relu,
sigmoid, tanh, exponential, softplus, softsign, elu, selu, gelu (exact, erf form), swish/silu,
hard_sigmoid (Keras 3: relu6(x + 3) / 6; tf_keras: clip(0.2 x + 0.5, 0, 1)), softmax (last axis),
mish; Keras 3 only: leaky_relu (slope 0.2), relu6, hard_silu/hard_swish, celu, hard_tanh,
log_sigmoid, log_softmax, tanh_shrink, soft_shrink.

Not supported (see :func:`unsupported_layers`): every other layer class, including subclasses of
the supported ones (they may change ``call``), Lambda, custom and recurrent layers, attention,
separable/depthwise/transposed convolutions, Embedding, Masking and Keras 3 ops in a functional
graph; activations that are not the framework's own functions; quantized Dense; BatchNormalization
with renorm or virtual batches; layers called with ``training=True`` in the graph; subclassed
models. The translation computes in float32 whatever the model's dtype policy. Every layer kind is
checked against Keras' own forward pass (max abs difference <= 1e-5) in
tests/test_keras_to_torch.py. torch is imported on first use only.
"""

from __future__ import annotations

import functools
import importlib
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from interpkit.errors import CapabilityError

from ._runtime import framework_of, import_framework

__all__ = ["SUPPORTED_LAYERS", "to_torch", "unsupported_layers"]

torch: Any = None  # torch and torch.nn.functional, bound on first use: the plugin loads without torch
F: Any = None


def _import_torch() -> None:
    global torch, F
    if torch is None:
        torch, F = importlib.import_module("torch"), importlib.import_module("torch.nn.functional")


class _Refused(Exception):
    """A layer (or its configuration) has no translation; the message says why."""


# -- activations -----------------------------------------------------------------------------------------
def _hard_sigmoid_tf_keras(x: Any) -> Any:
    return F.hardtanh(x * 0.2 + 0.5, 0.0, 1.0)


_SHARED_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "linear": lambda x: x,
    "relu": lambda x: F.relu(x),
    "sigmoid": lambda x: torch.sigmoid(x),
    "tanh": lambda x: torch.tanh(x),
    "exponential": lambda x: torch.exp(x),
    "softplus": lambda x: F.softplus(x),
    "softsign": lambda x: F.softsign(x),
    "elu": lambda x: F.elu(x),
    "selu": lambda x: F.selu(x),
    "gelu": lambda x: F.gelu(x),  # both frameworks default to the exact (erf) form
    "swish": lambda x: F.silu(x),
    "silu": lambda x: F.silu(x),
    "softmax": lambda x: F.softmax(x, dim=-1),
    "mish": lambda x: F.mish(x),
}
_ACTIVATIONS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "keras": {
        **_SHARED_ACTIVATIONS,
        "hard_sigmoid": lambda x: F.hardsigmoid(x),  # relu6(x + 3) / 6
        "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
        "relu6": lambda x: F.relu6(x),
        "hard_silu": lambda x: F.hardswish(x),  # x * relu6(x + 3) / 6
        "celu": lambda x: F.celu(x),
        "hard_tanh": lambda x: F.hardtanh(x),
        "log_sigmoid": lambda x: F.logsigmoid(x),
        "log_softmax": lambda x: F.log_softmax(x, dim=-1),
        "tanh_shrink": lambda x: F.tanhshrink(x),
        "soft_shrink": lambda x: F.softshrink(x, 0.5),
    },
    "tf_keras": {**_SHARED_ACTIVATIONS, "hard_sigmoid": _hard_sigmoid_tf_keras},  # clip(0.2 x + 0.5, 0, 1)
}


@functools.cache
def _known_activations(framework: str) -> dict[int, str]:
    """id -> name of the framework's own activation functions, by attribute and as ``activations.get`` resolves
    names (tf_keras maps "silu" to ``tf.nn.silu``)."""
    fw = import_framework(framework)
    known: dict[int, str] = {}
    for name in _ACTIVATIONS[framework]:
        candidates = [getattr(fw.activations, name, None)]
        try:
            candidates.append(fw.activations.get(name))
        except (ValueError, TypeError, KeyError):
            pass
        known.update((id(f), name) for f in candidates if f is not None)
    return known


def _activation(fw: Any, act: Any) -> Callable[[Any], Any]:
    """The torch form of a Keras activation function (one of the framework's own, found by identity)."""
    table = _ACTIVATIONS[fw.__name__]
    if act is None:
        return table["linear"]
    name = _known_activations(fw.__name__).get(id(act))
    if name is None:
        raise _Refused(f"activation {getattr(act, '__name__', type(act).__name__)!r}")
    return table[name]


# -- geometry helpers ------------------------------------------------------------------------------------
def _tuple(value: Any, n: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    return tuple(int(v) for v in values)


def _same_pads(sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
               dilations: Sequence[int]) -> list[tuple[int, int]]:
    """TensorFlow's "same" padding per spatial axis: (before, after), the odd element after."""
    pads = []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _pad_spec(pads: Sequence[tuple[int, int]]) -> list[int]:
    """F.pad's argument (last axis first) for (before, after) pads of the trailing axes."""
    return [p for before, after in reversed(pads) for p in (before, after)]


def _channels_first(x: Any, last: bool) -> Any:
    return x.movedim(-1, 1) if last else x


def _channels_back(x: Any, last: bool) -> Any:
    return x.movedim(1, -1) if last else x


def _axis(axis: int, rank: int) -> int:
    return axis % rank


# -- layer builders: builder(layer, fw) -> (call(module, *inputs), weights() -> dict of arrays) ----------
_NO_WEIGHTS: Callable[[], dict[str, np.ndarray]] = dict


def _array(variable: Any) -> np.ndarray:
    value = variable.numpy() if hasattr(variable, "numpy") else variable
    return np.array(value, dtype=np.float32)


def _conv(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    cfg = layer.get_config()
    rank = 1 if type(layer).__name__ == "Conv1D" else 2
    kernel, strides = _tuple(cfg["kernel_size"], rank), _tuple(cfg["strides"], rank)
    dilations, groups = _tuple(cfg.get("dilation_rate", 1), rank), int(cfg.get("groups", 1) or 1)
    padding, last = cfg["padding"], cfg.get("data_format", "channels_last") != "channels_first"
    if padding not in ("valid", "same", "causal") or (padding == "causal" and rank != 1):
        raise _Refused(f"padding {padding!r}")
    act = _activation(fw, layer.activation)
    use_bias = bool(cfg.get("use_bias", True))

    def weights() -> dict[str, np.ndarray]:
        w = _array(layer.kernel)  # (*kernel, in / groups, out) -> (out, in / groups, *kernel)
        out = {"kernel": np.ascontiguousarray(np.transpose(w, (rank + 1, rank, *range(rank))))}
        if use_bias:
            out["bias"] = _array(layer.bias)
        return out

    def call(m: Any, x: Any) -> Any:
        x = _channels_first(x, last)
        pad: Any = 0
        if padding == "causal":
            x = F.pad(x, [dilations[0] * (kernel[0] - 1), 0])
        elif padding == "same":
            pads = _same_pads(x.shape[2:], kernel, strides, dilations)
            if all(a == b for a, b in pads):
                pad = tuple(a for a, _ in pads)
            else:
                x = F.pad(x, _pad_spec(pads))
        y = (F.conv1d, F.conv2d)[rank - 1](x, m.kernel, m.bias if use_bias else None, strides, pad, dilations, groups)
        return act(_channels_back(y, last))

    return call, weights


def _dense(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    if getattr(layer, "quantization_mode", None):
        raise _Refused(f"quantized ({layer.quantization_mode})")
    act, use_bias = _activation(fw, layer.activation), bool(layer.get_config().get("use_bias", True))

    def weights() -> dict[str, np.ndarray]:
        out = {"kernel": np.ascontiguousarray(_array(layer.kernel).T)}  # (in, out) -> (out, in)
        if use_bias:
            out["bias"] = _array(layer.bias)
        return out

    return (lambda m, x: act(F.linear(x, m.kernel, m.bias if use_bias else None))), weights


def _broadcast_shape(x: Any, axes: Sequence[int]) -> list[int]:
    shape = [1] * x.dim()
    for a in axes:
        shape[_axis(a, x.dim())] = x.shape[_axis(a, x.dim())]
    return shape


def _batchnorm(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    cfg = layer.get_config()
    if cfg.get("renorm") or cfg.get("virtual_batch_size"):
        raise _Refused("renorm or virtual batches")
    axes = _tuple(cfg.get("axis", -1), 1)

    def weights() -> dict[str, np.ndarray]:
        mean, var = _array(layer.moving_mean), _array(layer.moving_variance)
        gamma = _array(layer.gamma) if getattr(layer, "gamma", None) is not None else np.ones_like(mean)
        beta = _array(layer.beta) if getattr(layer, "beta", None) is not None else np.zeros_like(mean)
        # as tf.nn.batch_normalization: x * inv + (beta - mean * inv), inv = gamma / sqrt(var + eps)
        inv = (np.float32(1.0) / np.sqrt(var + np.float32(cfg["epsilon"]))) * gamma
        return {"scale": inv.astype(np.float32), "shift": (beta - mean * inv).astype(np.float32)}

    def call(m: Any, x: Any) -> Any:
        shape = _broadcast_shape(x, axes)
        return x * m.scale.reshape(shape) + m.shift.reshape(shape)

    return call, weights


def _layernorm(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    cfg = layer.get_config()
    if cfg.get("rms_scaling"):
        raise _Refused("rms_scaling")
    axes = _tuple(cfg.get("axis", -1), 1)
    try:
        rank = len(layer.input.shape)
    except (AttributeError, ValueError, RuntimeError):  # a shared layer: negative axes need no rank
        rank = 0 if all(a < 0 for a in axes) else -1
    normal = sorted(a % rank if rank > 0 else a for a in axes)
    if rank < 0 or normal != list(range(normal[-1] - len(normal) + 1, normal[-1] + 1)) or \
            normal[-1] != (rank - 1 if rank > 0 else -1):
        raise _Refused(f"axis {cfg['axis']} (only the trailing axes are translated)")
    center, scale, eps = bool(cfg.get("center", True)), bool(cfg.get("scale", True)), float(cfg["epsilon"])

    def weights() -> dict[str, np.ndarray]:
        out = {}
        if scale:
            out["gamma"] = _array(layer.gamma)
        if center:
            out["beta"] = _array(layer.beta)
        return out

    def call(m: Any, x: Any) -> Any:
        shape = tuple(x.shape[-len(normal):])
        gamma = m.gamma.reshape(shape) if scale else None
        beta = m.beta.reshape(shape) if center else None
        return F.layer_norm(x, shape, gamma, beta, eps)

    return call, weights


def _relu_call(slope: float, max_value: float | None, threshold: float) -> Callable[[Any, Any], Any]:
    """Keras' relu(x, negative_slope, max_value, threshold), term by term as both frameworks compute it."""

    def call(m: Any, x: Any) -> Any:
        if slope and max_value is None and threshold == 0:
            return F.leaky_relu(x, slope)
        clip = max_value is not None
        if threshold != 0:
            y = F.threshold(x, threshold, 0.0)  # x where x > threshold, else 0
        elif max_value == 6:
            y, clip = F.relu6(x), False
        else:
            y = F.relu(x)
        if clip:
            y = F.hardtanh(y, 0.0, max_value)
        if slope:
            y = y - slope * F.relu(threshold - x)
        return y

    return call


def _relu(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    cfg = layer.get_config()
    max_value = None if cfg.get("max_value") is None else float(cfg["max_value"])
    return _relu_call(float(cfg.get("negative_slope", 0.0)), max_value, float(cfg.get("threshold", 0.0))), _NO_WEIGHTS


def _leaky_relu(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    cfg = layer.get_config()
    slope = float(cfg["negative_slope"] if "negative_slope" in cfg else cfg["alpha"])
    return (lambda m, x: F.leaky_relu(x, slope)), _NO_WEIGHTS


def _elu(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    alpha = float(layer.get_config().get("alpha", 1.0))
    return (lambda m, x: F.elu(x, alpha)), _NO_WEIGHTS


def _thresholded_relu(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    theta = float(layer.get_config()["theta"])
    return (lambda m, x: F.threshold(x, theta, 0.0)), _NO_WEIGHTS


def _prelu(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    def call(m: Any, x: Any) -> Any:
        # relu(x) - alpha * relu(-x) as one F.prelu on the flattened tensor (alpha broadcast over shared axes)
        alpha = m.alpha.expand(x.shape[1:]).reshape(-1)
        return F.prelu(x.reshape(x.shape[0], -1), alpha).reshape(x.shape)

    return call, lambda: {"alpha": _array(layer.alpha)}


def _softmax(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    axes = _tuple(layer.get_config().get("axis", -1), 1)

    def call(m: Any, x: Any) -> Any:
        if len(axes) == 1:
            return F.softmax(x, dim=axes[0])
        dims = sorted(_axis(a, x.dim()) for a in axes)
        moved = x.movedim(dims, list(range(x.dim() - len(dims), x.dim())))
        flat = F.softmax(moved.reshape(*moved.shape[: -len(dims)], -1), dim=-1).reshape(moved.shape)
        return flat.movedim(list(range(x.dim() - len(dims), x.dim())), dims)

    return call, _NO_WEIGHTS


def _activation_layer(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    act = _activation(fw, layer.activation)
    return (lambda m, x: act(x)), _NO_WEIGHTS


def _identity(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    return (lambda m, x: x), _NO_WEIGHTS


def _pool_config(layer: Any) -> tuple[int, tuple[int, ...], tuple[int, ...], str, bool]:
    cfg = layer.get_config()
    rank = 1 if type(layer).__name__.endswith("1D") else 2
    kernel = _tuple(cfg["pool_size"], rank)
    strides = _tuple(cfg.get("strides") or kernel, rank)
    padding = cfg.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise _Refused(f"padding {padding!r}")
    return rank, kernel, strides, padding, cfg.get("data_format", "channels_last") != "channels_first"


def _maxpool(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    rank, kernel, strides, padding, last = _pool_config(layer)

    def call(m: Any, x: Any) -> Any:
        x = _channels_first(x, last)
        if padding == "same":
            pads = _same_pads(x.shape[2:], kernel, strides, [1] * rank)
            if any(a or b for a, b in pads):
                x = F.pad(x, _pad_spec(pads), value=-math.inf)
        y = (F.max_pool1d, F.max_pool2d)[rank - 1](x, kernel, strides)
        return _channels_back(y, last)

    return call, _NO_WEIGHTS


def _avgpool(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    rank, kernel, strides, padding, last = _pool_config(layer)

    def call(m: Any, x: Any) -> Any:
        x = _channels_first(x, last)
        pool = (F.avg_pool1d, F.avg_pool2d)[rank - 1]
        pads = _same_pads(x.shape[2:], kernel, strides, [1] * rank) if padding == "same" else []
        if not any(a or b for a, b in pads):
            return _channels_back(pool(x, kernel, strides), last)
        # TensorFlow averages over the real positions only: sum over the zero-padded window / their count
        spec = _pad_spec(pads)
        ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
        counts = pool(F.pad(ones, spec), kernel, strides)
        return _channels_back(pool(F.pad(x, spec), kernel, strides) / counts, last)

    return call, _NO_WEIGHTS


def _global_pool(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    cfg = layer.get_config()
    rank = 1 if type(layer).__name__.endswith("1D") else 2
    last = cfg.get("data_format", "channels_last") != "channels_first"
    axes = tuple(range(1, 1 + rank)) if last else tuple(range(2, 2 + rank))
    keep = bool(cfg.get("keepdims", False))
    if type(layer).__name__.startswith("GlobalMax"):
        return (lambda m, x: torch.amax(x, dim=axes, keepdim=keep)), _NO_WEIGHTS
    return (lambda m, x: torch.mean(x, dim=axes, keepdim=keep)), _NO_WEIGHTS


def _flatten(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    first = layer.get_config().get("data_format", "channels_last") == "channels_first"

    def call(m: Any, x: Any) -> Any:
        if first and x.dim() > 2:  # Keras moves the channels last before flattening
            x = x.movedim(1, -1)
        return x.reshape(x.shape[0], -1)

    return call, _NO_WEIGHTS


def _reshape(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    target = tuple(int(d) for d in layer.get_config()["target_shape"])
    return (lambda m, x: x.reshape(x.shape[0], *target)), _NO_WEIGHTS


def _permute(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    dims = tuple(int(d) for d in layer.get_config()["dims"])
    return (lambda m, x: x.permute(0, *dims)), _NO_WEIGHTS


def _repeat_vector(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    n = int(layer.get_config()["n"])
    return (lambda m, x: x.unsqueeze(1).expand(-1, n, -1)), _NO_WEIGHTS


def _spatial_slices(layer: Any, key: str) -> tuple[list[tuple[int, int]], bool]:
    """(before, after) per spatial axis of a ZeroPadding/Cropping layer, and whether channels are last."""
    cfg = layer.get_config()
    value = cfg[key]  # (before, after) for 1-D layers, ((top, bottom), (left, right)) for 2-D ones
    pairs = [_tuple(value, 2)] if type(layer).__name__.endswith("1D") else [_tuple(v, 2) for v in value]
    return pairs, cfg.get("data_format", "channels_last") != "channels_first"


def _zero_padding(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    pairs, last = _spatial_slices(layer, "padding")
    spec = ([0, 0] if last else []) + _pad_spec(pairs)
    return (lambda m, x: F.pad(x, spec)), _NO_WEIGHTS


def _cropping(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    pairs, last = _spatial_slices(layer, "cropping")
    first_axis = 1 if last else 2

    def call(m: Any, x: Any) -> Any:
        for k, (before, after) in enumerate(pairs):
            axis = first_axis + k
            x = x.narrow(axis, before, x.shape[axis] - before - after)
        return x

    return call, _NO_WEIGHTS


def _upsampling(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    size = int(layer.get_config()["size"])
    return (lambda m, x: torch.repeat_interleave(x, size, dim=1)), _NO_WEIGHTS


def _aligned(xs: Sequence[Any]) -> list[Any]:
    """Merge inputs of lower rank expanded at axis 1 until all ranks agree (as Keras' Merge layers do)."""
    rank = max(x.dim() for x in xs)
    out = []
    for x in xs:
        while x.dim() < rank:
            x = x.unsqueeze(1)
        out.append(x)
    return out


def _add(*xs: Any) -> Any:
    return functools.reduce(lambda a, b: a + b, _aligned(xs))


def _multiply(*xs: Any) -> Any:
    return functools.reduce(lambda a, b: a * b, _aligned(xs))


def _subtract(a: Any, b: Any) -> Any:
    a, b = _aligned((a, b))
    return a - b


def _maximum(*xs: Any) -> Any:
    return torch.amax(torch.stack(torch.broadcast_tensors(*_aligned(xs)), dim=-1), dim=-1)


def _minimum(*xs: Any) -> Any:
    return -torch.amax(torch.stack([-x for x in torch.broadcast_tensors(*_aligned(xs))], dim=-1), dim=-1)


_MERGES: dict[str, Callable[..., Any]] = {
    "Add": _add,
    "Subtract": _subtract,
    "Multiply": _multiply,
    "Average": lambda *xs: _add(*xs) / len(xs),
    "Maximum": _maximum,
    "Minimum": _minimum,
}


def _merge(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    fn = _MERGES[type(layer).__name__]
    return (lambda m, *xs: fn(*xs)), _NO_WEIGHTS


def _concatenate(layer: Any, fw: Any) -> tuple[Callable, Callable]:
    axis = int(layer.get_config().get("axis", -1))
    return (lambda m, *xs: torch.cat(xs, dim=axis)), _NO_WEIGHTS


_BUILDERS: dict[str, Callable[[Any, Any], tuple[Callable, Callable]]] = {
    "Conv1D": _conv, "Conv2D": _conv, "Dense": _dense,
    "BatchNormalization": _batchnorm, "LayerNormalization": _layernorm,
    "Activation": _activation_layer, "ReLU": _relu, "LeakyReLU": _leaky_relu, "ELU": _elu, "PReLU": _prelu,
    "Softmax": _softmax, "ThresholdedReLU": _thresholded_relu,
    "MaxPooling1D": _maxpool, "MaxPooling2D": _maxpool, "AveragePooling1D": _avgpool, "AveragePooling2D": _avgpool,
    **dict.fromkeys(("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D",
                     "GlobalAveragePooling2D"), _global_pool),
    "Flatten": _flatten, "Reshape": _reshape, "Permute": _permute, "RepeatVector": _repeat_vector,
    "ZeroPadding1D": _zero_padding, "ZeroPadding2D": _zero_padding, "Cropping1D": _cropping,
    "Cropping2D": _cropping, "UpSampling1D": _upsampling,
    **dict.fromkeys(("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
                     "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity"), _identity),
    **dict.fromkeys(_MERGES, _merge), "Concatenate": _concatenate,
}
#: Keras layer classes :func:`to_torch` translates (exact classes of keras.layers / tf_keras.layers).
SUPPORTED_LAYERS = frozenset({*_BUILDERS, "InputLayer", "Functional", "Sequential"})


# -- the functional graph ----------------------------------------------------------------------------------
def _is_graph_model(fw: Any, obj: Any) -> bool:
    """A Functional or Sequential model of the framework itself (not a subclass that may change ``call``)."""
    cls = type(obj)
    return cls.__name__ in ("Functional", "Sequential") and cls.__module__.split(".")[0] == fw.__name__


def _endpoints(model: Any) -> tuple[list[Any], list[Any]]:
    """(model.inputs, model.outputs) as flat lists; raises _Refused when the model has no built graph."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError, RuntimeError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise _Refused("model without a built layer graph (build it with an input shape)")
    return list(inputs), list(outputs)


def _node(tensor: Any) -> tuple[Any, int, int]:
    """(layer, node index, tensor index) of the layer call that produced a Keras tensor (both frameworks)."""
    layer, node_index, tensor_index = tensor._keras_history
    return layer, int(node_index), int(tensor_index)


def _node_io(layer: Any, node_index: int) -> tuple[list[Any], dict[str, Any], int]:
    """The node's input Keras tensors (flat, in call order), call keyword arguments and number of outputs."""
    node = layer._inbound_nodes[node_index]
    if hasattr(node, "keras_inputs"):  # tf_keras
        return list(node.keras_inputs), dict(node.call_kwargs or {}), len(list(_flat(node.outputs)))
    return list(node.input_tensors), dict(node.arguments.kwargs or {}), len(node.output_tensors)


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flat(item)]
    if isinstance(value, dict):
        return [v for key in sorted(value) for v in _flat(value[key])]
    return [value]


def _steps(model: Any) -> tuple[list[tuple[int, int, int]], list[tuple[Any, int, list[tuple[int, int, int]], int]],
                                  list[tuple[int, int, int]]]:
    """The layer calls between ``model.inputs`` and ``model.outputs``, in an order that evaluates them.

    Returns (input keys, steps, output keys); a key ``(id(layer), node index, tensor index)`` names
    a Keras tensor, a step is ``(layer, node index, input keys, number of outputs)``.
    """
    inputs, outputs = _endpoints(model)

    def key(t: Any) -> tuple[int, int, int]:
        layer, n, i = _node(t)
        return id(layer), n, i

    input_keys = [key(t) for t in inputs]
    given = {k[:2] for k in input_keys}
    done: set[tuple[int, int]] = set()
    steps = []
    stack: list[tuple[Any, int, bool]] = [(*_node(t)[:2], False) for t in reversed(outputs)]
    while stack:
        layer, n, expanded = stack.pop()
        if (id(layer), n) in done or (id(layer), n) in given:
            continue
        ins, _, n_out = _node_io(layer, n)
        if expanded:
            done.add((id(layer), n))
            steps.append((layer, n, [key(t) for t in ins], n_out))
            continue
        if not ins:
            raise _Refused(f"input {layer.name!r} is not among the model's inputs")
        stack.append((layer, n, True))
        stack.extend((*_node(t)[:2], False) for t in reversed(ins))
    return input_keys, steps, [key(t) for t in outputs]


def _builder(fw: Any, layer: Any, kwargs: dict[str, Any]) -> tuple[Callable, Callable] | None:
    """(call, weights) for a layer, None for a nested graph model; raises _Refused."""
    if kwargs.get("training") is True:
        raise _Refused("called with training=True")
    tensors = sorted(k for k, v in kwargs.items() if any(hasattr(t, "_keras_history") for t in _flat(v)))
    if tensors:
        raise _Refused(f"called with tensor keyword arguments {', '.join(tensors)}")
    if _is_graph_model(fw, layer):
        return None
    if not isinstance(layer, fw.layers.Layer):
        raise _Refused("a Keras op in the graph, not a layer")
    if isinstance(layer, fw.Model):
        raise _Refused("subclassed model: its call is Python code")
    name = type(layer).__name__
    if name not in _BUILDERS or getattr(fw.layers, name, None) is not type(layer):
        raise _Refused("")
    return _BUILDERS[name](layer, fw)


def _describe(layer: Any, reason: str) -> str:
    return f"{layer.name} ({type(layer).__name__}{': ' + reason if reason else ''})"


def _problems(fw: Any, model: Any) -> list[str]:
    if not _is_graph_model(fw, model):
        return [_describe(model, "subclassed model: its call is Python code")]
    try:
        _, steps, _ = _steps(model)
    except _Refused as exc:
        return [_describe(model, str(exc))]
    except (AttributeError, IndexError, TypeError, ValueError) as exc:  # a graph these helpers cannot read
        return [_describe(model, f"unreadable layer graph ({type(exc).__name__}: {exc})")]
    found: list[str] = []
    for layer, n, _, _ in steps:
        try:
            kwargs = _node_io(layer, n)[1]
            if _builder(fw, layer, kwargs) is None:
                found += _problems(fw, layer)
        except _Refused as exc:
            found.append(_describe(layer, str(exc)))
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:  # unexpected configs
            found.append(_describe(layer, f"unreadable configuration ({type(exc).__name__}: {exc})"))
    return list(dict.fromkeys(found))


def unsupported_layers(keras_model: Any) -> list[str]:
    """The layers of a Keras model that :func:`to_torch` cannot translate.

    Only layers between the model's inputs and outputs count; models used as layers are
    searched too. Needs no torch.

    Parameters
    ----------
    keras_model : keras.Model or tf_keras.Model

    Returns
    -------
    list of str
        "name (Class)" or "name (Class: reason)", one per layer, in evaluation order; empty when
        :func:`to_torch` will work.
    """
    return _problems(framework_of(keras_model), keras_model)


# -- the torch module ----------------------------------------------------------------------------------------
@functools.cache
def _module_classes() -> tuple[type, type]:
    _import_torch()

    class KerasLayer(torch.nn.Module):
        """One Keras layer: its weights as buffers and its call in torch functions."""

        def __init__(self, name: str, kind: str, call: Callable, weights: dict[str, np.ndarray]) -> None:
            super().__init__()
            self.keras_name, self.kind, self._call = name, kind, call
            for key, value in weights.items():
                self.register_buffer(key, torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))

        def forward(self, *xs: Any) -> Any:
            return self._call(self, *xs)

        def extra_repr(self) -> str:
            return f"{self.keras_name!r}, {self.kind}"

    class KerasModule(torch.nn.Module):
        """A Keras graph evaluated with torch functions; ``forward(*inputs)`` takes and returns Keras layouts."""

        def __init__(self, fw: Any, model: Any) -> None:
            super().__init__()
            self.keras_name = model.name
            input_keys, steps, output_keys = _steps(model)
            self.layers = torch.nn.ModuleDict()
            where: dict[tuple[int, int, int], tuple[str, int]] = {k: ("input", i) for i, k in enumerate(input_keys)}
            names: dict[int, str] = {}
            self._plan: list[tuple[str, list[tuple[str, int]], list[tuple[str, int]]]] = []
            for index, (layer, n, ins, n_out) in enumerate(steps):
                if id(layer) not in names:  # a shared layer is translated once
                    names[id(layer)] = self._unique(layer.name)
                    built = _builder(fw, layer, _node_io(layer, n)[1])
                    if built is None:
                        self.layers[names[id(layer)]] = KerasModule(fw, layer)
                    else:
                        call, weights = built
                        self.layers[names[id(layer)]] = KerasLayer(layer.name, type(layer).__name__, call, weights())
                outs = [(f"s{index}", j) for j in range(n_out)]
                where.update({(id(layer), n, j): out for j, out in enumerate(outs)})
                self._plan.append((names[id(layer)], [where[k] for k in ins], outs))
            self._outputs = [where[k] for k in output_keys]
            self._n_inputs = len(input_keys)

        def _unique(self, name: str) -> str:
            base = re.sub(r"\W", "_", name) or "layer"
            candidate, k = base, 1
            while candidate in self.layers:
                candidate, k = f"{base}_{k}", k + 1
            return candidate

        def forward(self, *inputs: Any) -> Any:
            if len(inputs) != self._n_inputs:
                raise TypeError(f"{self.keras_name} takes {self._n_inputs} inputs, got {len(inputs)}.")
            env: dict[tuple[str, int], Any] = {("input", i): x for i, x in enumerate(inputs)}
            for name, ins, outs in self._plan:
                result = self.layers[name](*[env[k] for k in ins])
                results = list(result) if isinstance(result, (list, tuple)) else [result]
                env.update(zip(outs, results))
            ys = [env[k] for k in self._outputs]
            return ys[0] if len(ys) == 1 else ys

    return KerasLayer, KerasModule


def to_torch(keras_model: Any) -> Any:
    """Translate a Keras 3 or tf_keras model into a ``torch.nn.Module`` (eval mode, CPU, float32 buffers).

    Parameters
    ----------
    keras_model : keras.Model or tf_keras.Model
        A Functional or Sequential model with a built graph; models used as layers are translated too.

    Returns
    -------
    torch.nn.Module
        ``module(*inputs)``: one float32 tensor per ``keras_model.inputs``, shaped exactly like the
        Keras inputs (e.g. (N, L, 4)); returns one tensor, or a list for several outputs, equal to
        ``keras_model(inputs, training=False)`` to float32 rounding. ``module.layers`` holds one
        submodule per Keras layer, its weights as buffers (no parameters, nothing to train).

    Raises
    ------
    CapabilityError
        If torch is missing, or some layer has no translation (named, see :func:`unsupported_layers`).
    """
    problems = unsupported_layers(keras_model)
    if problems:
        raise CapabilityError(f"the Keras model {keras_model.name!r} has layers without a PyTorch translation: "
                              f"{', '.join(problems)}; use ism or saliency on this model, or port it to PyTorch.")
    try:
        _, module_class = _module_classes()
    except ImportError:
        raise CapabilityError("translating Keras models to PyTorch needs torch (pip install 'interpkit[torch]').") \
            from None
    return module_class(framework_of(keras_model), keras_model).eval()
