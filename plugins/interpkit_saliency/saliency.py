"""The ``saliency`` method: the gradient of each output with respect to the one-hot input."""

from __future__ import annotations

from typing import Any

import numpy as np

from interpkit import AttributionResult, Capability, Predictor, capabilities_of, resolve_targets
from interpkit.errors import CapabilityError
from interpkit.progress import batch_slices
from interpkit.validation import check_one_hot, check_scalar

__all__ = ["saliency"]


def saliency(
    model: Predictor,
    X: np.ndarray,
    *,
    target: Any = None,
    correction: bool = False,
    batch_size: int | None = None,
    verbose: bool = False,
) -> AttributionResult:
    """Saliency map (input gradient) and gradient x input for each explained output.

    The gradient g = d y_t / d X of output t is taken at the one-hot input, in canonical
    A, C, G, T order. It is returned as the hypothetical contribution of every base at
    every position, and its projection on the observed base, g * X, is the attribution.
    For one-hot input that projection is exactly gradient x input (Shrikumar et al. 2016),
    so gradient x input needs no method of its own: it is ``attributions`` here.

    Parameters
    ----------
    model : Predictor
        A model with the GRADIENT capability (PyTorch, Keras, ONNX with its torch
        conversion, numpy PWM model).
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (A, C, G, T); all-zero columns (N) are allowed.
    target : None, int, str or sequence
        Outputs to explain: indices or names, or several as a sequence or comma-separated
        string ("0,2", "MAX,JUND"). Default is None (every output).
    correction : bool
        Subtract, at each position, the mean of the gradient over the 4 bases (Majdandzic
        et al. 2023), which removes the off-simplex component of the gradient that a
        one-hot input cannot express. Default is False.
    batch_size : int or None
        Sequences per forward/backward pass. Default is None (the backend's choice).
    verbose : bool
        Show a progress bar over the explained outputs. Default is False.

    Returns
    -------
    AttributionResult
        For the K explained outputs (``targets``), in output units per unit of input:

        - ``hypothetical``: ndarray of shape (N, K, 4, L), float32, the gradient (corrected if
          ``correction``);
        - ``attributions``: (N, K, 4, L), float32, ``hypothetical * one_hot``: gradient x input
          (0 at N columns);
        - ``one_hot``: (N, 4, L), float32, X.

    Raises
    ------
    CapabilityError
        If the model has no gradients (use ``ism``, which needs only predictions).
    InputError
        For X that is not one-hot (N, 4, L) of the model's length, or an unknown target.
    InputTypeError
        For ``correction`` that is not a bool or ``batch_size`` that is not an int.

    Notes
    -----
    Sources: Simonyan, Vedaldi & Zisserman (2014), "Deep inside convolutional networks",
    ICLR workshop, section 3.1 (saliency as the input gradient); Shrikumar et al. (2016)
    arXiv:1605.01713 (gradient x input); Majdandzic, Rajesh & Koo (2023), "Correcting
    gradient-based interpretations of deep neural networks for genomics", Genome Biology
    24:109 (g - mean over bases of g). The gradient is that of the backend's reduced
    output (per-position models through their reduction).
    """
    missing = {Capability.PREDICT, Capability.GRADIENT} - capabilities_of(model)
    if missing:
        raise CapabilityError(
            f"saliency needs the {', '.join(sorted(map(str, missing)))} capability, which model "
            f"{getattr(model, 'name', type(model).__name__)} does not provide; use ism, which needs only predictions."
        )
    X = check_one_hot(X, "X", length=model.input_spec.length)
    targets = resolve_targets(target, model.output_names)
    check_scalar(correction, "correction", bool)
    if batch_size is not None:
        check_scalar(batch_size, "batch_size", int, min_val=1)

    steps = batch_slices(len(targets), 1, verbose=verbose, desc="saliency", unit="output")
    grads = np.stack([model.gradient(X, targets[sl.start], batch_size=batch_size) for sl in steps], axis=1)
    grads = grads.astype(np.float32, copy=False)
    if correction:
        grads = grads - grads.mean(axis=2, keepdims=True)
    arrays = {"one_hot": X, "attributions": grads * X[:, None], "hypothetical": grads}
    return AttributionResult("saliency", arrays=arrays, targets=targets)
