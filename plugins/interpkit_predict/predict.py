"""The ``predict`` method: outputs for every sequence, plus a per-output summary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from interpkit import Predictor, Result, Table
from interpkit.progress import batch_slices
from interpkit.validation import check_one_hot

__all__ = ["predict"]


_CHUNK = 4096  # sequences per progress step when batch_size is unset


def predict(
    model: Predictor,
    X: np.ndarray,
    *,
    batch_size: int | None = None,
    verbose: bool = False,
    names: Sequence[str] | None = None,
) -> Result:
    """Predict every output for every sequence (a plain forward pass; no interpretation).

    Parameters
    ----------
    model : Predictor
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (A, C, G, T).
    batch_size : int or None
        Sequences per forward pass. Default is None (backend's choice).
    verbose : bool
        Show a progress bar. Default is False.
    names : sequence of str or None
        Sequence names for the table. Default is None ("seq0", "seq1", ...).

    Returns
    -------
    Result
        ``arrays["predictions"]``: ndarray of shape (N, T), float32, in the model's
        own units. Tables ``predictions`` (one row per sequence: name, then one
        column per output) and ``summary`` (per output: mean, sd, min, max).

    Raises
    ------
    InputError
        For input that is not one-hot (N, 4, L) or of the wrong length.
    """
    X = check_one_hot(X, "X", length=model.input_spec.length)
    names = list(names) if names is not None else [f"seq{i}" for i in range(len(X))]
    chunks = batch_slices(len(X), batch_size or _CHUNK, verbose=verbose, desc="predict")
    y = np.concatenate([model.predict(X[sl], batch_size=batch_size) for sl in chunks])
    outputs = list(model.output_names)
    table = Table(("name", *outputs), tuple((n, *row) for n, row in zip(names, y.tolist())))
    summary = Table(
        ("output", "mean", "sd", "min", "max"),
        tuple((o, float(c.mean()), float(c.std()), float(c.min()), float(c.max())) for o, c in zip(outputs, y.T)),
    )
    return Result("predict", arrays={"predictions": y}, tables={"predictions": table, "summary": summary})
