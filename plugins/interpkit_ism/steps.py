"""The compiled steps of fast ISM, and how they run on crops of the sequence and on vectors.

A :class:`~interpkit_ism.planning.Plan` holds these steps; :mod:`interpkit_ism.fast` runs them
on the variants (the layer-wise reuse of fastISM, Nair et al. 2022, Bioinformatics 38:2397,
and yuzu, Schreiber et al. 2022, Bioinformatics 38:3557). Two modes are compiled.

The *exact* mode repeats the module's arithmetic: the trunk runs the module's own kernels on
the crops (:class:`Local`, :class:`Norm`; Conv2d with (k, 1) kernels as the equal Conv1d), so
every recomputed value is bit for bit the full pass's, and the changed window is written into
the cached trunk output on which the head modules run. The *linear* mode, compiled when the
head starts with a flatten followed by a Linear or a (grouped) 1x1 Conv1d, uses linearity twice:

- the first convolution (:class:`Rank1`, on the one-hot input, BatchNorm folded in) changes by
  a rank-1 term: its outputs are the cached reference plus sum_c W[:, c, t] e_c, with e the new
  one-hot column minus the old one and t the kernel tap that sees p; it directly computes the
  whole crop the next local layer reads;
- the outputs of the head's first layer (:class:`Sparse`) are the cached reference outputs
  plus W[:, cols] times the change of the flattened trunk output, which is non-zero only in the
  C x W_T window (a grouped layer reads only its own channels: one batched product per group).
  The layers after it run on (V, F) vectors (:func:`run_tail`), kept as (G, V, F / G) between
  grouped layers, with BatchNorm folded into the layer before (:func:`fold`); for (N, T)
  outputs the last Linear computes only the explained outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Affine", "Call", "Dense", "Local", "Norm", "Rank1", "Sparse", "fold", "run_tail"]


@dataclass(eq=False)
class Local:
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
class Rank1:
    """The first convolution of the linear mode, on the one-hot input, updated by weight columns.

    ``conv`` is the layer with BatchNorm folded in; ``columns`` (4, C_out * k) its weight per
    input channel; ``width`` and ``lo`` (L,) the output window it computes for a substitution at
    each position: the crop the next local layer reads when ``direct`` (nothing but position-wise
    steps and no padding in between), else the changed outputs.
    """

    conv: Local
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
class Norm:
    """An eval-mode BatchNorm on (V, C, W), the module's own operation."""

    module: nn.Module

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.module
        return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


@dataclass(eq=False)
class Affine:
    """Per-feature x * scale + shift on (V, F) vectors (F,): an eval-mode BatchNorm that could not be folded."""

    scale: torch.Tensor
    shift: torch.Tensor


@dataclass(eq=False)
class Dense:
    """A Linear or grouped 1x1 Conv1d on (V, F) vectors: weight (G, O / G, F / G), bias (O,) or None."""

    weight: torch.Tensor
    bias: torch.Tensor | None


@dataclass(eq=False)
class Call:
    """A module called on its recorded input shape (batch axis excluded)."""

    module: nn.Module
    shape: tuple[int, ...]


@dataclass(eq=False)
class Sparse:
    """The linear mode's head: its first layer in grouped form, then the tail on vectors.

    ``weight`` (G, O / G, C / G, P) and ``bias`` (O,) or None (BatchNorm folded in); ``tail``
    the steps after it (:class:`Dense`, :class:`Affine`, :class:`Call`, element-wise
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
        return _dense(Dense(self.weight.reshape(groups, out_g, m * p), self.bias), t.reshape(len(t), -1), False)

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
        j = max(j for j, op in enumerate(tail) if isinstance(op, Dense))
        w, b = tail[j].weight, tail[j].bias
        tail[j] = Dense(w[:, cols], None if b is None else b[cols])
        return tuple(tail)


def _dense(op: Dense, x: torch.Tensor, grouped: bool) -> torch.Tensor:
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


def run_tail(tail: tuple, h: torch.Tensor, grouped: bool) -> torch.Tensor:
    """The sparse head's tail on h, (V, F) or (G, V, F / G) if ``grouped`` (overwritten); returns (V, F_out)."""
    for op in tail:
        if isinstance(op, Dense):
            if grouped and op.weight.shape[0] != h.shape[0] and op.weight.shape[0] > 1:
                h, grouped = h.transpose(0, 1).reshape(h.shape[1], -1), False
            h = _dense(op, h, grouped)
            grouped = op.weight.shape[0] > 1
        elif isinstance(op, Affine):
            shape = (h.shape[0], 1, -1) if grouped else (-1,)
            h = torch.addcmul(op.shift.view(shape), h, op.scale.view(shape))
        elif isinstance(op, Call):
            if grouped:
                h, grouped = h.transpose(0, 1).reshape(h.shape[1], -1), False
            h = op.module(h.reshape(len(h), *op.shape)).reshape(len(h), -1)
        elif type(op) in _INPLACE:
            h = _INPLACE[type(op)](h)
        else:  # an element-wise module: any layout
            h = op(h)
    return h.transpose(0, 1).reshape(h.shape[1], -1) if grouped else h


def fold(weight: torch.Tensor, bias: torch.Tensor | None, scale: torch.Tensor, shift: torch.Tensor
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight (O, ...) and bias (O,) of a linear map followed by the per-output affine map (scale, shift)."""
    w = weight.double() * scale.view(-1, *(1,) * (weight.ndim - 1))
    b = shift + (0 if bias is None else bias.double() * scale)
    return w.to(weight.dtype), b.to(weight.dtype)

