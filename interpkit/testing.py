"""Conformance checks for plugin authors (the role of scikit-learn's ``check_estimator``).

Each check is a plain function ``check(model, X)`` (or ``check(method, model, X)``)
that raises ``AssertionError`` with a message naming the broken line of the contract.
Run them all with :func:`check_predictor` / :func:`check_method`, or one pytest id per
check::

    import pytest
    from interpkit.testing import PREDICTOR_CHECKS, check_id

    @pytest.mark.parametrize("check", PREDICTOR_CHECKS, ids=check_id)
    def test_my_backend(check):
        check(my_model, X)

``X`` is a small batch of one-hot sequences the model accepts, shape (N, 4, L) with
N >= 3; :func:`random_one_hot` makes one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from interpkit.errors import CapabilityError, InputError, InterpkitError
from interpkit.predictor import Capability, InputSpec, Predictor, capabilities_of
from interpkit.probe import LayerInfo, LayerProbe, layer_table, receptive_fields
from interpkit.results import Result

__all__ = [
    "METHOD_CHECKS",
    "PREDICTOR_CHECKS",
    "PROBE_CHECKS",
    "check_id",
    "check_method",
    "check_predictor",
    "check_torch_function",
    "random_one_hot",
]


def random_one_hot(n: int, length: int, *, random_state: int = 0) -> np.ndarray:
    """Uniform random one-hot DNA for conformance tests.

    Parameters
    ----------
    n : int
        Number of sequences.
    length : int
        Sequence length in bp.
    random_state : int
        Seed. Default is 0.

    Returns
    -------
    X : ndarray of shape (n, 4, length), float32
        Each base drawn uniformly from A, C, G, T; no N columns.
    """
    rng = np.random.default_rng(random_state)
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))].transpose(0, 2, 1).copy()


def check_id(check: Callable) -> str:
    """pytest id of a check: its function name without the ``check_`` prefix."""
    return check.__name__.removeprefix("check_")


def _fail(message: str) -> None:
    raise AssertionError(message)


# -- Predictor ------------------------------------------------------------------
def check_input_spec(model: Predictor, X: np.ndarray) -> None:
    """``input_spec`` is an InputSpec and X fits it; ``output_names`` are distinct strings."""
    if not isinstance(model.input_spec, InputSpec):
        _fail(f"input_spec is {type(model.input_spec).__name__}, not InputSpec")
    names = list(model.output_names)
    if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        _fail(f"output_names must be distinct non-empty strings, got {names!r}")
    length = model.input_spec.length
    if length is not None and X.shape[2] != length:
        _fail(f"the test batch has length {X.shape[2]} but input_spec.length is {length}")


def check_predict_shape(model: Predictor, X: np.ndarray) -> None:
    """``predict`` returns a finite float32 array of shape (N, T)."""
    y = model.predict(X)
    expected = (len(X), len(model.output_names))
    if not isinstance(y, np.ndarray) or y.shape != expected or y.dtype != np.float32:
        _fail(f"predict returned {type(y).__name__} {getattr(y, 'shape', '')} {getattr(y, 'dtype', '')}; "
              f"expected float32 ndarray of shape {expected}")
    if not np.isfinite(y).all():
        _fail("predict returned NaN or Inf")


def check_predict_batch_invariance(model: Predictor, X: np.ndarray) -> None:
    """Batch size 1 and one batch of N give the same predictions (atol 1e-5 relative to scale)."""
    a, b = model.predict(X, batch_size=1), model.predict(X, batch_size=len(X))
    if not np.allclose(a, b, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(b).max()))):
        _fail(f"predictions depend on batch size (max diff {np.abs(a - b).max():.3g})")


def check_predict_deterministic(model: Predictor, X: np.ndarray) -> None:
    """Two calls give identical predictions."""
    if not np.array_equal(model.predict(X), model.predict(X)):
        _fail("predict is not deterministic")


def check_input_not_modified(model: Predictor, X: np.ndarray) -> None:
    """predict (and gradient) leave the caller's array unchanged."""
    before = X.copy()
    model.predict(X)
    if Capability.GRADIENT in capabilities_of(model):
        model.gradient(X, 0)
    if not np.array_equal(before, X):
        _fail("the input array was modified in place")


