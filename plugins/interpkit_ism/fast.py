"""Fast ISM for chain-structured PyTorch CNNs: recompute only what a single substitution changes.

Which models qualify
--------------------
The module's ``forward`` must be a chain of module calls: ``torch.fx`` symbolic tracing (with
every module without children kept whole) must give one input, then module calls each taking
the previous output only, then the output. ``nn.Sequential`` (nested or subclassed) qualifies,
and so does a custom module whose forward only calls submodules in a row (ExplaiNN:
``final(linears(x))``). The calls must be the rows of the layer table
(:meth:`~interpkit.probe.LayerProbe.layers`), which gives kernel, stride, dilation and padding
of every local layer (checked against the module's own attributes). The chain is split into

- a *trunk* of local layers: Conv1d/Conv2d along the sequence axis (zero padding of any width,
  "same" included; stride, dilation, groups), max/average pools without padding, BatchNorm with
  running statistics, known activations, PReLU, Dropout/Identity, and *element-wise custom
  modules*: no parameters, buffers or children, a forward made of torch functions and tensor
  methods only, and a numerical check on the layer's own probe input (the outputs of a crop,
  of a permutation of all elements and of a batch are the crop, permutation and batch of the
  output);
- a *head* from the first layer that mixes positions (Flatten, Linear, adaptive pool, or a
  custom module checked to be a pure reshape to (N, F)) to the output.

Anything else (functions in ``forward``, unknown trunk layers, pools with padding,
``ceil_mode``, NLC layout, extra inputs, TorchScript, BatchNorm without running statistics)
makes :func:`plan` return None, and ISM runs every variant in full.

How it works
------------
The layer-wise reuse of fastISM (Nair et al. 2022, Bioinformatics 38:2397) and yuzu (Schreiber
et al. 2022, Bioinformatics 38:3557). The reference sequence runs once through the trunk,
keeping the zero-padded input of every local layer. A substitution at position p changes an
interval of each layer's outputs (those whose window holds a changed input), propagated layer
by layer; its largest width over all p fixes the window W_l, so variants of any positions and
sequences share a batch with per-variant offsets. Each local layer gathers the input crop its
W_l outputs read from the cache, writes in the changed values computed at the layer below and
runs on the crop only; padding columns are zeros in the cache as in the full pass.

Two modes are compiled. The *exact* mode repeats the module's arithmetic: the trunk runs the
module's own kernels on the crops (Conv2d with (k, 1) kernels as the equal Conv1d), so every
recomputed value is bit for bit the full pass's, and the changed window is written into the
cached trunk output on which the head modules run. The *linear* mode, compiled when the head
starts with a flatten followed by a Linear or a (grouped) 1x1 Conv1d, uses linearity twice:

- the first convolution (on the one-hot input, BatchNorm folded in) changes by a rank-1 term:
  its outputs are the cached reference plus sum_c W[:, c, t] e_c, with e the new one-hot column
  minus the old one and t the kernel tap that sees p; it directly computes the whole crop the
  next local layer reads;
- the head's first layer outputs are the cached reference outputs plus W[:, cols] times the
  change of the flattened trunk output, which is non-zero only in the C x W_T window (a
  grouped layer reads only its own channels: one batched product per group). The layers after
  it run on (V, F) vectors, kept as (G, V, F / G) between grouped layers, with BatchNorm
  folded into the layer before; for (N, T) outputs the last Linear computes only the
  explained outputs.

Both equal the naive computation up to float rounding, but not the same rounding, and on deep
unbalanced models (Basset with PyTorch's default initialisation, whose outputs are 8x its ISM
deltas) the float32 naive computation is itself 1e-5 (relative to the deltas) away from the
float64 one. So the linear mode runs only when, on an evenly spread sample of up to 64
variants, its deltas are within 5e-6 (relative to the sample's largest delta) of the exact
mode's. The compiled reference outputs are also compared with the model's own predictions
before any variant runs; a mismatch sends ISM to the naive path.

Variants are ordered by position, so a batch mostly shares one window of the head's first
layer. Batches are small (their largest tensor about 2.5 MiB, 10 MiB when convolutions
dominate), so they stay in the CPU caches and fresh allocations do not page-fault. On the CPU
they run side by side on as many worker threads as torch has intra-op threads, each op on one
thread: OpenMP's fork and join cost as much as these small ops, and every parallel op stalls
whenever another process holds one of the cores.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from interpkit.adapt import to_model_layout

__all__ = ["Plan", "fast_deltas", "naive_batch_size", "plan"]

#: Parameter-free activations acting element by element (exact types: a subclass may override forward).
_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh,
    nn.Softplus, nn.Softsign, nn.Hardtanh, nn.Threshold, nn.Hardsigmoid, nn.Hardswish, nn.LogSigmoid,
)
#: Modules that return their input in eval mode.
_SKIP = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.FeatureAlphaDropout)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
_CONV = (nn.Conv1d, nn.Conv2d)
_MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d)
_AVGPOOL = (nn.AvgPool1d, nn.AvgPool2d)
#: Layers that open the head (they mix every position).
_HEAD_START = (nn.Flatten, nn.Linear, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d,
               nn.AdaptiveMaxPool2d)
#: Index of the sequence axis in a 2-D kernel tuple, and of the dummy axis of a 4-D tensor, per layout.
_KERNEL_AXIS = {"NCL1": 0, "NC1L": 1}
_DUMMY_AXIS = {"NCL1": 3, "NC1L": 2}
#: Bytes of cached reference activations per chunk of sequences.
_CACHE_BYTES = 1 << 28
#: Bytes of a batch's largest tensor when the caller gives no batch_size.
_BATCH_BYTES = 5 << 19
#: Multiply-adds per value of a batch's largest tensor above which a batch counts as compute-bound.
_COMPUTE_BOUND = 256
#: Bounds of the automatic batch size (variants).
_BATCH_RANGE = (16, 1024)
#: Activation bytes per batch of the naive path on a CPU when the caller gives no batch_size.
_NAIVE_BATCH_BYTES = 1 << 26
#: Largest difference, relative to the largest output, between the compiled reference outputs and predict().
_CHECK_TOLERANCE = 1e-4
#: Variants in the sample comparing the linear mode with the exact one, and the largest difference of their
#: deltas (relative to the sample's largest delta) that lets the linear mode run.
_SAMPLE = 64
_LINEAR_TOLERANCE = 5e-6


# -- compiled operations -------------------------------------------------------------------------
@dataclass(eq=False)
class _Local:
    """A convolution or pool along the sequence, run without padding on zero-padded (V, C, W) input.

    ``weight`` (C_out, C_in / groups, k) and ``bias`` (C_out,) are the module's own (a 2-D
    kernel's k values); ``width`` W is the output window of a substitution and ``lo`` (L,)
    int64 its first output for a substitution at each input position.
    """

    kind: str  # "conv", "maxpool", "avgpool"
    kernel: int
    stride: int
    dilation: int
    pad: tuple[int, int]
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    groups: int = 1
    width: int = 0
    lo: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def k_eff(self) -> int:
        return self.dilation * (self.kernel - 1) + 1

    @property
    def crop(self) -> int:
        """Padded input columns that the W window outputs read."""
        return (self.width - 1) * self.stride + self.k_eff

    def pad_input(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad) if any(self.pad) else x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "conv":
            return F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        if self.kind == "maxpool":
            return F.max_pool1d(x, self.kernel, self.stride, 0, self.dilation)
        return F.avg_pool1d(x, self.kernel, self.stride)


@dataclass(eq=False)
class _Rank1:
    """The first convolution of the linear mode, on the one-hot input, updated by weight columns.

    ``conv`` is the layer with BatchNorm folded in; ``columns`` (4, C_out * k) its weight per
    input channel; ``width`` and ``lo`` (L,) the output window it computes for a substitution at
    each position: the crop the next local layer reads when ``direct`` (nothing but position-wise
    steps and no padding in between), else the changed outputs.
    """

    conv: _Local
    columns: torch.Tensor
    width: int
    lo: np.ndarray
    direct: bool

    def full(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (n, C_out, L') on the whole (n, 4, L) input."""
        return self.conv(self.conv.pad_input(x))

    def window(self, ref: torch.Tensor, e: torch.Tensor, pos: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
        """The output window (V, C_out, W) starting at lo, for one-hot column changes e (V, 4) at positions pos.

        ``ref`` is the reference window (overwritten); each output adds the weight column of the
        kernel tap that sees pos, times e.
        """
        conv = self.conv
        u = (e @ self.columns).view(len(e), -1, conv.kernel)  # (V, C_out, k): change seen through each tap
        tap = pos[:, None] + conv.pad[0] - (lo[:, None] + torch.arange(self.width, device=e.device)) * conv.stride
        valid = (tap >= 0) & (tap < conv.k_eff) & (tap % conv.dilation == 0)
        idx = (tap // conv.dilation).clamp(0, conv.kernel - 1)
        return ref.addcmul_(u.gather(2, idx[:, None, :].expand(-1, u.shape[1], -1)), valid[:, None, :])


@dataclass(eq=False)
class _Norm:
    """An eval-mode BatchNorm on (V, C, W), the module's own operation."""

    module: nn.Module

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.module
        return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


@dataclass(eq=False)
class _Affine:
    """Per-feature x * scale + shift on (V, F) vectors (F,): an eval-mode BatchNorm that could not be folded."""

    scale: torch.Tensor
    shift: torch.Tensor


@dataclass(eq=False)
class _Dense:
    """A Linear or grouped 1x1 Conv1d on (V, F) vectors: weight (G, O / G, F / G), bias (O,) or None."""

    weight: torch.Tensor
    bias: torch.Tensor | None


@dataclass(eq=False)
class _Call:
    """A module called on its recorded input shape (batch axis excluded)."""

    module: nn.Module
    shape: tuple[int, ...]


@dataclass(eq=False)
class _Sparse:
    """The linear mode's head: its first layer in grouped form, then the tail on vectors.

    ``weight`` (G, O / G, C / G, P) and ``bias`` (O,) or None (BatchNorm folded in); ``tail``
    the steps after it (:class:`_Dense`, :class:`_Affine`, :class:`_Call`, element-wise
    modules); ``restricted``: the tail's last Linear may be cut to the explained outputs
    (only element-wise modules follow it and the output is (N, T)).
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    tail: tuple
    restricted: bool
    _slices: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def groups(self) -> int:
        return self.weight.shape[0]

    def full(self, t: torch.Tensor) -> torch.Tensor:
        """(n, C, P) trunk output -> first layer outputs, (n, O), or (G, n, O / G) when grouped."""
        groups, out_g, m, p = self.weight.shape
        return _dense(_Dense(self.weight.reshape(groups, out_g, m * p), self.bias), t.reshape(len(t), -1), False)

    def sliced(self, lo: int, width: int) -> torch.Tensor:
        """Columns of positions lo .. lo + width - 1: (C * width, O) if G == 1, else (G, C / G * width, O / G)."""
        if lo not in self._slices:
            groups, out_g, m, _ = self.weight.shape
            w = self.weight[..., lo:lo + width].reshape(groups, out_g, m * width).transpose(1, 2)
            self._slices[lo] = (w[0] if groups == 1 else w).contiguous()
        return self._slices[lo]

    def restrict(self, cols: list[int]) -> tuple:
        """The tail with its last Linear cut to the explained outputs (when ``restricted``)."""
        if not self.restricted:
            return self.tail
        tail = list(self.tail)
        j = max(j for j, op in enumerate(tail) if isinstance(op, _Dense))
        w, b = tail[j].weight, tail[j].bias
        tail[j] = _Dense(w[:, cols], None if b is None else b[cols])
        return tuple(tail)


def _dense(op: _Dense, x: torch.Tensor, grouped: bool) -> torch.Tensor:
    """A dense layer on x, (V, F) or (G, V, F / G) if ``grouped``; output (V, O), or (G, V, O / G) if G > 1."""
    groups, out_g, in_g = op.weight.shape
    if groups == 1:
        if grouped:
            x = x.transpose(0, 1).reshape(x.shape[1], -1)
        return F.linear(x, op.weight[0], op.bias)
    xg = x if grouped else x.reshape(len(x), groups, in_g).transpose(0, 1)
    bias = None if op.bias is None else op.bias.view(groups, 1, out_g)
    if out_g == 1:  # one output per group: a weighted sum (faster than batched matrix-vector products)
        y = (xg.mul_(op.weight) if grouped else xg * op.weight).sum(-1, keepdim=True)  # (G, V, 1)
        return y if bias is None else y + bias
    w = op.weight.transpose(1, 2)
    return torch.bmm(xg, w) if bias is None else torch.baddbmm(bias, xg, w)


#: In-place forms of parameter-free activations (the tail owns its intermediate tensors).
_INPLACE = {nn.ReLU: torch.relu_, nn.Sigmoid: torch.sigmoid_, nn.Tanh: torch.tanh_}


def _run_tail(tail: tuple, h: torch.Tensor, grouped: bool) -> torch.Tensor:
    """The sparse head's tail on h, (V, F) or (G, V, F / G) if ``grouped`` (overwritten); returns (V, F_out)."""
    for op in tail:
        if isinstance(op, _Dense):
            if grouped and op.weight.shape[0] != h.shape[0] and op.weight.shape[0] > 1:
                h, grouped = h.transpose(0, 1).reshape(h.shape[1], -1), False
            h = _dense(op, h, grouped)
            grouped = op.weight.shape[0] > 1
        elif isinstance(op, _Affine):
            shape = (h.shape[0], 1, -1) if grouped else (-1,)
            h = torch.addcmul(op.shift.view(shape), h, op.scale.view(shape))
        elif isinstance(op, _Call):
            if grouped:
                h, grouped = h.transpose(0, 1).reshape(h.shape[1], -1), False
            h = op.module(h.reshape(len(h), *op.shape)).reshape(len(h), -1)
        elif type(op) in _INPLACE:
            h = _INPLACE[type(op)](h)
        else:  # an element-wise module: any layout
            h = op(h)
    return h.transpose(0, 1).reshape(h.shape[1], -1) if grouped else h


@dataclass(frozen=True, eq=False)
class Plan:
    """A qualifying model compiled for fast ISM (see the module docstring).

    Attributes
    ----------
    trunk : tuple
        The exact mode's trunk: local layers (``_Local``) and position-wise steps, on canonical
        (N, C, L) tensors.
    head : nn.Module
        The head modules as an ``nn.Sequential`` (the exact mode's head).
    linear_trunk : tuple or None
        The linear mode's trunk (its first convolution a ``_Rank1`` when it can be), or None
        when there is no linear mode.
    sparse : _Sparse or None
        The linear mode's head.
    layout : str
        The model's input layout.
    trunk_shape : tuple of int
        Shape of the trunk output in the model's layout, batch axis excluded.
    out_shape : tuple of int
        Shape of the module's raw output, batch axis excluded.
    cache_floats : int
        Cached reference values per sequence and mode (padded local-layer inputs, trunk output).
    head_floats : int
        Values per sequence of the head's largest activation.
    """

    trunk: tuple
    head: nn.Module
    linear_trunk: tuple | None
    sparse: _Sparse | None
    layout: str
    trunk_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    cache_floats: int
    head_floats: int

    @property
    def local_layers(self) -> list[_Local]:
        """The trunk's convolutions and pools, in order."""
        return [step for step in self.trunk if isinstance(step, _Local)]


# -- the module chain and its layers ------------------------------------------------------------------
class _ChainTracer(torch.fx.Tracer):
    """Keeps every module without children (and torch.nn's own leaves) as one call."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return next(m.children(), None) is None or super().is_leaf_module(m, module_qualified_name)


def _chain(module: nn.Module) -> list[tuple[str, nn.Module]] | None:
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


def _is_elementwise(module: nn.Module, x: torch.Tensor) -> bool:
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


def _is_reshape(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``module`` returns its input, at most reshaped (same values, same order), on input like x."""
    if type(module) in _SKIP:
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


def _canonical(t: torch.Tensor, layout: str) -> torch.Tensor | None:
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
    if isinstance(module, _CONV):
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


def _local(module: nn.Module, info: Any, layout: str) -> _Local | None:
    """A conv or pool as a :class:`_Local`, if the layer table row describes the same layer."""
    params = _seq_params(module, layout)
    if params is None:
        return None
    kernel, stride, dilation, pad = params
    kind = "conv" if isinstance(module, _CONV) else "maxpool" if isinstance(module, _MAXPOOL) else "avgpool"
    if (info.kind, info.kernel_size, info.stride, info.dilation, info.padding) != (kind, kernel, stride, dilation,
                                                                                    pad[0]):
        return None  # the layer table must describe the same layer
    if kind != "conv":
        return _Local(kind, kernel, stride, dilation, pad)
    weight = module.weight.detach()
    return _Local("conv", kernel, stride, dilation, pad, weight.reshape(*weight.shape[:2], kernel),
                  None if module.bias is None else module.bias.detach(), module.groups)


def _batchnorm(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
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


def _windows(length: int, layers: list[_Local]) -> None:
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


# -- planning -----------------------------------------------------------------------------------------
def naive_batch_size(model: Any, length: int) -> int | None:
    """A CPU-cache-friendly batch size for running whole variants through a PyTorch model, or None.

    The backend's own choice fills 10% of free memory (up to 4,096 variants), which thrashes
    the CPU caches and page-faults on every fresh allocation: ExplaiNN ran 2-3x slower per
    variant than in batches of 128 (interpkit's naive ISM took twice tangermeme's time). On the
    CPU a batch holds about 64 MiB of activations instead, from the torch backend's estimate of
    activation bytes per bp.

    Parameters
    ----------
    model : Predictor
    length : int
        Sequence length in bp.

    Returns
    -------
    int or None
        16 to 1,024; None for other backends and devices, or when there is no estimate (then
        the backend chooses).
    """
    if getattr(model, "backend_name", None) != "torch" or getattr(getattr(model, "device", None), "type", "") != "cpu":
        return None
    try:
        per_seq = float(model._structure.bytes_per_bp) * length
    except Exception:  # noqa: BLE001 - no estimate: the backend decides
        return None
    return int(min(1024, max(16, _NAIVE_BATCH_BYTES // max(per_seq, 1.0))))


def plan(model: Any, length: int | None = None) -> Plan | None:
    """Compile a qualifying PyTorch model for fast ISM, or None (then ISM runs the naive way).

    Parameters
    ----------
    model : Predictor
        A torch-backend model (``module``, ``layers()``, ``reduce_output``, ``device``).
    length : int or None
        Sequence length in bp, used when the model has none of its own. Default is None.

    Returns
    -------
    Plan or None
        None when the model does not qualify (see the module docstring).
    """
    module = getattr(model, "module", None)
    spec = model.input_spec
    length = spec.length or length
    if (not isinstance(module, nn.Module) or isinstance(module, torch.jit.ScriptModule) or length is None
            or spec.layout not in ("NCL", "NCL1", "NC1L") or spec.extra_inputs
            or not all(hasattr(model, a) for a in ("layers", "reduce_output", "output_reduction", "device",
                                                   "_session"))):
        return None
    chain = _chain(module)
    if not chain:
        return None
    try:
        table = list(model.layers())
    except Exception:  # noqa: BLE001 - any failure to describe the layers means: not for the fast path
        return None
    counts: dict[str, int] = {}
    names = []
    for name, _ in chain:
        counts[name] = counts.get(name, 0) + 1
        names.append(name if counts[name] == 1 else f"{name}#{counts[name]}")
    if [info.name for info in table] != names:
        return None
    with model._session(), _one_thread(model.device):
        return _compile(model, chain, table, length)


def _dtype(model: Any) -> torch.dtype:
    return next((p.dtype for p in model.module.parameters() if p.is_floating_point()), torch.float32)


def _record(model: Any, chain: list[tuple[str, nn.Module]], length: int) -> list[torch.Tensor]:
    """Inputs of every chain call, and the output last, on two random one-hot probe sequences."""
    spec = model.input_spec
    rng = np.random.default_rng(0)
    X = np.eye(4, dtype=np.float32)[:, rng.integers(0, 4, size=(2, length))].transpose(1, 0, 2)
    x = torch.as_tensor(to_model_layout(X, spec.layout, model_alphabet=spec.model_alphabet, alphabet=spec.alphabet),
                        device=model.device, dtype=_dtype(model))
    seen = [x]
    for _, m in chain:
        x = m(x)
        if not isinstance(x, torch.Tensor):
            return []
        seen.append(x)
    return seen


def _compile(model: Any, chain: list[tuple[str, nn.Module]], table: list, length: int) -> Plan | None:
    layout = model.input_spec.layout
    try:
        seen = _record(model, chain, length)
    except Exception:  # noqa: BLE001 - a chain that fails on a probe input is not for the fast path
        return None
    if not seen:
        return None
    trunk: list[Any] = []
    cache_floats = 0
    i = 0
    for i, ((_, m), info) in enumerate(zip(chain, table)):
        x = _canonical(seen[i], layout)
        if type(m) in _HEAD_START or x is None:
            break
        if type(m) in _CONV + _MAXPOOL + _AVGPOOL:
            step = _local(m, info, layout)
            if step is None:
                return None
            trunk.append(step)
            cache_floats += x.shape[1] * (x.shape[2] + sum(step.pad))
        elif type(m) in _BATCHNORM:
            if _batchnorm(m) is None:
                return None
            trunk.append(_Norm(m))
        elif type(m) in _SKIP:
            continue
        elif type(m) is nn.PReLU or _is_elementwise(m, x):  # PReLU: per channel, position by position
            trunk.append(m)
        elif _is_reshape(m, seen[i]) and seen[i + 1].ndim == 2:
            break  # a custom flatten opens the head
        else:
            return None  # an unknown layer before the head
    else:
        return None  # no head: per-position outputs run the naive way
    local_layers = [s for s in trunk if isinstance(s, _Local)]
    if not local_layers:
        return None
    _windows(length, local_layers)
    head_chain, head_seen = chain[i:], seen[i:]
    if any(type(m) in _BATCHNORM and _batchnorm(m) is None for _, m in head_chain):
        return None  # batch statistics: a variant's output would depend on its batch
    trunk_out = _canonical(seen[i], layout)
    cache_floats += trunk_out[0].numel()
    sparse = _compile_sparse(model, head_chain, head_seen, tuple(trunk_out.shape[1:]))
    linear_trunk = None if sparse is None else _linear_trunk(trunk)
    return Plan(tuple(trunk), nn.Sequential(*[m for _, m in head_chain]), linear_trunk, sparse, layout,
                tuple(seen[i].shape[1:]), tuple(seen[-1].shape[1:]), cache_floats,
                max(t[0].numel() for t in head_seen))


def _fold(weight: torch.Tensor, bias: torch.Tensor | None, scale: torch.Tensor, shift: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight (O, ...) and bias (O,) of a linear map followed by the per-output affine map (scale, shift)."""
    w = weight.double() * scale.view(-1, *(1,) * (weight.ndim - 1))
    b = shift + (0 if bias is None else bias.double() * scale)
    return w.to(weight.dtype), b.to(weight.dtype)


def _linear_trunk(trunk: list[Any]) -> tuple:
    """The trunk with its first convolution (and a BatchNorm right after it) as a :class:`_Rank1`, if it has one."""
    first = trunk[0]
    if not (isinstance(first, _Local) and first.kind == "conv" and first.groups == 1):
        return tuple(trunk)
    conv, rest = replace(first), list(trunk[1:])
    if rest and isinstance(rest[0], _Norm):
        conv.weight, conv.bias = _fold(conv.weight, conv.bias, *_batchnorm(rest.pop(0).module))
    following = next((s for s in rest if isinstance(s, _Local)), None)
    direct = following is not None and not any(following.pad)
    width, lo = (following.crop, following.lo * following.stride) if direct else (first.width, first.lo)
    columns = conv.weight.permute(1, 0, 2).reshape(conv.weight.shape[1], -1).contiguous()
    return (_Rank1(conv, columns, width, lo, direct), *rest)


def _dense_weight(m: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(G, O / G, F / G) weight and bias of a Linear on (N, F) or a 1x1 Conv1d on (N, F, 1), else None."""
    bias = None if getattr(m, "bias", None) is None else m.bias.detach()
    if type(m) is nn.Linear and x.ndim == 2:
        return m.weight.detach()[None], bias
    if (type(m) is nn.Conv1d and x.ndim == 3 and x.shape[2] == 1 and m.kernel_size == (1,) and m.stride == (1,)
            and m.dilation == (1,) and m.padding in ((0,), "valid") and m.padding_mode == "zeros"):
        w = m.weight.detach()
        return w.reshape(m.groups, w.shape[0] // m.groups, w.shape[1]), bias
    return None


def _compile_sparse(model: Any, chain: list[tuple[str, nn.Module]], seen: list[torch.Tensor],
                    trunk_shape: tuple[int, ...]) -> _Sparse | None:
    """The linear mode's head, if the head is reshapes, then a linear layer reading whole channels, then anything."""
    channels, positions = trunk_shape
    k = 0
    while k < len(chain) and _is_reshape(chain[k][1], seen[k]):
        k += 1
    dense = _dense_weight(chain[k][1], seen[k]) if k < len(chain) else None
    if dense is None or dense[0].shape[0] * dense[0].shape[2] != channels * positions or channels % dense[0].shape[0]:
        return None  # not a linear layer on the flattened trunk output, or a group splits a channel
    ops: list[Any] = [_Dense(*dense)]
    for (_, m), x in zip(chain[k + 1:], seen[k + 1:-1]):
        flat = x.reshape(len(x), -1)
        dense = _dense_weight(m, x)
        if type(m) in _BATCHNORM:
            scale, shift = _batchnorm(m)
            repeat = flat.shape[1] // scale.numel()  # BatchNorm1d on (N, C, L): L values per channel
            scale, shift = scale.repeat_interleave(repeat), shift.repeat_interleave(repeat)
            last = ops[-1]
            if isinstance(last, _Dense):
                w, b = _fold(last.weight.reshape(-1, last.weight.shape[2]), last.bias, scale, shift)
                ops[-1] = _Dense(w.reshape(last.weight.shape), b)
            else:
                ops.append(_Affine(scale.to(x.dtype), shift.to(x.dtype)))
        elif dense is not None:
            ops.append(_Dense(*dense))
        elif _is_reshape(m, x):
            continue
        elif _is_elementwise(m, flat):
            ops.append(m)
        else:
            ops.append(_Call(m, tuple(x.shape[1:])))
    first = ops.pop(0)
    groups, out_g, _ = first.weight.shape
    last = max((j for j, op in enumerate(ops) if isinstance(op, _Dense)), default=None)
    restricted = (last is not None and ops[last].weight.shape[0] == 1 and model.output_reduction is None
                  and seen[-1].ndim <= 2 and all(isinstance(op, nn.Module) for op in ops[last + 1:]))
    return _Sparse(first.weight.reshape(groups, out_g, channels // groups, positions), first.bias, tuple(ops),
                   restricted)


# -- running -----------------------------------------------------------------------------------------
def _gather(cache: torch.Tensor, seq: torch.Tensor, lo: torch.Tensor, width: int) -> torch.Tensor:
    """(V, C, width) windows cache[seq[v], :, lo[v]:lo[v] + width] of a contiguous (N, C, L) cache."""
    n, c, length = cache.shape
    view = cache.as_strided(((n - 1) * c * length + length - width + 1, c, width), (1, length, 1))
    return view.index_select(0, seq * (c * length) + lo)


def _splice(crop: torch.Tensor, crop_lo: torch.Tensor, cur: torch.Tensor, cur_lo: torch.Tensor) -> torch.Tensor:
    """crop (V, C, Wc) starting at crop_lo with cur (V, C, Wu) starting at cur_lo written over it where they overlap."""
    v, c, width = crop.shape
    k = torch.arange(width, device=crop.device) + (crop_lo - cur_lo)[:, None]
    inside = (k >= 0) & (k < cur.shape[2])
    src = cur.gather(2, k.clamp(0, cur.shape[2] - 1)[:, None, :].expand(v, c, width))
    return torch.where(inside[:, None, :], src, crop, out=src)


def _spans(n: int, batch: int) -> list[slice]:
    """Slices of range(n) of ``batch`` items, the last one never of a single item when n >= 2."""
    cuts = list(range(0, n, batch)) + [n]
    if len(cuts) > 2 and cuts[-1] - cuts[-2] == 1:
        del cuts[-2]
    return [slice(a, b) for a, b in itertools.pairwise(cuts)]


@dataclass
class _Mode:
    """One mode's reference values for a chunk of n sequences, and how it runs variants."""

    steps: tuple  # the trunk
    kept: list[torch.Tensor]  # per local layer: padded input (a _Rank1: its output), (n, C, L')
    out: torch.Tensor  # trunk output (n, C, P)
    y: torch.Tensor  # explained outputs (n, K)
    entry: torch.Tensor | None = None  # linear mode: head's first layer outputs, (n, O) or (G, n, O / G)


def _trunk_reference(steps: tuple, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    kept = []
    for step in steps:
        if isinstance(step, _Rank1):
            x = step.full(x)
            kept.append(x)
        elif isinstance(step, _Local):
            x = step.pad_input(x)
            kept.append(x)
            x = step(x)
        else:
            x = step(x)
    return kept, x


def _reference(model: Any, plan_: Plan, x: torch.Tensor, cols: list[int], tail: tuple | None, linear: bool,
               batch: int) -> _Mode:
    """A mode's reference values for the sequences x (n >= 2, 4, L) (canonical layout, model channel order)."""
    steps = plan_.linear_trunk if linear else plan_.trunk
    parts = [_trunk_reference(steps, x[sl]) for sl in _spans(len(x), batch)]
    kept = [torch.cat([p[0][k] for p in parts]).contiguous() for k in range(len(parts[0][0]))]
    out = torch.cat([p[1] for p in parts]).contiguous()
    if not linear:
        y = torch.cat([_dense_head(model, plan_, p[1], cols) for p in parts])
        return _Mode(steps, kept, out, y)
    h = [plan_.sparse.full(p[1]) for p in parts]
    grouped = plan_.sparse.groups > 1
    y = torch.cat([_output(model, plan_, _run_tail(tail, part.clone(), grouped), cols) for part in h])
    return _Mode(steps, kept, out, y, torch.cat(h, 1 if grouped else 0).contiguous())


def _dense_head(model: Any, plan_: Plan, t: torch.Tensor, cols: list[int]) -> torch.Tensor:
    return model.reduce_output(plan_.head(t.reshape(len(t), *plan_.trunk_shape)))[:, cols]


def _output(model: Any, plan_: Plan, h: torch.Tensor, cols: list[int]) -> torch.Tensor:
    """The explained outputs (V, K) from the sparse head's last values (V, F)."""
    if plan_.sparse.restricted:
        return h
    return model.reduce_output(h.reshape(len(h), *plan_.out_shape))[:, cols]


def _trunk_variants(mode: _Mode, x_ref: torch.Tensor, seq: torch.Tensor, pos: np.ndarray, new: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The changed window (V, C, W_T) of the trunk output of each variant, and its first position (V,)."""
    device = new.device
    pos_t = torch.as_tensor(pos, device=device)
    cur, cur_lo, direct, k = new[:, :, None], pos_t, False, 0
    for step in mode.steps:
        if isinstance(step, _Rank1):
            lo = torch.as_tensor(step.lo[pos], device=device)
            e = new - x_ref[seq, :, pos_t]  # the new one-hot column minus the observed one
            cur = step.window(_gather(mode.kept[k], seq, lo, step.width), e, pos_t, lo)
            cur_lo, direct, k = lo, step.direct, k + 1
        elif isinstance(step, _Local):
            lo = torch.as_tensor(step.lo[pos], device=device)
            if not direct:  # else cur is already the crop this layer reads
                crop_lo = lo * step.stride  # in padded input coordinates
                cur = _splice(_gather(mode.kept[k], seq, crop_lo, step.crop), crop_lo, cur, cur_lo + step.pad[0])
            cur, cur_lo, direct, k = step(cur), lo, False, k + 1
        else:
            cur = step(cur)
    return cur, cur_lo


def _runs(lo: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal values."""
    cuts = [0, *(np.flatnonzero(np.diff(lo)) + 1).tolist(), len(lo)]
    return list(itertools.pairwise(cuts))


def _variants(model: Any, plan_: Plan, mode: _Mode, x_ref: torch.Tensor, seq: torch.Tensor, pos: np.ndarray,
              new: torch.Tensor, cols: list[int], tail: tuple | None) -> torch.Tensor:
    """(V, K) outputs of the variants: new (V, 4) one-hot columns at positions pos of sequences seq."""
    cur, cur_lo = _trunk_variants(mode, x_ref, seq, pos, new)
    if tail is None:  # exact mode: the head modules on the trunk output with the changed window written in
        t = _splice(mode.out.index_select(0, seq), torch.zeros_like(cur_lo), cur, cur_lo)
        return _dense_head(model, plan_, t, cols)
    sparse, width = plan_.sparse, cur.shape[2]
    delta = cur - _gather(mode.out, seq, cur_lo, width)  # (V, C, W_T): the change of the trunk output
    lo = plan_.local_layers[-1].lo[pos]
    if sparse.groups == 1:
        h = mode.entry.index_select(0, seq)  # (V, O)
        for a, b in _runs(lo):
            h[a:b].addmm_(delta[a:b].reshape(b - a, -1), sparse.sliced(int(lo[a]), width))
    else:
        h = mode.entry.index_select(1, seq)  # (G, V, O / G)
        d = delta.view(len(seq), sparse.groups, -1).transpose(0, 1)
        for a, b in _runs(lo):
            h[:, a:b].baddbmm_(d[:, a:b], sparse.sliced(int(lo[a]), width))
    return _output(model, plan_, _run_tail(tail, h, sparse.groups > 1), cols)


def _batch_size(plan_: Plan, itemsize: int) -> int:
    """Variants per batch (16 to 1,024) from the size of a batch's largest tensor.

    Memory-bound batches (few multiply-adds per value of their largest tensor, e.g. ExplaiNN's
    wide per-unit layers) are kept to about ``_BATCH_BYTES`` (CPU caches, no page faults for
    fresh allocations); compute-bound ones (Basset's convolutions) get 4x that, for larger
    matrix products.
    """
    largest, channels, macs = plan_.head_floats, 4, sum(p.numel() for p in plan_.head.parameters())
    for step in plan_.local_layers:
        out_channels = step.weight.shape[0] if step.kind == "conv" else channels
        largest = max(largest, step.crop * channels, step.width * out_channels)
        macs += step.width * step.weight.numel() if step.kind == "conv" else 0
        channels = out_channels
    budget = _BATCH_BYTES * (4 if macs > _COMPUTE_BOUND * largest else 1)
    return int(min(_BATCH_RANGE[1], max(_BATCH_RANGE[0], budget // (itemsize * largest))))


def _batches(lo: np.ndarray | None, n: int, batch: int) -> list[slice]:
    """Batches of at most ``batch`` variants; in the linear mode, cut where the head window starts (lo) change."""
    if lo is None:
        return _spans(n, batch)
    out, first = [], 0
    for a, b in _runs(lo):
        if b - first > batch and a > first:
            out.append(slice(first, a))
            first = a
        if b - first > batch:  # a long run: even pieces
            cuts = np.linspace(first, b, -(-(b - first) // batch) + 1).round().astype(int)
            out += [slice(int(c), int(d)) for c, d in itertools.pairwise(cuts)]
            first = b
    return [*out, slice(first, n)] if first < n else out


@contextmanager
def _one_thread(device: torch.device) -> Iterator[int]:
    """On the CPU, one intra-op thread per op, and as many worker threads as torch had intra-op threads.

    Batches are run side by side on worker threads (torch ops release the GIL) instead of
    splitting each op over OpenMP threads: the ops of a batch are small (OpenMP's fork and join
    cost as much as the work), and on a loaded machine every parallel op waits for the thread
    that is descheduled. Yields the number of workers (1 on other devices).
    """
    if device.type != "cpu":
        yield 1
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)


def _map(workers: int, fn: Any, items: list) -> Iterator[np.ndarray]:
    """fn(item) as float64 arrays, in order, on ``workers`` threads (each in inference mode)."""

    def task(item: Any) -> np.ndarray:
        with torch.inference_mode():
            return fn(item).double().cpu().numpy()

    if workers <= 1 or len(items) <= 1:
        yield from map(task, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        yield from pool.map(task, items)


def _at_least_two(e: np.ndarray) -> np.ndarray:
    """A batch of one variant run twice: a batch of one takes other kernels than larger ones (other rounding)."""
    return np.repeat(e, 2) if len(e) == 1 else e


def fast_deltas(model: Any, plan_: Plan, X: np.ndarray, cols: list[int], start: int, end: int,
                batch_size: int | None, verbose: bool, y0: np.ndarray | None = None) -> np.ndarray | None:
    """ISM deltas by recomputing only what each substitution changes (see the module docstring).

    Parameters
    ----------
    model : Predictor
        The torch-backend model ``plan_`` was compiled from.
    plan_ : Plan
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (canonical alphabet order; all-zero N columns allowed).
    cols : list of int
        The K explained outputs.
    start, end : int
        The mutated window [start, end).
    batch_size : int or None
        Variants per batch; None sizes batches to the layers (16 to 1,024).
    verbose : bool
        Progress bar counting variants.
    y0 : ndarray of shape (N, K) or None
        The model's predictions on X (``predict``); the compiled reference outputs must match
        them. Default is None (no check).

    Returns
    -------
    ndarray of shape (N, K, 4, L), float32, or None
        f(variant) - f(reference) for each substitution; 0 at the observed base and outside
        the window. None when the compiled reference outputs differ from ``y0`` by more than
        1e-4 of their scale (then run the naive path).
    """
    n, _, length = X.shape
    spec = model.input_spec
    device = model.device
    canon = np.eye(4, dtype=np.float32)[None]  # canonical base b at position b
    chan = to_model_layout(canon, "NCL", model_alphabet=spec.model_alphabet, alphabet=spec.alphabet)[0].argmax(0)
    xm = to_model_layout(X, "NCL", model_alphabet=spec.model_alphabet, alphabet=spec.alphabet)
    seqs, bases, positions = np.nonzero(X[:, :, start:end] == 0)
    positions = positions + start
    order = np.lexsort((bases, seqs, positions))  # position-major: neighbours share the head's weight slices
    seqs, bases, positions = seqs[order], bases[order], positions[order]
    deltas = np.zeros((n, len(cols), 4, length), dtype=np.float32)
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(seqs), desc="ism variants", unit="variant", leave=False)
    try:
        with model._session(), _one_thread(device) as workers:
            dtype = _dtype(model)
            eye = torch.eye(4, device=device, dtype=dtype)
            batch = batch_size or _batch_size(plan_, torch.finfo(dtype).bits // 8)
            tail = plan_.sparse.restrict(cols) if plan_.sparse is not None else None
            per_seq = (1 if tail is None else 2) * plan_.cache_floats * torch.finfo(dtype).bits // 8
            n_chunk = max(2, min(n, _CACHE_BYTES // per_seq))
            linear = None if tail is not None else False  # decided on the first chunk's sample
            for c0 in range(0, n, n_chunk):
                c1 = min(n, c0 + n_chunk)
                rows = np.arange(c0, c1) if c1 - c0 > 1 else np.array([c0, c0])  # never a batch of one
                x_ref = torch.as_tensor(xm[rows], device=device, dtype=dtype)
                ref_batch = max(2, min(batch, 64))
                exact = None if linear else _reference(model, plan_, x_ref, cols, None, False, ref_batch)
                fast = None if linear is False else _reference(model, plan_, x_ref, cols, tail, True, ref_batch)
                y_ref = (exact if exact is not None else fast).y[:c1 - c0].double().cpu().numpy()
                if y0 is not None and not np.abs(y_ref - y0[c0:c1]).max() <= _CHECK_TOLERANCE * np.abs(y0[c0:c1]).max():
                    return None
                mine = np.nonzero((seqs >= c0) & (seqs < c1))[0]

                def run(e: np.ndarray, mode: _Mode, c0: int = c0, x_ref: torch.Tensor = x_ref) -> torch.Tensor:
                    seq = torch.as_tensor(seqs[e] - c0, device=device)
                    new = eye[torch.as_tensor(chan[bases[e]], device=device)]  # (V, 4) new one-hot columns
                    return _variants(model, plan_, mode, x_ref, seq, positions[e], new, cols,
                                     None if mode.entry is None else tail)

                if linear is None:
                    linear = _linear_agrees(run, exact, fast, mine, seqs - c0)
                mode = fast if linear else exact
                ref = mode.y.double().cpu().numpy()
                lo = plan_.local_layers[-1].lo[positions[mine]] if linear else None
                if linear:  # the weight slices, before the workers share them
                    for start_lo in np.unique(lo):
                        plan_.sparse.sliced(int(start_lo), plan_.local_layers[-1].width)
                batches = [_at_least_two(mine[sl]) for sl in _batches(lo, len(mine), batch)]
                for e, y in zip(batches, _map(workers, lambda e, mode=mode, run=run: run(e, mode), batches)):
                    deltas[seqs[e], :, bases[e], positions[e]] = y - ref[seqs[e] - c0]
                    if bar is not None:
                        bar.update(len(np.unique(e)))
    finally:
        if bar is not None:
            bar.close()
    return deltas


def _linear_agrees(run: Any, exact: _Mode, fast: _Mode, mine: np.ndarray, seq: np.ndarray) -> bool:
    """Whether the linear mode's deltas equal the exact mode's on an evenly spread sample (module docstring)."""
    e = _at_least_two(mine[np.unique(np.linspace(0, len(mine) - 1, min(len(mine), _SAMPLE)).round().astype(int))])
    reference = (run(e, exact) - exact.y[seq[e]]).double()
    linear = (run(e, fast) - fast.y[seq[e]]).double()
    scale = float(reference.abs().max())
    return scale > 0 and float((linear - reference).abs().max()) <= _LINEAR_TOLERANCE * scale
