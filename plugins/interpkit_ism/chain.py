"""The module chain of a PyTorch model and the geometry of its layers, for fast ISM.

These are the checks behind the list of qualifying models in :mod:`interpkit_ism.planning`:

- :func:`call_chain`: the module calls of a ``forward`` that ``torch.fx`` traces (every module
  without children kept whole) to one input, then module calls each taking the previous output
  only, then the output;
- :func:`is_elementwise` and :func:`is_reshape`: whether a module acts element by element, or
  returns its input at most reshaped (known types, else pure functions checked numerically on
  the layer's own probe input);
- :func:`local` and :func:`batchnorm`: a convolution or pool as a :class:`~interpkit_ism.steps.Local`
  (kernel, stride, dilation and zero padding along the sequence, checked against the layer
  table), and the affine map of an eval-mode BatchNorm.

Geometry (:func:`windows`): a substitution at position p changes an interval of each layer's
outputs (those whose window holds a changed input), propagated layer by layer; its largest
width over all p fixes the window W_l, so variants of any positions and sequences share a batch
with per-variant offsets (the layer-wise reuse of fastISM, Nair et al. 2022, Bioinformatics
38:2397, and yuzu, Schreiber et al. 2022, Bioinformatics 38:3557).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.fx
from torch import nn

from interpkit_ism.steps import Local

__all__ = ["AVGPOOL", "BATCHNORM", "CONV", "HEAD_START", "MAXPOOL", "SKIP", "batchnorm", "call_chain",
           "canonical", "is_elementwise", "is_reshape", "local", "windows"]

#: Parameter-free activations acting element by element (exact types: a subclass may override forward).
_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh,
    nn.Softplus, nn.Softsign, nn.Hardtanh, nn.Threshold, nn.Hardsigmoid, nn.Hardswish, nn.LogSigmoid,
)
#: Modules that return their input in eval mode.
SKIP = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.FeatureAlphaDropout)
BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
CONV = (nn.Conv1d, nn.Conv2d)
MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d)
AVGPOOL = (nn.AvgPool1d, nn.AvgPool2d)
#: Layers that open the head (they mix every position).
HEAD_START = (nn.Flatten, nn.Linear, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d,
              nn.AdaptiveMaxPool2d)
#: Index of the sequence axis in a 2-D kernel tuple, and of the dummy axis of a 4-D tensor, per layout.
_KERNEL_AXIS = {"NCL1": 0, "NC1L": 1}
_DUMMY_AXIS = {"NCL1": 3, "NC1L": 2}


class _ChainTracer(torch.fx.Tracer):
    """Keeps every module without children (and torch.nn's own leaves) as one call."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return next(m.children(), None) is None or super().is_leaf_module(m, module_qualified_name)


def call_chain(module: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The module calls of a forward that is a plain chain of them, with their names; else None."""
    try:
        graph = _ChainTracer().trace(module)
    except Exception:  # noqa: BLE001 - a model fx cannot trace is not known to be a chain
        return None
    nodes = list(graph.nodes)
    if len(nodes) < 3 or nodes[0].op != "placeholder" or nodes[-1].op != "output":
        return None
    calls, previous = [], nodes[0]
    for node in nodes[1:-1]:
        if node.op != "call_module" or node.args != (previous,) or node.kwargs:
            return None
        calls.append((str(node.target), module.get_submodule(str(node.target))))
        previous = node
    return calls if nodes[-1].args == (previous,) else None


def _pure_function(module: nn.Module) -> bool:
    """A module without parameters, buffers or children whose forward calls torch functions and methods only."""
    if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
        return False
    if next(module.children(), None) is not None:
        return False
    try:
        graph = torch.fx.Tracer().trace(module)
    except Exception:  # noqa: BLE001 - untraceable: not known to be pure
        return False
    ops = [node.op for node in graph.nodes]
    return ops.count("placeholder") == 1 and set(ops) <= {"placeholder", "call_function", "call_method", "output"}


def _close(a: Any, b: np.ndarray) -> bool:
    """Whether a (tensor) equals b (float64 array) up to float rounding; inf and nan must match."""
    if not isinstance(a, torch.Tensor) or tuple(a.shape) != b.shape:
        return False
    finite = np.isfinite(b)
    scale = float(np.abs(b[finite]).max()) if finite.any() else 0.0
    return bool(np.allclose(a.double().cpu().numpy(), b, rtol=1e-5, atol=1e-6 * scale, equal_nan=True))


def is_elementwise(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``module`` acts element by element, checked on input like x (canonical (n, C, L) or (n, F)).

    Known activations qualify by type. Other modules must be pure functions (no parameters,
    buffers or children; torch functions and tensor methods only) whose output on a perturbed
    x (one row, at most 256 columns) keeps its shape and is reproduced, up to float rounding,
    on a crop of the last axis, and in a batch with a second call on the same input and on a
    random permutation of all its elements.
    """
    if type(module) in _ACTIVATIONS:
        return True
    if not _pure_function(module):
        return False
    gen = torch.Generator().manual_seed(0)
    x = x[:1, ..., :256]  # a small probe is as telling
    noise = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    z = (x + 0.1 * noise * x.std().clamp_min(1e-3)).contiguous()
    lo, hi = z.shape[-1] // 3, max(z.shape[-1] // 3 + 1, 2 * z.shape[-1] // 3)
    perm = torch.randperm(z.numel(), generator=gen).to(z.device)
    try:
        y = module(z)
        if not isinstance(y, torch.Tensor) or y.shape != z.shape:
            return False
        y = y.double().cpu().numpy()
        both = module(torch.cat([z, z.reshape(-1)[perm].reshape(z.shape)]))  # same input again, and permuted
        flat = y.reshape(-1)
        return (_close(module(z[..., lo:hi].contiguous()), y[..., lo:hi])
                and _close(both, np.concatenate([y, flat[perm.cpu().numpy()].reshape(y.shape)])))
    except Exception:  # noqa: BLE001 - a module failing on the probe is not element-wise
        return False


def is_reshape(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``module`` returns its input, at most reshaped (same values, same order), on input like x."""
    if type(module) in SKIP:
        return True
    if type(module) is not nn.Flatten and not _pure_function(module):
        return False
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype).to(x.device)
    try:
        y = module(z)
    except Exception:  # noqa: BLE001 - a module failing on the probe is not a reshape
        return False
    return (isinstance(y, torch.Tensor) and y.ndim >= 1 and y.shape[0] == z.shape[0]
            and torch.equal(y.reshape(len(z), -1), z.reshape(len(z), -1)))


def _tuple(value: Any, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def canonical(t: torch.Tensor, layout: str) -> torch.Tensor | None:
    """A module-layout activation as (N, C, L), or None when it is not one."""
    if layout == "NCL":
        return t if t.ndim == 3 else None
    axis = _DUMMY_AXIS[layout]
    return t.squeeze(axis) if t.ndim == 4 and t.shape[axis] == 1 else None


def _seq_params(module: nn.Module, layout: str) -> tuple[int, int, int, tuple[int, int]] | None:
    """(kernel, stride, dilation, (left, right) zero padding) along the sequence, else None."""
    two_d = isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))
    if two_d != (layout != "NCL"):
        return None
    n = 2 if two_d else 1
    if isinstance(module, CONV):
        if module.padding_mode != "zeros":
            return None
        kernel, stride, dilation, padding = module.kernel_size, module.stride, module.dilation, module.padding
    else:
        if module.ceil_mode or getattr(module, "return_indices", False) or getattr(module, "divisor_override", None):
            return None
        kernel = module.kernel_size
        stride = module.stride if module.stride not in (None, (), []) else kernel
        dilation, padding = getattr(module, "dilation", 1), module.padding
        if any(_tuple(padding, n)):
            return None  # pools pad with -inf or change their divisor: not supported
    kernel, stride, dilation = _tuple(kernel, n), _tuple(stride, n), _tuple(dilation, n)
    axis = _KERNEL_AXIS.get(layout, 0)
    if padding == "valid":
        padding = (0,) * n
    if padding == "same":  # PyTorch puts the odd column on the right
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        sides = [(t // 2, t - t // 2) for t in total]
    else:
        sides = [(int(p), int(p)) for p in _tuple(padding, n)]
    if two_d and ((kernel[1 - axis], stride[1 - axis], dilation[1 - axis]) != (1, 1, 1) or any(sides[1 - axis])):
        return None
    return int(kernel[axis]), int(stride[axis]), int(dilation[axis]), sides[axis]


def local(module: nn.Module, info: Any, layout: str) -> Local | None:
    """A conv or pool as a :class:`Local`, if the layer table row describes the same layer."""
    params = _seq_params(module, layout)
    if params is None:
        return None
    kernel, stride, dilation, pad = params
    kind = "conv" if isinstance(module, CONV) else "maxpool" if isinstance(module, MAXPOOL) else "avgpool"
    if (info.kind, info.kernel_size, info.stride, info.dilation, info.padding) != (kind, kernel, stride, dilation,
                                                                                    pad[0]):
        return None  # the layer table must describe the same layer
    if kind != "conv":
        return Local(kind, kernel, stride, dilation, pad)
    weight = module.weight.detach()
    return Local("conv", kernel, stride, dilation, pad, weight.reshape(*weight.shape[:2], kernel),
                 None if module.bias is None else module.bias.detach(), module.groups)


def batchnorm(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(scale, shift), float64, of an eval-mode BatchNorm with running statistics, else None."""
    if module.running_mean is None or module.running_var is None:
        return None
    scale = torch.rsqrt(module.running_var.double() + module.eps)
    if module.weight is not None:
        scale = scale * module.weight.detach().double()
    shift = -module.running_mean.double() * scale
    if module.bias is not None:
        shift = shift + module.bias.detach().double()
    return scale, shift


def windows(length: int, layers: list[Local]) -> None:
    """Set each layer's window width and per-position first output (interval propagation, module docstring)."""
    p = np.arange(length)
    a, b, alive = p.copy(), p.copy(), np.ones(length, dtype=bool)
    n_in = length
    for layer in layers:
        n_out = (n_in + sum(layer.pad) - layer.k_eff) // layer.stride + 1
        lo = np.maximum(0, -((-(a + layer.pad[0] - layer.k_eff + 1)) // layer.stride))  # ceil
        hi = np.minimum(n_out - 1, (b + layer.pad[0]) // layer.stride)
        alive &= lo <= hi
        width = min(int((hi - lo + 1)[alive].max()) if alive.any() else 1, n_out)
        layer.width = width
        layer.lo = np.clip(lo, 0, n_out - width).astype(np.int64)
        a, b, n_in = lo, hi, n_out