def check_rejects_bad_input(model: Predictor, X: np.ndarray) -> None:
    """Input in (N, L, 4) layout, a 2-D array and non-one-hot values raise InputError."""
    bad_inputs = {
        "(N, L, 4) layout": X.transpose(0, 2, 1),
        "a single unbatched sequence": X[0],
        "non-one-hot values": X * 0.5,
    }
    for what, bad in bad_inputs.items():
        if what == "(N, L, 4) layout" and bad.shape[1] == 4:
            continue
        try:
            model.predict(bad)
        except InputError:
            continue
        except Exception as exc:  # noqa: BLE001
            _fail(f"predict on {what} raised {type(exc).__name__} instead of InputError: {exc}")
        _fail(f"predict accepted {what} without an InputError")


def check_gradient(model: Predictor, X: np.ndarray) -> None:
    """With GRADIENT: float32 of shape (N, 4, L), finite, the same for batch size 1 and N.

    Gradient values themselves are checked against closed forms or twins in each
    backend's own tests: finite differences are unreliable at the exact ties that
    one-hot inputs create in max-pools.
    """
    if Capability.GRADIENT not in capabilities_of(model):
        try:
            model.gradient(X, 0)
        except CapabilityError:
            return
        _fail("gradient works but the model does not declare the GRADIENT capability")
    g = model.gradient(X, 0)
    if not isinstance(g, np.ndarray) or g.shape != X.shape or g.dtype != np.float32:
        _fail(f"gradient returned {getattr(g, 'shape', type(g))} {getattr(g, 'dtype', '')}; "
              f"expected float32 of shape {X.shape}")
    if not np.isfinite(g).all():
        _fail("gradient returned NaN or Inf")
    g1 = model.gradient(X, 0, batch_size=1)
    if not np.allclose(g, g1, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(g).max()))):
        _fail("gradients depend on batch size")


def check_target_out_of_range(model: Predictor, X: np.ndarray) -> None:
    """gradient with a target index >= T raises InputError (only checked with GRADIENT)."""
    if Capability.GRADIENT not in capabilities_of(model):
        return
    try:
        model.gradient(X, len(model.output_names))
    except InputError:
        return
    except Exception as exc:  # noqa: BLE001
        _fail(f"an out-of-range target raised {type(exc).__name__} instead of InputError")
    _fail("an out-of-range target was accepted")


def check_torch_function(model: Predictor, X: np.ndarray) -> None:
    """With TORCH_FUNCTION: ``forward`` of canonical X equals predict (1e-4 of the output scale), gradients
    reach X, parameters need no gradients inside the block, and the model predicts the same after it."""
    if Capability.TORCH_FUNCTION not in capabilities_of(model):
        return
    import torch  # a backend with TORCH_FUNCTION needs torch

    expected = model.predict(X)
    with model.torch_function() as fn:
        x = torch.from_numpy(X).to(device=fn.device, dtype=fn.dtype).requires_grad_(True)
        y = fn.forward(x)
        if tuple(y.shape) != expected.shape:
            _fail(f"torch_function forward returned shape {tuple(y.shape)}; predict gives {expected.shape}")
        grad = torch.autograd.grad(y.sum(), x, allow_unused=True)[0] if y.requires_grad else None
        if grad is None or not bool(grad.abs().sum() > 0):
            _fail("torch_function forward is not differentiable with respect to its input (no gradient reaches x)")
        with torch.enable_grad():
            if fn.forward(x.detach()).requires_grad:
                _fail("torch_function forward's output requires grad for an input that does not (parameters "
                      "must not require gradients inside the block)")
        got = y.detach().double().cpu().numpy()
    scale = max(1.0, float(np.abs(expected).max()))
    if not np.allclose(got, expected, rtol=0, atol=1e-4 * scale):
        _fail(f"torch_function forward differs from predict by {np.abs(got - expected).max():.3g}")
    if not np.array_equal(model.predict(X), expected):
        _fail("predictions changed after the torch_function block")


