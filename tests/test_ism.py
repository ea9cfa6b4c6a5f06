"""The ``ism`` method: closed forms on the PWM model, tangermeme on torch models, twins, CLI."""

from __future__ import annotations

import time

import numpy as np
import pytest
import twins
from interpkit_ism.ism import ism
from interpkit_numpy.pwm_scan import PWMScanModel
from torch_models import basset_like
from toy_models import BASES, SumModel, window_scores

import interpkit
from interpkit import InputError, InputTypeError
from interpkit.cli import main
from interpkit.testing import METHOD_CHECKS, check_id, random_one_hot

RNG = np.random.default_rng(11)
PWMS = [RNG.normal(size=(4, 5)), RNG.normal(size=(4, 3))]


def _with_n(X: np.ndarray) -> np.ndarray:
    X = X.copy()
    X[0, :, 4] = 0  # an all-zero (N) column
    return X


def _decode(x: np.ndarray) -> str:
    return "".join(BASES[int(c.argmax())] if c.any() else "N" for c in x.T)


def _sum_oracle(pwm: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Closed form for reduction "sum": the change summed over the windows covering p, by plain loops."""
    w, length = pwm.shape[1], x.shape[1]
    out = np.zeros((4, length))
    for p in range(length):
        observed = [b for b in range(4) if x[b, p] == 1]
        for new in range(4):
            if observed == [new]:
                continue
            for i in range(max(0, p - w + 1), min(p, length - w) + 1):
                out[new, p] += pwm[new, p - i] - (pwm[observed[0], p - i] if observed else 0.0)
    return out


def test_ism_equals_the_closed_form_on_the_sum_pwm_model():
    model = PWMScanModel(PWMS, ["m5", "m3"], reduction="sum")
    X = _with_n(random_one_hot(3, 17, random_state=2))
    result = ism(model, X)
    deltas = result.arrays["deltas"]
    assert deltas.shape == (3, 2, 4, 17) and deltas.dtype == np.float32
    assert result.arrays["l2"].shape == (3, 2, 17) and result.targets == (0, 1)
    for n in range(3):
        for k, pwm in enumerate(PWMS):
            np.testing.assert_allclose(deltas[n, k], _sum_oracle(pwm, X[n]), atol=1e-5)
    # Identity edits are 0; the N column has 4 real edits and no projection.
    assert np.all(deltas[X[:, None].repeat(2, 1) == 1] == 0)
    assert np.all(deltas[0, :, :, 4] != 0) and np.all(result.arrays["attributions"][0, :, :, 4] == 0)
    hyp = deltas - deltas.mean(axis=2, keepdims=True)
    np.testing.assert_allclose(result.arrays["hypothetical"], hyp, atol=1e-6)
    np.testing.assert_allclose(result.arrays["attributions"], hyp * X[:, None], atol=1e-6)
    np.testing.assert_allclose(result.arrays["l2"], np.sqrt((deltas**2).sum(axis=2)), rtol=1e-6)
    np.testing.assert_allclose(result.arrays["reference"], model.predict(X), rtol=1e-6)


def test_ism_equals_brute_force_rescoring_on_the_max_pwm_model():
    model = PWMScanModel(PWMS[:1], ["m5"], reduction="max")
    X = _with_n(random_one_hot(2, 14, random_state=3))
    deltas = ism(model, X).arrays["deltas"][:, 0]
    for n in range(2):
        seq = _decode(X[n])
        ref = max(window_scores(seq, PWMS[0]))
        for p in range(len(seq)):
            for b, base in enumerate(BASES):
                mutated = seq[:p] + base + seq[p + 1:]
                assert deltas[n, b, p] == pytest.approx(max(window_scores(mutated, PWMS[0])) - ref, abs=1e-5)


def test_window_equals_full_ism_restricted_and_batch_size_does_not_matter():
    model = PWMScanModel(PWMS, ["m5", "m3"], reduction="max")
    X = _with_n(random_one_hot(4, 20, random_state=4))
    full = ism(model, X)
    part = ism(model, X, start=3, end=11, batch_size=5)
    for name in ("deltas", "hypothetical", "attributions", "l2"):
        inside, outside = part.arrays[name][..., 3:11], np.delete(part.arrays[name], np.s_[3:11], axis=-1)
        np.testing.assert_array_equal(inside, full.arrays[name][..., 3:11], err_msg=name)
        assert not outside.any(), name
    for batch_size in (1, 7, 1000):
        np.testing.assert_array_equal(ism(model, X, batch_size=batch_size).arrays["deltas"], full.arrays["deltas"])
    one = ism(model, X, target="m3")
    assert one.targets == (1,)
    np.testing.assert_array_equal(one.arrays["deltas"][:, 0], full.arrays["deltas"][:, 1])


def _tangermeme(module, X, target, **kw):
    import torch
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis

    x = torch.from_numpy(X)
    hyp = saturation_mutagenesis(module, x, target=target, hypothetical=True, device="cpu", fast=False, **kw)
    y0, y_hat = saturation_mutagenesis(module, x, raw_outputs=True, device="cpu", fast=False, **kw)
    return hyp.numpy(), (y_hat[..., target] - y0[:, None, None, target]).numpy()


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_ism_equals_tangermeme_on_a_basset_like_model():
    module = basset_like("NCL").eval()
    model = interpkit.load(module)
    X = _with_n(random_one_hot(3, 60, random_state=5))
    result = ism(model, X, target="0,2", batch_size=64)
    for k, t in enumerate((0, 2)):
        hyp, deltas = _tangermeme(module, X, t)
        assert _rel(result.arrays["hypothetical"][:, k], hyp) <= 1e-5
        assert _rel(result.arrays["deltas"][:, k], deltas) <= 1e-5
    # A window: tangermeme returns the window only.
    part = ism(model, X, target=1, start=10, end=25)
    hyp, _ = _tangermeme(module, X, 1, start=10, end=25)
    assert _rel(part.arrays["hypothetical"][:, 0, :, 10:25], hyp) <= 1e-5


def test_ism_equals_tangermeme_on_the_real_explainn(shared):
    model = interpkit.load(shared / "checkpoints" / "explainn_tf_binding" / "model_epoch_best_4.pth", arch="explainn")
    assert model.input_spec.layout == "NCL"  # tangermeme is fed the module's own (N, 4, L) input
    X = random_one_hot(4, 200, random_state=6)
    tic = time.perf_counter()
    result = ism(model, X, target=2, batch_size=256)
    ours = time.perf_counter() - tic
    tic = time.perf_counter()
    hyp, deltas = _tangermeme(model.module, X, 2, batch_size=256)
    theirs = (time.perf_counter() - tic) / 2  # _tangermeme runs saturation_mutagenesis twice
    assert _rel(result.arrays["hypothetical"][:, 0], hyp) <= 1e-5
    assert _rel(result.arrays["deltas"][:, 0], deltas) <= 1e-5
    variants = 4 * 3 * 200
    print(f"\nISM on ExplaiNN, {variants} variants: interpkit {variants / ours:,.0f} variants/s, "
          f"tangermeme {variants / theirs:,.0f} variants/s (fast=False, batch 256)")


@pytest.fixture(scope="module")
def twin_backends(tmp_path_factory):
    module = twins.torch_twin()
    path = twins.onnx_twin(module, tmp_path_factory.mktemp("twins") / "twin.onnx")
    return {"torch": interpkit.load(module), "keras": interpkit.load(twins.keras_twin(module)),
            "onnx": interpkit.load(path)}


def test_ism_agrees_across_twin_backends(twin_backends):
    X = random_one_hot(2, twins.LENGTH, random_state=7)
    results = {name: ism(m, X, batch_size=128) for name, m in twin_backends.items()}
    ref = results["torch"].arrays
    assert np.abs(ref["deltas"]).max() > 1e-3
    for name in ("keras", "onnx"):
        for array in ("deltas", "hypothetical", "attributions"):
            scale = np.abs(ref[array]).max()
            assert np.abs(results[name].arrays[array] - ref[array]).max() <= 1e-4 * scale, (name, array)


def test_ism_cli_writes_tfmodisco_inputs(tmp_path):
    meme = tmp_path / "two.meme"
    meme.write_text("MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\nBackground letter frequencies\n"
                    "A 0.25 C 0.25 G 0.25 T 0.25\n\n"
                    "MOTIF acg ACG\nletter-probability matrix: alength= 4 w= 3\n1 0 0 0\n0 1 0 0\n0 0 1 0\n\n"
                    "MOTIF tt TT\nletter-probability matrix: alength= 4 w= 2\n0 0 0 1\n0 0 0 1\n")
    fasta = tmp_path / "s.fa"
    fasta.write_text(">one\nTTACGTTA\n>two\nTTTTNTTG\n")
    out = tmp_path / "out"
    assert main(["run", "ism", str(meme), "--sequences", str(fasta), "--out", str(out), "--target", "0"]) == 0
    expected_one_hot = interpkit.one_hot_encode(["TTACGTTA", "TTTTNTTG"])
    np.testing.assert_array_equal(np.load(out / "ism_ohe.npz")["arr_0"], expected_one_hot)
    hyp = np.load(out / "ism_hyp_0.npz")["arr_0"]
    assert hyp.shape == (2, 4, 8) and not (out / "ism_hyp_1.npz").exists()
    arrays = np.load(out / "ism.npz")
    assert arrays["deltas"].shape == (2, 1, 4, 8) and arrays["l2"].shape == (2, 1, 8)
    np.testing.assert_array_equal(arrays["hypothetical"][:, 0], hyp)
    model = PWMScanModel.from_meme(meme)
    np.testing.assert_allclose(hyp, ism(model, expected_one_hot, target=0).arrays["hypothetical"][:, 0], atol=1e-6)


@pytest.mark.parametrize("check", METHOD_CHECKS, ids=check_id)
def test_method_checks(check):
    check("ism", PWMScanModel(PWMS, ["m5", "m3"]), random_one_hot(3, 12, random_state=8))


def test_ism_needs_only_predictions():
    X = random_one_hot(2, 6, random_state=9)
    deltas = interpkit.run("ism", SumModel(), X).arrays["deltas"]
    # Base counts: replacing base b by b' moves one count from b to b'.
    for n, p in [(0, 0), (1, 5)]:
        observed = int(X[n, :, p].argmax())
        for new in range(4):
            expected = np.zeros(4)
            if new != observed:
                expected[new], expected[observed] = 1, -1
            np.testing.assert_array_equal(deltas[n, :, new, p], expected)


def test_ism_raises():
    model = PWMScanModel(PWMS, ["m5", "m3"])
    X = random_one_hot(2, 10, random_state=10)
    bad = {
        "start < 0": (InputError, {"start": -1}),
        "end > L": (InputError, {"end": 11}),
        "end == 0": (InputError, {"end": 0}),
        "empty window": (InputError, {"start": 5, "end": 5}),
        "float start": (InputTypeError, {"start": 1.0}),
        "batch_size 0": (InputError, {"batch_size": 0}),
        "target out of range": (InputError, {"target": 2}),
        "unknown target name": (InputError, {"target": "m4"}),
    }
    for what, (error, options) in bad.items():
        with pytest.raises(error):
            ism(model, X, **options)
            pytest.fail(what)
    with pytest.raises(InputError, match="swap axes"):
        ism(model, X.transpose(0, 2, 1))
    with pytest.raises(InputError):
        interpkit.run("ism", model, X, no_such=1)
