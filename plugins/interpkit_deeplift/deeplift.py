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

from interpkit.adapt import auto_batch_size
from interpkit.errors import CapabilityError, InputError, InterpkitWarning
from interpkit.params import resolve_targets
from interpkit.predictor import Capability, Predictor, capabilities_of
from interpkit.progress import batch_slices
from interpkit.results import AttributionResult
from interpkit.sequences import dinucleotide_shuffle
from interpkit.validation import check_finite_outputs, check_one_hot, check_scalar

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


def deeplift_references(X: Any, *, n_references: int = 20, random_state: int = 0,
                         start_index: int = 0) -> np.ndarray:
    """The references :func:`deeplift` uses: dinucleotide shuffles of each sequence.

    Sequence i's shuffles come from :func:`interpkit.sequences.dinucleotide_shuffle` seeded with a
    seed derived from ``(random_state, start_index + i)`` only, so they do not depend on the batch
    size, the thread count or the other sequences.

    Parameters
    ----------
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (A, C, G, T; all-zero columns are N).
    n_references : int
        Shuffles per sequence, >= 1. Default is 20.
    random_state : int
        Seed, >= 0. Default is 0.
    start_index : int
        The index of ``X[0]`` in the whole run, >= 0 (see :func:`deeplift`). Default is 0.

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
    start_index = check_scalar(start_index, "start_index", int, min_val=0)
    return _references(X, start_index, n_references, random_state)


def _model_with_torch_function(model: Any) -> Predictor:
    """The model as a Predictor with a PyTorch form, or a CapabilityError saying why not and what would work."""
    if not isinstance(model, Predictor):
        from interpkit.api import load

        model = load(model)
    if Capability.TORCH_FUNCTION not in capabilities_of(model):
        reason = "it has no PyTorch form"
        try:
            with model.torch_function():
                pass
        except CapabilityError as exc:  # the backend's own reason (untranslatable layers, ops)
            reason = str(exc)
        raise CapabilityError(f"deeplift needs the model as a PyTorch function (the rescale rule rewrites its "
                              f"backward pass), and model {model.name} has none: {reason}")
    return model


def _check_options(model: Any, X: Any, target: Any, batch_size: Any, warning_threshold: Any,
                   verbose: Any) -> tuple[Any, np.ndarray, tuple[int, ...], int | None, float]:
    model = _model_with_torch_function(model)
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
    start_index: int = 0,
    batch_size: int | None = None,
    warning_threshold: float = 1e-3,
    verbose: bool = False,
) -> AttributionResult:
    """DeepLIFT contributions (rescale rule) against dinucleotide-shuffled references.

    Each sequence is compared with ``n_references`` dinucleotide shuffles of itself
    (:func:`deeplift_references`). For each (sequence x, reference r) pair, the rescale rule
    (:mod:`interpkit_deeplift.rescale`) gives multipliers m of shape (4, L) in canonical order
    with

        sum_{a, l} (x - r)_{a,l} m_{a,l} = f(x) - f(r)     (summation-to-delta),

    checked pair by pair (the convergence delta). Hypothetical contributions
    h_{b,l} = sum_a (e_b - r)_{a,l} m_{a,l} = m_{b,l} - sum_a r_{a,l} m_{a,l} are averaged over
    the references; the attribution is h times the one-hot input (DeepSHAP-style averaging over
    references, Lundberg & Lee 2017; hypothetical scores as in TF-MoDISco).

    Runs on every model with a PyTorch form (``Capability.TORCH_FUNCTION``): PyTorch modules,
    ONNX graphs and Keras models (through their op-by-op torch translations, whose outputs are
    checked against the model's own predictions on every batch) and the analytic PWM model.
    Every nonlinear torch call gets its rule wherever it is made: activation modules, functional
    calls (``F.relu``, ``torch.exp`` in ExplaiNN's ``Exp``), a module used twice, ``nn.Threshold``
    of Kipoi DeepSEA, max-pools fed straight by an activation (where Captum drops the rule, issue
    #1104) or with overlapping windows, max reductions, and in-model strand averaging (stacked
    batch rows). Each sequence's forward pass is shared by all its references, and parameters
    need no gradients: about half the work of Captum or tangermeme for equal results. The user's
    module is left exactly as it was, even on error.

    Parameters
    ----------
    model : Predictor or nn.Module
        A model with a PyTorch form (anything :func:`interpkit.load` turns into one).
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (A, C, G, T; all-zero columns are N), L the model's length.
    target : None, int, str or sequence
        Outputs to explain: indices or names, or "0,2"; None explains every output.
        Default is None.
    n_references : int
        Dinucleotide shuffles per sequence, >= 1. Default is 20.
    random_state : int
        Seed of the shuffles, >= 0; sequence i's references depend only on it and
        ``start_index + i``, never on the batch size, the thread count or the other sequences.
        Default is 0.
    start_index : int
        The index of ``X[0]`` in the whole run, >= 0: sequence i's references are seeded by
        ``(random_state, start_index + i)``, so a run split into chunks (rows a..b given with
        ``start_index=a``) equals the unsplit run. Default is 0.
    batch_size : int or None
        Sequences per pass (each pass runs batch_size sequences, then their batch_size x
        n_references references with the rules). None chooses it: about 80 references per pass
        on CPU, within available memory. Results do not depend on it (up to float32 rounding).
        Default is None.
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
        For a model without a PyTorch form, a TorchScript module (its ops are hidden), a
        translation that disagrees with the model's predictions, or a model that mixes the rows
        of its batch other than by stacking copies of it.
    InputError, InputTypeError
        For X that is not one-hot (N, 4, L) of the model's length, an unknown target, or an
        option out of range.

    Warns
    -----
    InterpkitWarning
        When a convergence delta exceeds ``warning_threshold`` (with the largest one), and
        when the model computes nonlinear functions without a DeepLIFT rule (softmax,
        normalisations, products of two input-dependent tensors), named in the message.

    Notes
    -----
    Source: Shrikumar, Greenside & Kundaje (2017) "Learning important features through
    propagating activation differences", ICML, rescale rule (section 3.5.1, summation-to-delta
    eq. 1); DeepSHAP averaging over references (Lundberg & Lee 2017, NeurIPS); max-pool routing
    and fallbacks as Captum's DeepLift and tangermeme's ``deep_lift_shap``, which it equals on
    the same references (tests/test_deeplift.py).
    """
    n_references = check_scalar(n_references, "n_references", int, min_val=1)
    random_state = check_scalar(random_state, "random_state", int, min_val=0)
    start_index = check_scalar(start_index, "start_index", int, min_val=0)
    model, X, targets, batch_size, warning_threshold = _check_options(model, X, target, batch_size,
                                                                      warning_threshold, verbose)
    result = _deeplift(model, X, lambda start, xs: _references(xs, start_index + start, n_references, random_state),
                       n_references, targets, batch_size, warning_threshold, verbose, first=start_index)
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


def _deeplift(model: Predictor, X: np.ndarray, refs_of: Any, n_refs: int, targets: tuple[int, ...],
              batch_size: int | None, warning_threshold: float, verbose: bool, first: int = 0) -> AttributionResult:
    import torch

    from interpkit_deeplift.rescale import bytes_per_row, check_pairing, paired_graph

    N, L = len(X), X.shape[2]
    K = len(targets)
    hyp = np.zeros((N, K, 4, L), dtype=np.float32)
    delta = np.zeros((N, K, n_refs), dtype=np.float32)
    y_pred: list[np.ndarray] = []  # f(x) per batch, checked finite
    unruled: list[str] = []
    notes: list[str] = []
    with model.torch_function() as fn:
        if not fn.traceable:
            raise CapabilityError(
                f"model {model.name} is compiled (TorchScript): DeepLIFT must see each of its nonlinear ops to give "
                "them their rules. Load the Python nn.Module (its class and state_dict) with the torch backend.")
        if fn.dtype not in (torch.float32, torch.float64):
            raise CapabilityError(
                f"model {model.name} computes in {str(fn.dtype).removeprefix('torch.')}, where DeepLIFT's secants "
                "(f(x) - f(r)) / (x - r) are rounding noise; convert it to float32 first (module.float()).")

        def tensor(A: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(A)).to(device=fn.device, dtype=fn.dtype)

        probe = X[:2] if len(X) > 1 else np.concatenate([X, X[:, :, ::-1]])
        check_pairing(fn.forward, tensor(probe))
        if batch_size is None:
            need = bytes_per_row(fn.forward, tensor(X[:1])) * n_refs * _GRADIENT_FACTOR
            if fn.device.type == "cuda":
                batch_size = max(1, min(256, int(torch.cuda.mem_get_info(fn.device)[0] * 0.2) // need))
            else:
                batch_size = auto_batch_size(need, maximum=max(1, _PAIRS_PER_PASS // n_refs))
        for sl in batch_slices(N, batch_size, verbose=verbose, desc="deeplift"):
            xs = X[sl]
            b = len(xs)
            rp = np.asarray(refs_of(sl.start, xs), dtype=np.float32).reshape(b * n_refs, 4, L)
            graph = paired_graph(fn.forward, tensor(xs), tensor(rp))
            unruled.extend(graph.unruled)
            y_seq = graph.y_seq.double().cpu().numpy()
            y_pred.append(y_seq)
            if fn.source == "translation":
                _check_translation(model, xs, y_seq, targets)
            y_diff = np.repeat(y_seq, n_refs, axis=0) - graph.y_ref.double().cpu().numpy()  # (P, T)
            diff = np.repeat(xs, n_refs, axis=0).astype(np.float64) - rp
            for k, t in enumerate(targets):  # one target at a time: memory does not grow with K
                m = graph.multipliers(t, last=k == K - 1).double().cpu().numpy()  # (P, 4, L)
                delta[sl, k] = np.abs(y_diff[:, t] - (diff * m).sum(axis=(1, 2))).reshape(b, n_refs)
                h = m - (rp * m).sum(axis=1, keepdims=True)
                hyp[sl, k] = h.reshape(b, n_refs, 4, L).mean(axis=1)
    check_finite_outputs(np.concatenate(y_pred), model.name, model.output_names)
    if unruled:
        names = ", ".join(sorted(set(unruled)))
        notes.append(f"model {model.name} computes nonlinear functions without a DeepLIFT rule ({names}); there "
                     "the multipliers are plain gradients (at the reference), not the rescale rule. The convergence "
                     "deltas show the size of the error; explain logits rather than probabilities where softmax "
                     "is the cause.")
        warnings.warn(notes[-1], InterpkitWarning, stacklevel=3)
    attributions = hyp * X[:, None]
    worst = float(delta.max())
    if not math.isfinite(worst) or worst > warning_threshold:
        i, k, j = np.unravel_index(int(np.nanargmax(delta)) if math.isfinite(worst) else 0, delta.shape)
        notes.append(f"DeepLIFT convergence deltas reach {worst:.3g} (sequence {first + i}, output {targets[k]}, reference "
                     f"{j}), above warning_threshold={warning_threshold:g}: the contributions do not sum to "
                     "f(x) - f(reference). A nonlinearity without a DeepLIFT rule is the usual cause; explain "
                     "logits rather than probabilities, and check the model's activations.")
        warnings.warn(notes[-1], InterpkitWarning, stacklevel=3)
    provenance = {"engine": "interpkit rescale rule (shared forward pass; op interception)",
                  "torch_function": fn.source, "unruled_ops": sorted(set(unruled))}
    return AttributionResult("deeplift", arrays={"one_hot": X, "attributions": attributions, "hypothetical": hyp},
                             targets=targets, delta=delta, warnings=tuple(notes), provenance=provenance)


#: Largest disagreement between a translation and the model, relative to the output scale.
_TRANSLATION_TOLERANCE = 1e-4


def _check_translation(model: Predictor, xs: np.ndarray, y_torch: np.ndarray, targets: tuple[int, ...]) -> None:
    """Refuse when a backend's torch translation does not reproduce the model's predictions on ``xs``."""
    y = model.predict(xs).astype(np.float64)
    cols = list(targets)
    scale = max(float(np.abs(y[:, cols]).max()), 1e-6)
    worst = float(np.abs(y_torch[:, cols] - y[:, cols]).max()) / scale
    if not worst <= _TRANSLATION_TOLERANCE:
        raise CapabilityError(
            f"the PyTorch translation of model {model.name} differs from the model's own predictions by {worst:.2g} "
            f"(relative to the output scale, above {_TRANSLATION_TOLERANCE:g}); DeepLIFT on it would explain another "
            "function. Use ism or saliency on this model, and report the layer or op at fault.")