PREDICTOR_CHECKS: list[Callable[[Predictor, np.ndarray], None]] = [
    check_input_spec,
    check_predict_shape,
    check_predict_batch_invariance,
    check_predict_deterministic,
    check_input_not_modified,
    check_rejects_bad_input,
    check_gradient,
    check_target_out_of_range,
    check_torch_function,
]


# -- LayerProbe -----------------------------------------------------------------
def check_layer_table(model: LayerProbe, X: np.ndarray) -> None:
    """``layers()`` is a non-empty list of LayerInfo with unique names and computable geometry."""
    layers = list(model.layers())
    if not layers or not all(isinstance(info, LayerInfo) for info in layers):
        _fail("layers() must return a non-empty list of LayerInfo")
    names = [info.name for info in layers]
    if len(set(names)) != len(names):
        _fail(f"layer names are not unique: {names}")
    receptive_fields(layers)
    layer_table(layers)


def check_activations(model: LayerProbe, X: np.ndarray) -> None:
    """Every layer's activations are float32 (N, C, L') with C = channels when declared."""
    for index, info in enumerate(model.layers()):
        for ref in (info.name, index):
            A = model.activations(X, ref)
            if not isinstance(A, np.ndarray) or A.ndim != 3 or len(A) != len(X) or A.dtype != np.float32:
                _fail(f"activations of {ref!r}: got {getattr(A, 'shape', type(A))} {getattr(A, 'dtype', '')}; "
                      f"expected float32 (N={len(X)}, C, L')")
            if info.channels is not None and A.shape[1] != info.channels:
                _fail(f"activations of {info.name!r} have {A.shape[1]} channels, the table says {info.channels}")


def check_unknown_layer(model: LayerProbe, X: np.ndarray) -> None:
    """An unknown layer name raises InputError."""
    try:
        model.activations(X, "no-such-layer-xyz")
    except InputError:
        return
    except Exception as exc:  # noqa: BLE001
        _fail(f"an unknown layer raised {type(exc).__name__} instead of InputError")
    _fail("an unknown layer name was accepted")


def check_neuron_matches_activations(model: LayerProbe, X: np.ndarray) -> None:
    """With NEURON: ``neuron`` on a window equals the activation at that window's output position.

    Every convolution is checked at its first output position whose receptive field lies
    inside the input (:meth:`~interpkit.probe.Geometry.first_inside`), padded layers included;
    a model with NEURON must have at least one such convolution within X's length.
    """
    if Capability.NEURON not in capabilities_of(model):
        return
    layers = list(model.layers())
    checked = 0
    for info, geom in zip(layers, receptive_fields(layers)):
        if info.kind != "conv" or geom.is_global:
            continue
        position, begin = geom.first_inside()
        end = begin + geom.receptive_field
        if end > X.shape[2]:
            continue
        expected = model.activations(X, info.name)[:, 0, position]
        got = model.neuron(info.name, 0, X[:, :, begin:end])
        if not np.allclose(got, expected, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(expected).max()))):
            _fail(f"neuron({info.name!r}, 0, X[:, :, {begin}:{end}]) != activations at position {position}")
        if Capability.GRADIENT in capabilities_of(model):
            grad = model.neuron_gradient(info.name, 0, X[:, :, begin:end])
            if grad.shape != (len(X), 4, end - begin):
                _fail(f"neuron_gradient has shape {grad.shape}, expected {(len(X), 4, end - begin)}")
        checked += 1
    if not checked:
        _fail(f"no convolution's receptive field fits in the {X.shape[2]}-bp test input; use longer sequences")


def check_capabilities_honest(model: Any, X: np.ndarray) -> None:
    """Every declared capability works without raising CapabilityError."""
    caps = capabilities_of(model)
    calls: dict[Capability, Callable[[], Any]] = {
        Capability.PREDICT: lambda: model.predict(X),
        Capability.GRADIENT: lambda: model.gradient(X, 0),
        Capability.LAYERS: lambda: model.activations(X, 0),
    }
    for cap, call in calls.items():
        if cap in caps:
            try:
                call()
            except CapabilityError as exc:
                _fail(f"declares {cap} but raised CapabilityError: {exc}")


