"""The ``ism`` method: in silico saturation mutagenesis (every single-base substitution)."""

from __future__ import annotations

from typing import Any

import numpy as np

from interpkit import AttributionResult, Predictor, resolve_targets
from interpkit.errors import InputError
from interpkit.progress import batch_slices
from interpkit.validation import check_one_hot, check_scalar

__all__ = ["ism"]

#: Private switch for tests and benchmarks: True forces the naive path even where the fast one applies.
_FORCE_NAIVE = False

#: Bytes of one-hot input per chunk of variants built at once (float32),
#: 16 MiB: 1,024 variants of 1 kb; the model then runs the chunk in batches of ``batch_size``.
_CHUNK_BYTES = 1 << 24


def _window(start: Any, end: Any, length: int) -> tuple[int, int]:
    start = 0 if start is None else check_scalar(start, "start", int, min_val=0, max_val=length - 1)
    end = length if end is None else check_scalar(end, "end", int, min_val=1, max_val=length)
    if start >= end:
        raise InputError(f"start == {start} and end == {end}: the window [start, end) is empty; "
                         f"give 0 <= start < end <= {length} (the sequence length).")
    return start, end


def _edits(x: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Bases and positions of the non-identity substitutions of one sequence (4, L), position-major."""
    window = x[:, start:end].T  # (W, 4)
    keep = window == 0  # every base but the observed one; all four at an all-zero (N) column
    positions, bases = np.nonzero(keep)
    return bases, positions + start


def _fast_plan(model: Predictor, length: int) -> Any:
    """The compiled plan of a qualifying PyTorch model (see :mod:`interpkit_ism.fast`), else None."""
    if getattr(model, "backend_name", None) != "torch":
        return None
    from interpkit_ism.fast import plan

    return plan(model, length)


def _naive_batch(model: Predictor, length: int, batch_size: int | None) -> int | None:
    """``batch_size``, or for a PyTorch model on the CPU a cache-friendly one (:func:`~interpkit_ism.fast.naive_batch_size`)."""
    if batch_size is not None or getattr(model, "backend_name", None) != "torch":
        return batch_size
    from interpkit_ism.fast import naive_batch_size

    return naive_batch_size(model, length)


def _naive_deltas(model: Predictor, X: np.ndarray, cols: list, start: int, end: int, batch_size: int | None,
                  verbose: bool, y0: np.ndarray) -> np.ndarray:
    """(N, K, 4, L) deltas with every variant run in full through ``model.predict``."""
    n, _, length = X.shape
    n_edits = 3 * (end - start) + (X[:, :, start:end].sum(axis=1) == 0).sum(axis=1)  # per sequence
    offsets = np.concatenate([[0], np.cumsum(n_edits)])
    chunk = max(batch_size or 1, _CHUNK_BYTES // (16 * length))
    deltas = np.zeros((n, len(cols), 4, length), dtype=np.float32)  # differences taken in float64
    for sl in batch_slices(int(offsets[-1]), chunk, verbose=verbose, desc="ism variants"):
        seq_idx, bases, positions = [], [], []
        first = int(np.searchsorted(offsets, sl.start, side="right")) - 1
        for i in range(first, n):
            lo, hi = max(sl.start, offsets[i]), min(sl.stop, offsets[i + 1])
            if lo >= hi:
                break
            b, p = _edits(X[i], start, end)
            b, p = b[lo - offsets[i]: hi - offsets[i]], p[lo - offsets[i]: hi - offsets[i]]
            seq_idx.append(np.full(len(b), i))
            bases.append(b)
            positions.append(p)
        seq, b, p = np.concatenate(seq_idx), np.concatenate(bases), np.concatenate(positions)
        rows = np.arange(len(seq))
        variants = X[seq]
        variants[rows, :, p] = 0
        variants[rows, b, p] = 1
        y = model.predict(variants, batch_size=batch_size)[:, cols]
        deltas[seq, :, b, p] = y - y0[seq]
    return deltas


def ism(
    model: Predictor,
    X: np.ndarray,
    *,
    target: Any = None,
    start: int | None = None,
    end: int | None = None,
    batch_size: int | None = None,
    verbose: bool = False,
) -> AttributionResult:
    """In silico saturation mutagenesis: the change in output caused by every single-base substitution.

    Every position p in the window [start, end) of every sequence is mutated to each base
    other than the observed one (3 variants per position; identity edits are not run, their
    effect is 0 by definition), and the variants are run through ``model.predict``. The
    reference prediction of each sequence is computed once. Variants are built chunk by
    chunk as they are predicted, so memory stays bounded whatever N and L (the full
    (N, 3L, 4, L) variant tensor is never formed). An all-zero (N) column has no observed
    base, so it is mutated to each of the 4 bases (4 variants), and its attribution (the
    projection on the observed base) is 0.

    Parameters
    ----------
    model : Predictor
        Any backend; only predictions are needed.
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (A, C, G, T); all-zero columns (N) are allowed.
    target : None, int, str or sequence
        Outputs to explain: indices or names, or several as a sequence or comma-separated
        string ("0,2", "MAX,JUND"). Default is None (every output).
    start : int or None
        First mutated position (0-based, inclusive). Default is None (0).
    end : int or None
        Position after the last mutated one (exclusive, as a Python slice; no negative
        values). Default is None (L, the end of the sequence).
    batch_size : int or None
        Variants per forward pass. Variants are built in chunks of about 16 MiB of one-hot
        input (or ``batch_size`` variants if more), which the model runs in batches of
        ``batch_size``. Default is None: the fast path sizes batches to its layers, and the
        naive path lets the backend choose (a PyTorch model on the CPU gets batches of about
        64 MiB of activations, which stay in the CPU caches).
    verbose : bool
        Show a progress bar counting variants. Default is False.

    Returns
    -------
    AttributionResult
        For the K explained outputs (``targets``), in the units of the model's outputs:

        - ``deltas``: ndarray of shape (N, K, 4, L), float32, f(variant) - f(reference) for
          the substitution of base b at position p; 0 at the observed base and outside the
          window;
        - ``hypothetical``: (N, K, 4, L), float32, the deltas mean-centred over the 4 bases at
          each position (the mean includes the observed base's 0), as tangermeme's
          ``saturation_mutagenesis`` aggregates them; 0 outside the window;
        - ``attributions``: (N, K, 4, L), float32, ``hypothetical * one_hot``: minus the mean
          effect of mutating the observed base away (0 at N columns);
        - ``l2``: (N, K, L), float32, the Euclidean norm of the 4 deltas at each position (the
          height of an ISM logo);
        - ``reference``: (N, K), float32, f(reference), the model's outputs on X;
        - ``one_hot``: (N, 4, L), float32, X.

    Raises
    ------
    InputError
        For X that is not one-hot (N, 4, L) of the model's length, an unknown target, or a
        window that is empty or outside the sequence.
    InputTypeError
        For ``start``, ``end`` or ``batch_size`` that are not ints.

    Notes
    -----
    Source: ISM as used by Alipanahi et al. (2015), Nat. Biotechnol. 33:831 (DeepBind "mutation
    maps") and Zhou & Troyanskaya (2015), Nat. Methods 12:931 (DeepSEA); the mean-centred
    aggregation is that of tangermeme (Schreiber, ``saturation_mutagenesis``,
    ``_attribution_score``), which our ``hypothetical`` equals for a single target. Unlike
    tangermeme, several targets are kept apart (not averaged) and arrays cover the whole
    sequence (zero outside the window). The cost is 3 (end - start) forward passes per
    sequence. On a PyTorch CNN whose forward is a chain of module calls (``nn.Sequential``,
    or e.g. ExplaiNN's ``final(linears(x))``: local layers, padded or not, then a head) only
    what each edit changes is recomputed, from cached reference activations (the layer-wise
    reuse of fastISM, Nair et al. 2022, Bioinformatics 38:2397, and yuzu, Schreiber et al.
    2022, Bioinformatics 38:3557; see :mod:`interpkit_ism.fast`), with results equal to the
    naive computation up to float rounding; other models run every variant in full.
    ``params["ism_path"]`` says which path ran ("fast" or "naive").
    """
    X = check_one_hot(X, "X", length=model.input_spec.length)
    targets = resolve_targets(target, model.output_names)
    length = X.shape[2]
    start, end = _window(start, end, length)
    if batch_size is not None:
        check_scalar(batch_size, "batch_size", int, min_val=1)
    cols = list(targets)

    y0 = model.predict(X, batch_size=batch_size)[:, cols].astype(np.float64)  # (N, K)
    fast_plan = None if _FORCE_NAIVE else _fast_plan(model, length)
    deltas = None
    if fast_plan is not None:
        from interpkit_ism.fast import fast_deltas

        deltas = fast_deltas(model, fast_plan, X, cols, start, end, batch_size, verbose, y0)
    if deltas is None:
        fast_plan = None
        deltas = _naive_deltas(model, X, cols, start, end, _naive_batch(model, length, batch_size), verbose, y0)

    hypothetical = deltas - deltas.mean(axis=2, keepdims=True)
    arrays = {
        "one_hot": X,
        "attributions": hypothetical * X[:, None],
        "hypothetical": hypothetical,
        "deltas": deltas,
        "l2": np.sqrt((deltas.astype(np.float64) ** 2).sum(axis=2)).astype(np.float32),
        "reference": y0.astype(np.float32),
    }
    params = {"start": start, "end": end, "ism_path": "naive" if fast_plan is None else "fast"}
    return AttributionResult("ism", arrays=arrays, params=params, targets=targets)
