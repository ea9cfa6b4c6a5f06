"""The ``saliency`` method: closed forms on the PWM model, Captum on torch, twins, refusal without gradients."""

from __future__ import annotations

import numpy as np
import pytest
import twins
from interpkit_numpy.pwm_scan import PWMScanModel
from interpkit_saliency.saliency import saliency
from torch_models import basset_like
from toy_models import SumModel, window_scores

import interpkit
from interpkit import CapabilityError, InputError, InputTypeError
from interpkit.testing import METHOD_CHECKS, check_id, random_one_hot

RNG = np.random.default_rng(21)
PWMS = [RNG.normal(size=(4, 5)), RNG.normal(size=(4, 3))]
BASES = "ACGT"


def _decode(x: np.ndarray) -> str:
    return "".join(BASES[int(c.argmax())] if c.any() else "N" for c in x.T)


def test_saliency_equals_the_closed_form_on_the_pwm_models():
    X = random_one_hot(3, 16, random_state=1)
    X[1, :, 7] = 0  # an N column
    summed = saliency(PWMScanModel(PWMS, ["m5", "m3"], reduction="sum"), X)
    best = saliency(PWMScanModel(PWMS, ["m5", "m3"], reduction="max"), X)
    assert summed.arrays["hypothetical"].shape == (3, 2, 4, 16) and summed.arrays["hypothetical"].dtype == np.float32
    for k, pwm in enumerate(PWMS):
        w = pwm.shape[1]
        for n in range(3):
            # "sum": the PWM added over every window; "max": the PWM at the first best window.
            expected_sum = np.zeros((4, 16))
            for i in range(16 - w + 1):
                expected_sum[:, i:i + w] += pwm
            scores = window_scores(_decode(X[n]), pwm)
            expected_max = np.zeros((4, 16))
            i = int(np.argmax(scores))
            expected_max[:, i:i + w] = pwm
            np.testing.assert_allclose(summed.arrays["hypothetical"][n, k], expected_sum, atol=1e-5)
            np.testing.assert_allclose(best.arrays["hypothetical"][n, k], expected_max, atol=1e-5)
            np.testing.assert_allclose(summed.arrays["attributions"][n, k], expected_sum * X[n], atol=1e-5)
    assert not summed.arrays["attributions"][1, :, :, 7].any()


def test_corrected_saliency_removes_the_mean_over_bases():
    model = PWMScanModel(PWMS, ["m5", "m3"], reduction="sum")
    X = random_one_hot(2, 12, random_state=2)
    raw = saliency(model, X, target=1).arrays["hypothetical"]
    corrected = saliency(model, X, target="m3", correction=True)
    assert corrected.targets == (1,)
    np.testing.assert_allclose(corrected.arrays["hypothetical"], raw - raw.mean(axis=2, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(corrected.arrays["hypothetical"].sum(axis=2), 0, atol=1e-5)
    # Interior positions are covered by every column of the PWM: the corrected gradient is the
    # PWM column sums, each centred on its own mean (Majdandzic et al. 2023).
    pwm = PWMS[1]
    centred = pwm.sum(axis=1) - pwm.sum(axis=1).mean()
    np.testing.assert_allclose(corrected.arrays["hypothetical"][0, 0, :, 5], centred, atol=1e-5)


def test_saliency_equals_captum_on_a_basset_like_model():
    import torch
    from captum.attr import InputXGradient, Saliency

    module = basset_like("NCL").eval()
    X = random_one_hot(4, 60, random_state=3)
    result = saliency(interpkit.load(module), X, batch_size=3)
    x = torch.from_numpy(X)
    for k in range(3):
        grad = Saliency(module).attribute(x, target=k, abs=False).numpy()
        gxi = InputXGradient(module).attribute(x, target=k).detach().numpy()
        scale = np.abs(grad).max()
        assert scale > 1e-3
        assert np.abs(result.arrays["hypothetical"][:, k] - grad).max() <= 1e-5 * scale
        assert np.abs(result.arrays["attributions"][:, k] - gxi).max() <= 1e-5 * scale


@pytest.fixture(scope="module")
def twin_backends(tmp_path_factory):
    module = twins.torch_twin()
    path = twins.onnx_twin(module, tmp_path_factory.mktemp("twins") / "twin.onnx")
    return {"torch": interpkit.load(module), "keras": interpkit.load(twins.keras_twin(module)),
            "onnx": interpkit.load(path)}


def test_saliency_agrees_across_twin_backends(twin_backends):
    X = random_one_hot(5, twins.LENGTH, random_state=4)
    results = {name: saliency(m, X, correction=True) for name, m in twin_backends.items()}
    ref = results["torch"].arrays
    for name in ("keras", "onnx"):
        for array in ("hypothetical", "attributions"):
            scale = np.abs(ref[array]).max()
            assert scale > 1e-3
            assert np.abs(results[name].arrays[array] - ref[array]).max() <= 1e-4 * scale, (name, array)


def test_saliency_refuses_a_model_without_gradients():
    X = random_one_hot(2, 8, random_state=5)
    with pytest.raises(CapabilityError, match="gradient"):
        interpkit.run("saliency", SumModel(), X)
    with pytest.raises(CapabilityError, match="gradient capability"):
        saliency(SumModel(), X)


@pytest.mark.parametrize("check", METHOD_CHECKS, ids=check_id)
def test_method_checks(check):
    check("saliency", PWMScanModel(PWMS, ["m5", "m3"]), random_one_hot(3, 12, random_state=6))


def test_saliency_raises():
    model = PWMScanModel(PWMS, ["m5", "m3"])
    X = random_one_hot(2, 10, random_state=7)
    bad = {
        "correction not a bool": (InputTypeError, {"correction": 1}),
        "batch_size 0": (InputError, {"batch_size": 0}),
        "batch_size float": (InputTypeError, {"batch_size": 2.0}),
        "target out of range": (InputError, {"target": 5}),
        "unknown target name": (InputError, {"target": "m4"}),
    }
    for what, (error, options) in bad.items():
        with pytest.raises(error):
            saliency(model, X, **options)
            pytest.fail(what)
    with pytest.raises(InputError, match="swap axes"):
        saliency(model, X.transpose(0, 2, 1))
    with pytest.raises(InputError, match="one-hot"):
        saliency(model, X * 0.5)