PROBE_CHECKS: list[Callable[[Any, np.ndarray], None]] = [
    check_layer_table,
    check_activations,
    check_unknown_layer,
    check_neuron_matches_activations,
    check_capabilities_honest,
]


def check_predictor(model: Predictor, X: np.ndarray) -> None:
    """Run every Predictor check, and the LayerProbe checks when the model has LAYERS."""
    for check in PREDICTOR_CHECKS:
        check(model, X)
    if Capability.LAYERS in capabilities_of(model):
        for check in PROBE_CHECKS:
            check(model, X)


# -- Methods --------------------------------------------------------------------
def _run(method: str, model: Any, X: np.ndarray, registry: Any, **options: Any) -> Result:
    from interpkit.api import run

    return run(method, model, X, registry=registry, **options)


def check_method_result(method: str, model: Any, X: np.ndarray, registry: Any = None) -> None:
    """The method returns a Result whose arrays are ndarrays and whose params are filled in."""
    result = _run(method, model, X, registry)
    if not isinstance(result, Result):
        _fail(f"{method} returned {type(result).__name__}, not Result")
    if not result.arrays and not result.tables and not result.motifs:
        _fail(f"{method} returned an empty Result")
    if result.provenance.get("interpkit") is None:
        _fail("provenance lacks the interpkit version")


def check_method_deterministic(method: str, model: Any, X: np.ndarray, registry: Any = None) -> None:
    """The same inputs and seed give identical arrays."""
    a, b = _run(method, model, X, registry), _run(method, model, X, registry)
    for name in a.arrays:
        if not np.array_equal(a.arrays[name], b.arrays[name], equal_nan=True):
            _fail(f"{method}: array {name!r} differs between two identical runs")


def check_method_batch_invariance(method: str, model: Any, X: np.ndarray, registry: Any = None) -> None:
    """With a ``batch_size`` option: batch size 1 and N give the same arrays."""
    from interpkit.plugins import get_registry

    spec = (registry or get_registry()).methods[method]
    if "batch_size" not in {p.name for p in spec.params}:
        return
    a = _run(method, model, X, registry, batch_size=1)
    b = _run(method, model, X, registry, batch_size=len(X))
    for name in a.arrays:
        if not np.allclose(a.arrays[name], b.arrays[name], rtol=1e-5, atol=1e-6):
            _fail(f"{method}: array {name!r} depends on batch_size")


def check_method_writes(method: str, model: Any, X: np.ndarray, registry: Any = None) -> None:
    """``Result.write`` creates every file it lists, and refuses to overwrite them."""
    result = _run(method, model, X, registry)
    with tempfile.TemporaryDirectory() as tmp:
        files = result.write(tmp)
        missing = [str(p) for p in files if not Path(p).is_file()]
        if missing:
            _fail(f"{method}: write() listed files it did not create: {missing}")
        try:
            result.write(tmp)
        except InterpkitError:
            return
        _fail(f"{method}: a second write() overwrote existing files without overwrite=True")


def check_method_rejects_unknown_option(method: str, model: Any, X: np.ndarray, registry: Any = None) -> None:
    """An undeclared option raises InputError before any work."""
    try:
        _run(method, model, X, registry, no_such_option_xyz=1)
    except InputError:
        return
    _fail(f"{method} accepted an undeclared option")


METHOD_CHECKS: list[Callable[..., None]] = [
    check_method_result,
    check_method_deterministic,
    check_method_batch_invariance,
    check_method_writes,
    check_method_rejects_unknown_option,
]


def check_method(method: str, model: Any, X: np.ndarray, registry: Any = None) -> None:
    """Run every method check for ``method`` on ``model`` and ``X``."""
    for check in METHOD_CHECKS:
        check(method, model, X, registry)
