"""Fast ISM for PyTorch ``nn.Sequential`` CNNs: recompute only the receptive-field cone of each edit.

A model qualifies when its module is an ``nn.Sequential`` (plain containers, possibly nested)
that starts with a *trunk* of local layers without padding (Conv1d/Conv2d along the sequence
axis, max/average pools, BatchNorm with running statistics, element-wise activations, Dropout,
Identity) followed by a *head* that starts with a global layer (Flatten, Linear, adaptive
pool); the head may hold anything. Everything else (other modules, padding, ``ceil_mode``,
unknown layers, extra inputs, NLC layout) is declined: :func:`plan` returns None and ISM runs
the naive way.

How it works (the layer-wise reuse of fastISM, Nair et al. 2022, Bioinformatics 38:2397, and
yuzu, Schreiber et al. 2022): the reference sequence is run once through the trunk and the
input of every local layer is kept. A substitution at position p changes only the outputs of
local layer l whose window contains p, an interval of at most W_l positions (from the layer
table's receptive field R_l, jump J_l and start S_l). For a batch of variants, each layer
gathers the W_l-wide input crop it needs from the cached reference activations, splices in
the changed values computed at the layer below, and runs on the crop only. The changed trunk
outputs are then spliced into the cached trunk output and the head runs on it. With no
padding a crop sees exactly the values the full pass sees, so the results equal the naive
computation up to float rounding. Variants of any positions and sequences share a batch
(fixed crop widths, per-variant offsets).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from interpkit.adapt import to_model_layout
from interpkit.probe import Geometry, receptive_fields
from interpkit.progress import batch_slices

__all__ = ["Plan", "fast_deltas", "plan"]

#: Layers acting position by position (exact types: a subclass may override forward).
_POINTWISE = (
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softsign, nn.Hardtanh, nn.Threshold, nn.Dropout, nn.Dropout1d,
    nn.Dropout2d, nn.BatchNorm1d, nn.BatchNorm2d,
)
_CONV = (nn.Conv1d, nn.Conv2d)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)
#: Layers that may open the head (they mix every position).
_HEAD_START = (nn.Flatten, nn.Linear, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d,
               nn.AdaptiveMaxPool2d)
#: Index of the sequence axis in a 2-D kernel tuple, per layout.
_KERNEL_AXIS = {"NCL1": 0, "NC1L": 1}
#: Bytes of cached reference activations per chunk of sequences.
_CACHE_BYTES = 1 << 28
#: Variants per batch when the caller gives no batch_size.
_DEFAULT_BATCH = 1024


@dataclass(frozen=True)
class _Layer:
    module: nn.Module
    local: bool
    k_eff: int = 1
    stride: int = 1
    geometry: Geometry | None = None


@dataclass(frozen=True)
class Plan:
    """A qualifying model split into trunk (local layers with their geometry) and head."""

    trunk: tuple[_Layer, ...]
    head: nn.Module
    layout: str


def _leaves(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]] | None:
    """Children of plain nn.Sequential containers, depth first, with qualified names; None if a container is custom."""
    if type(module).forward is not nn.Sequential.forward:
        return None
    out: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            sub = _leaves(child, full + ".")
            if sub is None:
                return None
            out.extend(sub)
        else:
            out.append((full, child))
    return out


def _tuple(value: Any, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _axis_params(module: nn.Module, layout: str) -> tuple[int, int, int] | None:
    """(kernel, stride, dilation) along the sequence axis of a conv or pool without padding, else None."""
    two_d = isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))
    if two_d != (layout != "NCL"):
        return None
    n = 2 if two_d else 1
    if isinstance(module, _CONV):
        if isinstance(module.padding, str):
            if module.padding != "valid":
                return None
        elif any(_tuple(module.padding, n)):
            return None
        kernel, stride, dilation = module.kernel_size, module.stride, module.dilation
    else:
        if any(_tuple(module.padding, n)) or module.ceil_mode or getattr(module, "return_indices", False):
            return None
        kernel = module.kernel_size
        stride = module.stride if module.stride not in (None, (), []) else kernel
        dilation = getattr(module, "dilation", 1)
    kernel, stride, dilation = _tuple(kernel, n), _tuple(stride, n), _tuple(dilation, n)
    if two_d:
        axis = _KERNEL_AXIS[layout]
        if (kernel[1 - axis], stride[1 - axis], dilation[1 - axis]) != (1, 1, 1):
            return None
        return int(kernel[axis]), int(stride[axis]), int(dilation[axis])
    return int(kernel[0]), int(stride[0]), int(dilation[0])


def plan(model: Any) -> Plan | None:
    """The trunk/head split of a qualifying torch model, or None (then ISM runs the naive way)."""
    module = getattr(model, "module", None)
    spec = model.input_spec
    if (not isinstance(module, nn.Sequential) or isinstance(module, torch.jit.ScriptModule)
            or spec.layout not in ("NCL", "NCL1", "NC1L") or spec.extra_inputs
            or not all(hasattr(model, a) for a in ("layers", "reduce_output", "device", "_session"))):
        return None
    leaves = _leaves(module)
    if not leaves:
        return None
    try:
        table = list(model.layers())
        geoms = receptive_fields(table)
    except Exception:  # noqa: BLE001 - any failure to describe the layers means: not for the fast path
        return None
    trunk: list[_Layer] = []
    for i, (name, leaf) in enumerate(leaves):
        if isinstance(leaf, _HEAD_START) and type(leaf) in _HEAD_START:
            break
        if i >= len(table) or table[i].name != name:
            return None
        info, geom = table[i], geoms[i]
        if type(leaf) in _POINTWISE:
            if isinstance(leaf, (nn.BatchNorm1d, nn.BatchNorm2d)) and leaf.running_mean is None:
                return None
            trunk.append(_Layer(leaf, local=False))
        elif type(leaf) in _CONV + _POOL:
            params = _axis_params(leaf, spec.layout)
            if params is None or geom.is_global or info.padding != 0 or geom.start != 0:
                return None
            k, s, d = params
            if (info.kernel_size, info.stride, info.dilation) != (k, s, d):
                return None  # the layer table must describe the same layer
            trunk.append(_Layer(leaf, local=True, k_eff=d * (k - 1) + 1, stride=s, geometry=geom))
        else:
            return None  # an unknown layer before the head
    else:
        return None  # no head: per-position output models run the naive way
    if not any(layer.local for layer in trunk):
        return None
    head = nn.Sequential(*[leaf for _, leaf in leaves[len(trunk):]])
    return Plan(tuple(trunk), head, spec.layout)


def _call(layer: nn.Module, t: torch.Tensor, layout: str) -> torch.Tensor:
    """Run a trunk layer on (V, C, W) held in canonical (N, C, L) form."""
    if layout == "NCL":
        return layer(t)
    axis = 3 if layout == "NCL1" else 2
    return layer(t.unsqueeze(axis)).squeeze(axis)


def _gather(ref: torch.Tensor, seq: torch.Tensor, lo: torch.Tensor, width: int) -> torch.Tensor:
    """(V, C, width) crops ref[seq[v], :, lo[v]:lo[v] + width]."""
    idx = lo[:, None] + torch.arange(width, device=ref.device)
    return ref[seq[:, None], :, idx].permute(0, 2, 1).contiguous()


def _splice(crop: torch.Tensor, crop_lo: torch.Tensor, cur: torch.Tensor, cur_lo: torch.Tensor) -> None:
    """Overwrite crop (V, C, Wc) starting at crop_lo with cur (V, C, Wu) starting at cur_lo, where they overlap."""
    rel = cur_lo[:, None] + torch.arange(cur.shape[2], device=cur.device) - crop_lo[:, None]
    v, k = torch.nonzero((rel >= 0) & (rel < crop.shape[2]), as_tuple=True)
    crop[v, :, rel[v, k]] = cur[v, :, k]


def _intervals(geom: Geometry, positions: np.ndarray, n_out: int) -> tuple[int, np.ndarray]:
    """Width W and per-position first output of a window of W outputs holding every output that sees p."""
    r, j, s = geom.receptive_field, geom.jump, geom.start
    lo = -((-(positions - r + 1 - s)) // j)  # ceil
    hi = (positions - s) // j + 1
    width = min(int((hi - lo).max()), n_out)
    return width, np.clip(lo, 0, n_out - width)


def fast_deltas(model: Any, plan_: Plan, X: np.ndarray, cols: list[int], start: int, end: int,
                batch_size: int | None, verbose: bool) -> np.ndarray:
    """(N, K, 4, L) float32 ISM deltas by cone recomputation; identity edits and positions outside the window 0."""
    n, _, length = X.shape
    spec = model.input_spec
    device = model.device
    canon = np.eye(4, dtype=np.float32)[None]  # canonical base b at position b
    chan = to_model_layout(canon, "NCL", model_alphabet=spec.model_alphabet, alphabet=spec.alphabet)[0].argmax(0)
    chan = torch.as_tensor(chan, device=device)
    xm = to_model_layout(X, "NCL", model_alphabet=spec.model_alphabet, alphabet=spec.alphabet)
    seqs, bases, positions = np.nonzero(X[:, :, start:end] == 0)
    positions = positions + start
    deltas = np.zeros((n, len(cols), 4, length), dtype=np.float32)
    batch = batch_size or _DEFAULT_BATCH
    session: AbstractContextManager = model._session()
    with session:
        dtype = next((p.dtype for p in model.module.parameters() if p.is_floating_point()), torch.float32)
        # One reference pass on one sequence: output lengths of every local layer and the cache size.
        x1 = torch.as_tensor(xm[:1], device=device, dtype=dtype)
        lengths, per_seq = [], 0
        for layer in plan_.trunk:
            if layer.local:
                per_seq += x1[0].numel() * x1.element_size()
            x1 = _call(layer.module, x1, plan_.layout)
            if layer.local:
                lengths.append(x1.shape[2])
        per_seq += x1[0].numel() * x1.element_size()
        n_chunk = max(1, _CACHE_BYTES // per_seq)
        for c0 in range(0, n, n_chunk):
            c1 = min(n, c0 + n_chunk)
            cache, t_ref = _reference(plan_, torch.as_tensor(xm[c0:c1], device=device, dtype=dtype), batch)
            y0 = _head(model, plan_, t_ref, cols, batch)
            mine = np.nonzero((seqs >= c0) & (seqs < c1))[0]
            for sl in batch_slices(len(mine), batch, verbose=verbose, desc="ism variants", unit="variant"):
                e = mine[sl]
                seq_t = torch.as_tensor(seqs[e] - c0, device=device)
                cur = torch.zeros(len(e), 4, 1, device=device, dtype=dtype)
                cur[torch.arange(len(e), device=device), chan[torch.as_tensor(bases[e], device=device)], 0] = 1
                cur_lo = torch.as_tensor(positions[e], device=device)
                local = 0
                for layer in plan_.trunk:
                    if layer.local:
                        width, lo = _intervals(layer.geometry, positions[e], lengths[local])
                        lo = torch.as_tensor(lo, device=device)
                        in_lo = lo * layer.stride
                        crop = _gather(cache[local], seq_t, in_lo, (width - 1) * layer.stride + layer.k_eff)
                        _splice(crop, in_lo, cur, cur_lo)
                        cur, cur_lo = _call(layer.module, crop, plan_.layout), lo
                        local += 1
                    else:
                        cur = _call(layer.module, cur, plan_.layout)
                t = t_ref[seq_t]
                _splice(t, torch.zeros_like(cur_lo), cur, cur_lo)
                y = _reduce(model, plan_, t, cols).double().cpu().numpy()
                deltas[seqs[e], :, bases[e], positions[e]] = y - y0[seqs[e] - c0]
    return deltas


def _reference(plan_: Plan, x: torch.Tensor, batch: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Inputs of every local trunk layer and the trunk output, (N, C, P) each, for the reference sequences."""
    parts: list[list[torch.Tensor]] = []
    outs: list[torch.Tensor] = []
    for i in range(0, len(x), batch):
        t, kept = x[i:i + batch], []
        for layer in plan_.trunk:
            if layer.local:
                kept.append(t)
            t = _call(layer.module, t, plan_.layout)
        parts.append(kept)
        outs.append(t)
    cache = [torch.cat([p[k] for p in parts]) for k in range(len(parts[0]))]
    return cache, torch.cat(outs)


def _reduce(model: Any, plan_: Plan, t: torch.Tensor, cols: list[int]) -> torch.Tensor:
    axis = {"NCL": None, "NCL1": 3, "NC1L": 2}[plan_.layout]
    t = t if axis is None else t.unsqueeze(axis)
    return model.reduce_output(plan_.head(t))[:, cols]


def _head(model: Any, plan_: Plan, t_ref: torch.Tensor, cols: list[int], batch: int) -> np.ndarray:
    return np.concatenate([_reduce(model, plan_, t_ref[i:i + batch], cols).double().cpu().numpy()
                           for i in range(0, len(t_ref), batch)])
