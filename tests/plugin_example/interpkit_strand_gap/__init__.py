"""Example third-party method: how much a model's output changes on the reverse complement.

For one-hot X (N, 4, L), ``gap = f(X) - f(rc(X))`` per output. A model that scores both
strands symmetrically has gap 0; a strand-specific one does not.
"""

from __future__ import annotations

import numpy as np

from interpkit import BATCH_SIZE, MethodSpec, Param, Result, Table, hookimpl
from interpkit.sequences import reverse_complement

THRESHOLD = Param("threshold", float, 0.0, "Outputs with mean |gap| above this are flagged asymmetric.", min=0.0)


def strand_gap(model, X: np.ndarray, *, batch_size: int | None = None, threshold: float = 0.0) -> Result:
    """Predictions on X and on its reverse complement, and their difference.

    Parameters
    ----------
    model : Predictor
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (A, C, G, T).
    batch_size : int or None
        Sequences per forward pass. Default is None.
    threshold : float
        Mean |gap| above which an output is flagged asymmetric, in the model's units. Default is 0.0.

    Returns
    -------
    Result
        arrays ``forward``, ``reverse``, ``gap``: (N, T) float32 in the model's units;
        table ``summary``: output, mean_abs_gap, asymmetric.
    """
    forward = model.predict(X, batch_size=batch_size)
    reverse = model.predict(reverse_complement(X), batch_size=batch_size)
    gap = forward - reverse
    mean_abs = np.abs(gap).mean(axis=0)
    summary = Table(("output", "mean_abs_gap", "asymmetric"),
                    tuple((name, float(m), bool(m > threshold)) for name, m in zip(model.output_names, mean_abs)))
    return Result("strand-gap", arrays={"forward": forward, "reverse": reverse, "gap": gap},
                  tables={"summary": summary})


@hookimpl
def register_methods():
    """Register the strand-gap method."""
    return [MethodSpec("strand-gap", strand_gap, "Prediction gap between a sequence and its reverse complement.",
                       requires={"predict"}, params=(BATCH_SIZE, THRESHOLD), source="interpkit plugin example")]
