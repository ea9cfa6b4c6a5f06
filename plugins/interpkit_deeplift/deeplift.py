"""The ``deeplift`` method: DeepLIFT (rescale rule) with dinucleotide-shuffled references, as in genomics practice.

For each sequence x and each of its references r (dinucleotide shuffles of x), the rescale
rule gives multipliers m(x, r) with sum((x - r) * m) = f(x) - f(r) (summation-to-delta). The
hypothetical contribution of base b at position l is sum_a (e_b - r)_a,l * m_a,l, averaged
over the references; the attribution is its projection on the observed base.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from interpkit.adapt import auto_batch_size, from_model_layout, to_model_layout
from interpkit.errors import CapabilityError, InputError, InterpkitWarning
from interpkit.params import resolve_targets
from interpkit.predictor import Predictor
from interpkit.progress import batch_slices
from interpkit.results import AttributionResult
from interpkit.sequences import dinucleotide_shuffle
from interpkit.validation import check_one_hot, check_scalar

__all__ = ["deeplift", "deeplift_from_references", "deeplift_references"]

#: Memory of a DeepLIFT pass relative to a forward pass (activations, their copies and gradients).
_GRADIENT_FACTOR = 4
#: Pairs per pass when batch_size is unset: larger passes are slower on CPU (cache), measured on ExplaiNN.
_PAIRS_PER_PASS = 80


def _sequence_seed(random_state: int, index: int) -> int:
    """The seed of sequence ``index``'s references: a function of (random_state, index) only."""
    return int(np.random.SeedSequence([random_state, index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _references(X: np.ndarray, start: int, n_references: int, random_state: int) -> np.ndarray:
    """References of X[i] (global index start + i): (len(X), n_references, 4, L) float32."""
    return np.stack([dinucleotide_shuffle(x[None], n=n_references, random_state=_sequence_seed(random_state, start + i))[0]
                     for i, x in enumerate(X)]) if len(X) else np.zeros((0, n_references, *X.shape[1:]), np.float32)


def deeplift_references(X: Any, *, n_references: int = 20, random_state: int = 0) -> np.ndarray:
    """The references :func:`deeplift` uses: dinucleotide shuffles of each sequence.

    Sequence i's shuffles come from :func:`interpkit.sequences.dinucleotide_shuffle` seeded with a
    seed derived from ``(random_state, i)`` only, so they do not depend on the batch size or on
    the other sequences.

    Parameters
    ----------
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (A, C, G, T; all-zero columns are N).
    n_references : int
        Shuffles per sequence, >= 1. Default is 20.
    random_state : int
        Seed, >= 0. Default is 0.

    Returns
    -------
    references : ndarray of shape (N, n_references, 4, L), float32
        Each keeps its sequence's first and last base and its mono- and dinucleotide counts.

    Raises
    ------
    InputError, InputTypeError
        If X is not one-hot (N, 4, L) or an option is out of range.
    """
    X = check_one_hot(X, "X")
    n_references = check_scalar(n_references, "n_references", int, min_val=1)
    random_state = check_scalar(random_state, "random_state", int, min_val=0)
    return _references(X, 0, n_references, random_state)


def _torch_model(model: Any) -> Any:
    """The torch-backend model, or a CapabilityError naming what would work."""
    if not isinstance(model, Predictor):
        from interpkit.api import load

        model = load(model)
    backend = getattr(model, "backend_name", type(model).__name__)
    name = getattr(model, "name", type(model).__name__)
    if backend == "torch" and hasattr(model, "module"):
        return model
    if backend == "onnx":
        raise CapabilityError(
            f"deeplift cannot run on ONNX model {name}: its torch translation evaluates the graph with torch "
            "functions, with no module per activation for the rescale rules to attach to (the result would be "
            "plain gradient x input); load the original PyTorch model with the torch backend, or use ism or "
            "saliency on this one.")
    if backend == "keras":
        raise CapabilityError(
            f"deeplift runs on PyTorch models only (through Captum), and model {name} is a Keras model; use a "
            "PyTorch port of it with the torch backend, or ism or saliency on this one.")
    raise CapabilityError(f"deeplift runs on PyTorch models only (torch backend), and model {name} uses backend "
                          f"{backend!r}; use ism or saliency instead.")


def _check_options(model: Any, X: Any, target: Any, batch_size: Any, warning_threshold: Any,
                   verbose: Any) -> tuple[Any, np.ndarray, tuple[int, ...], int | None, float]:
    model = _torch_model(model)
    X = check_one_hot(X, "X", length=model.input_spec.length)
    if len(X) == 0:
        raise InputError("X holds no sequences (shape (0, 4, L)); give at least one.")
    if batch_size is not None:
        batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    warning_threshold = float(check_scalar(warning_threshold, "warning_threshold", (int, float), min_val=0))
    check_scalar(verbose, "verbose", bool)
    targets = resolve_targets(target, model.output_names)
    return model, X, targets, batch_size, warning_threshold


def deeplift(
    model: Any,
    X: Any,
    *,
    target: Any = None,
    n_references: int = 20,
    random_state: int = 0,
    batch_size: int | None = None,
    warning_threshold: float = 1e-3,
    verbose: bool = False,
) -> AttributionResult:
    """DeepLIFT contributions (rescale rule) against dinucleotide-shuffled references.

    Each sequence is compared with ``n_references`` dinucleotide shuffles of itself
    (:func:`deeplift_references`). For each (sequence x, reference r) pair, Captum's DeepLift
    (rescale rule, run through hooks on the module) gives multipliers m of shape (4, L) in
    canonical order with

        sum_{a, l} (x - r)_{a,l} m_{a,l} = f(x) - f(r)     (summation-to-delta),

    checked pair by pair (the convergence delta). Hypothetical contributions
    h_{b,l} = sum_a (e_b - r)_{a,l} m_{a,l} = m_{b,l} - sum_a r_{a,l} m_{a,l} are averaged over
    the references; the attribution is h times the one-hot input (DeepSHAP-style averaging over
    references, Lundberg & Lee 2017; hypothetical scores as in TF-MoDISco).

    Runs on PyTorch models (torch backend) only. Beyond Captum's own rules it handles, for the
    length of the call and restored afterwards: element-wise activations Captum lacks (GELU,
    SiLU, ``nn.Threshold`` of Kipoi DeepSEA, ...), any parameter-free module that computes one
    element-wise function of its input (ExplaiNN's ``Exp``, modules calling ``torch.exp``),
    activations feeding straight into a max-pool (Captum issue #1104) and overlapping max-pool
    windows. The user's module is left exactly as it was (training flags, device, hooks,
    attributes), even on error. ONNX models are refused: their torch translation has no module
    per activation to attach the rules to. Keras models are refused (no TensorFlow route yet).

    Parameters
    ----------
    model : Predictor or nn.Module
        A model of the torch backend (anything :func:`interpkit.load` turns into one).
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (A, C, G, T; all-zero columns are N), L the model's length.
    target : None, int, str or sequence
        Outputs to explain: indices or names, or "0,2"; None explains every output.
        Default is None.
    n_references : int
        Dinucleotide shuffles per sequence, >= 1. Default is 20.
    random_state : int
        Seed of the shuffles, >= 0; sequence i's references depend only on it and i.
        Default is 0.
    batch_size : int or None
        Sequences per pass (each pass runs 2 x batch_size x n_references rows: the pairs'
        sequences and references). None chooses it: about 80 pairs per pass on CPU, within
        available memory. Results do not depend on it. Default is None.
    warning_threshold : float
        Largest convergence delta (in output units) accepted without an InterpkitWarning.
        Default is 1e-3.
    verbose : bool
        Show a progress bar over sequences. Default is False.

    Returns
    -------
    AttributionResult
        ``arrays``: ``one_hot`` (N, 4, L) float32; ``hypothetical`` (N, K, 4, L) float32,
        the mean over references of the hypothetical contributions; ``attributions``
        (N, K, 4, L) float32, ``hypothetical * one_hot``. Units: the model's output units
        (e.g. logits) per base. ``targets``: the K output indices. ``delta``: (N, K,
        n_references) float32, |f(x) - f(r) - sum((x - r) * m)| per pair, on the raw
        multipliers (before the hypothetical projection).

    Raises
    ------
    CapabilityError
        For a model that is not a PyTorch one (ONNX, Keras), a TorchScript module, an
        activation or max-pool module called more than once per forward pass, or a module
        that changes the batch size (in-model strand averaging: use one strand, e.g. Kipoi
        DeepSEA as ``arch="deepsea-veff"``).
    InputError, InputTypeError
        For X that is not one-hot (N, 4, L) of the model's length, an unknown target, or an
        option out of range.

    Warns
    -----
    InterpkitWarning
        When a convergence delta exceeds ``warning_threshold`` (with the largest one), and
        when the model calls nonlinear functions outside a module with a rule (``F.relu`` in
        ``forward``), which DeepLIFT then treats as linear.

    Notes
    -----
    Source: Shrikumar, Greenside & Kundaje (2017) "Learning important features through
    propagating activation differences", ICML, rescale rule (section 3.5.1, summation-to-delta
    eq. 1); DeepSHAP averaging over references (Lundberg & Lee 2017, NeurIPS); as in
    tangermeme's ``deep_lift_shap``, which it equals on the same references.
    """
    n_references = check_scalar(n_references, "n_references", int, min_val=1)
    random_state = check_scalar(random_state, "random_state", int, min_val=0)
    model, X, targets, batch_size, warning_threshold = _check_options(model, X, target, batch_size,
                                                                      warning_threshold, verbose)
    result = _deeplift(model, X, lambda start, xs: _references(xs, start, n_references, random_state),
                       n_references, targets, batch_size, warning_threshold, verbose)
    params = {"target": target, "n_references": n_references, "random_state": random_state,
              "batch_size": batch_size, "warning_threshold": warning_threshold}
    return _with_params(result, params)


def deeplift_from_references(
    model: Any,
    X: Any,
    references: Any,
    *,
    target: Any = None,
    batch_size: int | None = None,
    warning_threshold: float = 1e-3,
    verbose: bool = False,
) -> AttributionResult:
    """:func:`deeplift` with references of your own (Python only), e.g. GC-matched backgrounds.

    Parameters
    ----------
    model, X, target, batch_size, warning_threshold, verbose
        As :func:`deeplift`.
    references : ndarray of shape (N, R, 4, L), float32
        R one-hot references per sequence (all-zero columns allowed).

    Returns
    -------
    AttributionResult
        As :func:`deeplift`, with ``delta`` of shape (N, K, R).

    Raises
    ------
    CapabilityError, InputError, InputTypeError
        As :func:`deeplift`; InputError also for references of the wrong shape or not one-hot.
    """
    model, X, targets, batch_size, warning_threshold = _check_options(model, X, target, batch_size,
                                                                      warning_threshold, verbose)
    refs = np.asarray(references)
    if refs.ndim != 4 or refs.shape[0] != len(X) or refs.shape[2:] != X.shape[1:] or refs.shape[1] < 1:
        raise InputError(f"references has shape {refs.shape}, expected (N, R, 4, L) = ({len(X)}, R, "
                         f"{X.shape[1]}, {X.shape[2]}) with R >= 1 references per sequence.")
    refs = check_one_hot(refs.reshape(-1, *X.shape[1:]), "references").reshape(refs.shape)
    result = _deeplift(model, X, lambda start, xs: refs[start:start + len(xs)], refs.shape[1], targets,
                       batch_size, warning_threshold, verbose)
    params = {"target": target, "n_references": refs.shape[1], "references": "given",
              "batch_size": batch_size, "warning_threshold": warning_threshold}
    return _with_params(result, params)


def _with_params(result: AttributionResult, params: dict) -> AttributionResult:
    import dataclasses

    return dataclasses.replace(result, params={**params, **result.params})


def _deeplift(model: Any, X: np.ndarray, refs_of: Any, n_refs: int, targets: tuple[int, ...],
              batch_size: int | None, warning_threshold: float, verbose: bool) -> AttributionResult:
    import torch

    from interpkit_deeplift._torch import TorchDeepLift, check_torch_module

    module = model.module
    check_torch_module(module, model.name)
    spec = model.input_spec
    floats = [p.dtype for p in module.parameters() if p.is_floating_point()]
    dtype = floats[0] if floats else torch.float32

    def extra(rows: int) -> dict:
        return model.extra_kwargs(rows) if spec.extra_inputs else {}

    def to_model(A: np.ndarray) -> np.ndarray:
        return to_model_layout(A, spec.layout, model_alphabet=spec.model_alphabet, alphabet=spec.alphabet)

    engine = TorchDeepLift(module, device=model.device, dtype=dtype, reduce=model.reduce_output, extra=extra)
    inspection = engine.inspect(to_model(X[:3]))
    if inspection.batch_changers:
        raise CapabilityError(
            f"model {model.name} changes the batch size inside its forward pass ({'; '.join(inspection.batch_changers)}"
            "), e.g. by averaging strands in the model; DeepLIFT pairs each sequence with its reference along the "
            "batch and cannot run on it. Use the one-strand model (Kipoi DeepSEA: arch='deepsea-veff') and "
            "average strands yourself.")
    if inspection.reused:
        raise CapabilityError(
            f"model {model.name} calls a module with a DeepLIFT rule more than once per forward pass "
            f"({'; '.join(inspection.reused)}); the rescale rule needs one module instance per use. Define a "
            "separate module for each use (e.g. one nn.ReLU() per layer).")
    notes: list[str] = []
    if inspection.functional:
        notes.append(f"model {model.name} calls nonlinear functions outside any module with a DeepLIFT rule "
                     f"({'; '.join(inspection.functional[:5])}); DeepLIFT treats them as linear, so its "
                     "contributions there are gradient x difference, not the rescale rule. Use nn modules "
                     "(nn.ReLU(), ...) for activations; the convergence deltas show the size of the error.")
        warnings.warn(notes[-1], InterpkitWarning, stacklevel=3)
    if batch_size is None:
        need = inspection.bytes_per_row * 2 * n_refs * _GRADIENT_FACTOR
        if model.device.type == "cuda":
            batch_size = max(1, min(256, int(torch.cuda.mem_get_info(model.device)[0] * 0.2) // need))
        else:
            batch_size = auto_batch_size(need, maximum=max(1, _PAIRS_PER_PASS // n_refs))

    N, L = len(X), X.shape[2]
    K = len(targets)
    hyp = np.zeros((N, K, 4, L), dtype=np.float32)
    delta = np.zeros((N, K, n_refs), dtype=np.float32)
    with engine.session(inspection) as attribute:
        for sl in batch_slices(N, batch_size, verbose=verbose, desc="deeplift"):
            xs = X[sl]
            R = np.asarray(refs_of(sl.start, xs), dtype=np.float32)  # (b, n, 4, L)
            b = len(xs)
            xp = np.repeat(xs, n_refs, axis=0)
            rp = R.reshape(b * n_refs, 4, L)
            xt = torch.from_numpy(to_model(xp)).to(device=model.device, dtype=dtype)
            rt = torch.from_numpy(to_model(rp)).to(device=model.device, dtype=dtype)
            diff = (xp - rp).astype(np.float64)
            for k, t in enumerate(targets):
                m, yx, yr = attribute(xt, rt, t)
                m = from_model_layout(m.float().cpu().numpy(), spec.layout, model_alphabet=spec.model_alphabet,
                                      alphabet=spec.alphabet)
                out_diff = (yx - yr).double().cpu().numpy()
                delta[sl, k] = np.abs(out_diff - (diff * m).sum(axis=(1, 2))).reshape(b, n_refs)
                h = m - (rp * m).sum(axis=1, keepdims=True)
                hyp[sl, k] = h.reshape(b, n_refs, 4, L).mean(axis=1)
    attributions = hyp * X[:, None]
    worst = float(delta.max())
    if not math.isfinite(worst) or worst > warning_threshold:
        i, k, j = np.unravel_index(int(np.nanargmax(delta)) if math.isfinite(worst) else 0, delta.shape)
        notes.append(f"DeepLIFT convergence deltas reach {worst:.3g} (sequence {i}, output {targets[k]}, reference "
                     f"{j}), above warning_threshold={warning_threshold:g}: the contributions do not sum to "
                     "f(x) - f(reference). A nonlinearity without a DeepLIFT rule is the usual cause; explain "
                     "logits rather than probabilities, and check the model's activations.")
        warnings.warn(notes[-1], InterpkitWarning, stacklevel=3)
    provenance = {"engine": "captum.attr.DeepLift (rescale rule)",
                  "registered_activations": [t.__name__ for t in inspection.elementwise_types]}
    return AttributionResult("deeplift", arrays={"one_hot": X, "attributions": attributions, "hypothetical": hyp},
                             targets=targets, delta=delta, warnings=tuple(notes), provenance=provenance)
