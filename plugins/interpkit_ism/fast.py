"""Fast ISM for chain-structured PyTorch CNNs: recompute only what a single substitution changes.

This module runs the variants (:func:`fast_deltas`) of a model compiled by :func:`plan`. The
fast path is split in four modules:

- :mod:`interpkit_ism.planning`: which models qualify, :func:`plan`, :class:`Plan` and
  :func:`naive_batch_size` (importable from here too);
- :mod:`interpkit_ism.chain`: the module chain, the checks of single layers and the windows
  of the local layers;
- :mod:`interpkit_ism.steps`: the compiled steps of the exact and the linear mode;
- this module: the reference pass, the variants, batching and worker threads, and the check
  that picks the mode.

How it works
------------
The layer-wise reuse of fastISM (Nair et al. 2022, Bioinformatics 38:2397) and yuzu (Schreiber
et al. 2022, Bioinformatics 38:3557). The reference sequence runs once through the trunk,
keeping the zero-padded input of every local layer. A substitution changes a window of W_l
outputs of each local layer (:func:`~interpkit_ism.chain.windows`), at an offset that depends
on its position, so variants of any positions and sequences share a batch. Each local layer
gathers the input crop its W_l outputs read from the cache, writes in the changed values
computed at the layer below and runs on the crop only; padding columns are zeros in the cache
as in the full pass.

Two modes are compiled (:mod:`interpkit_ism.steps`). The *exact* mode repeats the module's
arithmetic on the crops, bit for bit. The *linear* mode uses linearity: the first convolution
changes by a rank-1 term and the head's first layer by the product of a few of its weight
columns with the change of the trunk output.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from interpkit.adapt import to_model_layout
from interpkit_ism.planning import Plan, model_dtype, naive_batch_size, one_thread, plan
from interpkit_ism.steps import Local, Rank1, run_tail

__all__ = ["Plan", "fast_deltas", "naive_batch_size", "plan"]

#: Bytes of cached reference activations per chunk of sequences.
_CACHE_BYTES = 1 << 28
#: Bytes of a batch's largest tensor when the caller gives no batch_size.
_BATCH_BYTES = 5 << 19
#: Multiply-adds per value of a batch's largest tensor above which a batch counts as compute-bound.
_COMPUTE_BOUND = 256
#: Bounds of the automatic batch size (variants).
_BATCH_RANGE = (16, 1024)
#: Largest difference, relative to the largest output, between the compiled reference outputs and predict().
_CHECK_TOLERANCE = 1e-4
#: Variants in the sample comparing the linear mode with the exact one, and the largest difference of their
#: deltas (relative to the sample's largest delta) that lets the linear mode run.
_SAMPLE = 64
_LINEAR_TOLERANCE = 5e-6


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
    kept: list[torch.Tensor]  # per local layer: padded input (a Rank1: its output), (n, C, L')
    out: torch.Tensor  # trunk output (n, C, P)
    y: torch.Tensor  # explained outputs (n, K)
    entry: torch.Tensor | None = None  # linear mode: head's first layer outputs, (n, O) or (G, n, O / G)


def _trunk_reference(steps: tuple, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    kept = []
    for step in steps:
        if isinstance(step, Rank1):
            x = step.full(x)
            kept.append(x)
        elif isinstance(step, Local):
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
    y = torch.cat([_output(model, plan_, run_tail(tail, part.clone(), grouped), cols) for part in h])
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
        if isinstance(step, Rank1):
            lo = torch.as_tensor(step.lo[pos], device=device)
            e = new - x_ref[seq, :, pos_t]  # the new one-hot column minus the observed one
            cur = step.window(_gather(mode.kept[k], seq, lo, step.width), e, pos_t, lo)
            cur_lo, direct, k = lo, step.direct, k + 1
        elif isinstance(step, Local):
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
    return _output(model, plan_, run_tail(tail, h, sparse.groups > 1), cols)


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
        with model._session(), one_thread(device) as workers:
            dtype = model_dtype(model)
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
