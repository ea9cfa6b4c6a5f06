"""The deeplift method plugin (DeepLIFT rescale rule by op interception, dinucleotide-shuffled references).

Oracles: closed forms (a linear PWM scan, where DeepLIFT is (x - r) * w exactly; the analytic max-PWM
model, where the max rule routes f(x) - f(r) to one window; a one-hidden-unit ReLU network worked out
by hand); peer equality with tangermeme's ``deep_lift_shap`` on the same references (Basset-architecture
models with random weights, the real ExplaiNN checkpoint with its exponential activation registered in
tangermeme, overlapping max-pools, reused and functional activations); Captum's DeepLift shown to miss
a max-pool fed by a ReLU (Captum issue #1104); cross-backend twins (the ONNX export's torch
translation); in-model strand averaging against its one-strand twin; summation-to-delta on the real
ExplaiNN checkpoint; invariances (batch size, seed); the user's module left as it was.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tangermeme_dls = pytest.importorskip("tangermeme.deep_lift_shap")

from interpkit_deeplift.deeplift import deeplift, deeplift_from_references, deeplift_references
from torch import nn
from twins import LENGTH, torch_twin

import interpkit
from interpkit.errors import CapabilityError, InputError, InputTypeError, InterpkitWarning
from interpkit.testing import METHOD_CHECKS, check_id

torch.set_num_threads(2)


def random_one_hot(n: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))].transpose(0, 2, 1).copy()


def tangermeme(module, X, refs, target, **kw) -> np.ndarray:
    """tangermeme's hypothetical contributions, (N, 4, L), on the given references (N, R, 4, L)."""
    out = tangermeme_dls.deep_lift_shap(module, torch.from_numpy(X), target=target,
                                        references=torch.from_numpy(refs), hypothetical=True, device="cpu",
                                        batch_size=refs.shape[1] * len(X), **kw)
    return out.numpy()


def relative_diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def state_of(module: nn.Module) -> dict:
    """Everything deeplift must leave unchanged: weights, tree, flags, hooks, attributes."""
    return {
        "state": {k: v.clone() for k, v in module.state_dict().items()},
        "tree": repr(module),
        "training": [m.training for m in module.modules()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                  for m in module.modules()],
        "attrs": [sorted(m.__dict__) for m in module.modules()],
        "inplace": [getattr(m, "inplace", None) for m in module.modules()],
        "requires_grad": [p.requires_grad for p in module.parameters()],
    }


def assert_unchanged(module: nn.Module, before: dict) -> None:
    after = state_of(module)
    assert after["tree"] == before["tree"]
    assert after["training"] == before["training"]
    assert after["hooks"] == before["hooks"]
    assert after["attrs"] == before["attrs"]
    assert after["inplace"] == before["inplace"]
    assert after["requires_grad"] == before["requires_grad"]
    assert before["state"].keys() == after["state"].keys()
    assert all(torch.equal(before["state"][k], after["state"][k]) for k in before["state"])


# --- closed forms ------------------------------------------------------------------------------------------


def test_linear_pwm_scan_closed_form():
    # A PWM scan summed over positions is linear: f(x) = sum_{m,b,l} W_m[b, l - i] x[b, l] + const, so the
    # DeepLIFT multiplier is the constant gradient g[b, l] = sum_i W[b, l - i] and the hypothetical
    # contribution against reference r is g[b, l] - sum_a r[a, l] g[a, l], averaged over references.
    torch.manual_seed(0)
    L, w = 40, 6
    conv = nn.Conv1d(4, 2, w)
    net = nn.Sequential(conv, _SumPositions())
    model = interpkit.load(net, length=L)
    X = random_one_hot(3, L)
    result = deeplift(model, X, n_references=5)
    W = conv.weight.detach().numpy().astype(np.float64)
    refs = deeplift_references(X, n_references=5)
    for k in range(2):
        g = np.zeros((4, L))
        for i in range(L - w + 1):
            g[:, i:i + w] += W[k]
        hyp = (g[None, None] - (refs * g).sum(axis=2, keepdims=True)).mean(axis=1)
        np.testing.assert_allclose(result.arrays["hypothetical"][:, k], hyp, atol=1e-5)
        np.testing.assert_allclose(result.arrays["attributions"][:, k], hyp * X, atol=1e-5)
    assert result.delta.shape == (3, 2, 5) and result.delta.max() < 1e-4


class _SumPositions(nn.Module):
    def forward(self, x):
        return x.sum(dim=2)


def test_one_hidden_relu_unit_by_hand():
    # f(x) = v * relu(w . x + b) + c. With z = w . x + b, the rescale rule gives the multiplier
    # v * (relu(z_x) - relu(z_r)) / (z_x - z_r) * w; by hand for one sequence and one reference.
    L = 5
    net = nn.Sequential(nn.Flatten(), nn.Linear(4 * L, 1), nn.ReLU(), nn.Linear(1, 1))
    with torch.no_grad():
        w = torch.zeros(4 * L)
        w[[0, 6, 12, 18]] = torch.tensor([2.0, 1.0, -1.0, 0.5])  # weights of A@0, C@1, G@2, T@3 ...
        w[[1, 7]] = torch.tensor([-3.0, 1.0])  # ... A@1, C@2 (flattened index = base * L + position)
        net[1].weight.copy_(w[None])
        net[1].bias.fill_(-0.5)
        net[3].weight.fill_(3.0)
        net[3].bias.fill_(1.0)
    model = interpkit.load(net, layout="NCL", length=L)
    X = interpkit.one_hot_encode(["ACGTA"])  # z_x = 2 + 1 - 1 + 0.5 (T@3: index 3*5+3=18) - 0.5 = 2.0
    R = interpkit.one_hot_encode(["AACGT"])[:, None]  # z_r = 2 (A@0) - 3 (A@1) + 1 (C@2) - 0.5 = -0.5
    result = deeplift_from_references(model, X, R)
    scale = 3.0 * (2.0 - 0.0) / (2.0 - (-0.5))  # v * delta relu / delta z = 2.4
    m = scale * w.numpy().reshape(4, L)
    hyp = m - (R[0, 0] * m).sum(axis=0, keepdims=True)
    np.testing.assert_allclose(result.arrays["hypothetical"][0, 0], hyp, atol=1e-5)
    # summation-to-delta: f(x) - f(r) = 3 * 2 - 3 * 0 = 6, all of it on the observed bases
    assert result.arrays["attributions"].sum() == pytest.approx(6.0, abs=1e-5)
    assert result.delta.max() < 1e-5


def test_analytic_pwm_model_closed_forms():
    # The numpy PWM-scanning model through its torch form. Sum of log-odds: linear, the multiplier is the
    # summed PWM placements. Max: with window scores S, i* = argmax S(x), j* = argmax S(r), the max rule
    # puts f(x) - f(r) on one window, i* when f(x) >= f(r) else j*, divided by that window's score change.
    from interpkit_numpy.pwm_scan import PWMScanModel

    rng = np.random.default_rng(3)
    pwm = rng.normal(size=(4, 6))
    L, n = 30, 5
    X = random_one_hot(4, L, seed=9)
    refs = deeplift_references(X, n_references=n)
    windows = np.lib.stride_tricks.sliding_window_view(np.concatenate([X[:, None], refs], 1), 6, axis=3)
    S = np.einsum("nrbiw,bw->nri", windows, pwm)  # (N, 1 + n, windows): the sequence, then its references
    placed = np.zeros((L - 5, 4, L))
    for i in range(L - 5):
        placed[i, :, i:i + 6] = pwm
    for reduction in ("sum", "max"):
        result = deeplift(PWMScanModel([pwm], ["m"], reduction=reduction), X, n_references=n)
        assert result.delta.max() < 1e-9
        for s_ in range(len(X)):
            hyps = []
            for j in range(n):
                if reduction == "sum":
                    m = placed.sum(axis=0)
                else:
                    sx, sr = S[s_, 0], S[s_, 1 + j]
                    win = sx.argmax() if sx.max() >= sr.max() else sr.argmax()
                    m = (sx.max() - sr.max()) / (sx[win] - sr[win]) * placed[win]
                hyps.append(m - (refs[s_, j] * m).sum(axis=0, keepdims=True))
            np.testing.assert_allclose(result.arrays["hypothetical"][s_, 0], np.mean(hyps, axis=0), atol=1e-9)


# --- peers: tangermeme with the same references --------------------------------------------------------------


class _NCLtoNCL1(nn.Module):
    """Basset wants (N, 4, 600, 1); tangermeme passes (N, 4, L)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.unsqueeze(-1))


@pytest.fixture(scope="module")
def basset():
    from interpkit_basset.architecture import Basset

    torch.manual_seed(0)
    net = Basset(logits=True)
    with torch.no_grad():  # He initialisation and non-trivial BatchNorm: outputs vary by O(1) between sequences
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_basset_equals_tangermeme(basset):
    model = interpkit.load(basset, layout="NCL1", length=600)
    X = random_one_hot(2, 600, seed=1)
    refs = deeplift_references(X, n_references=4)
    before = state_of(basset)
    result = deeplift(model, X, target=3, n_references=4)
    assert_unchanged(basset, before)
    theirs = tangermeme(_NCLtoNCL1(basset), X, refs, 3)
    assert relative_diff(result.arrays["hypothetical"][:, 0], theirs) <= 1e-4
    assert result.delta.max() < 1e-4


def test_default_init_basset_equals_tangermeme_where_captum_drops_the_maxpool_rule():
    # Basset as PyTorch initialises it (many max-pool windows of all-zero ReLU outputs). tangermeme and we
    # agree; Captum's DeepLift, where a ReLU feeds a MaxPool directly, drops the MaxPool's rule (Captum issue
    # #1104) and is far from both.
    captum_attr = pytest.importorskip("captum.attr")
    from interpkit_basset.architecture import Basset

    torch.manual_seed(0)
    net = Basset(logits=True).eval()
    model = interpkit.load(net, layout="NCL1", length=600)
    X = random_one_hot(1, 600, seed=2)
    n = 3
    refs = deeplift_references(X, n_references=n)
    theirs = tangermeme(_NCLtoNCL1(net), X, refs, 0)
    ours = deeplift(model, X, target=0, n_references=n)
    assert relative_diff(ours.arrays["hypothetical"][:, 0], theirs) <= 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = captum_attr.DeepLift(_NCLtoNCL1(net), multiply_by_inputs=False).attribute(
            torch.from_numpy(np.repeat(X, n, axis=0)), baselines=torch.from_numpy(refs[0]), target=0).numpy()
    captum_hyp = (m - (refs[0] * m).sum(axis=1, keepdims=True)).mean(axis=0)
    assert relative_diff(captum_hyp[None], theirs) > 0.1


@pytest.fixture(scope="module")
def explainn(shared):
    return shared / "checkpoints" / "explainn_tf_binding" / "model_epoch_best_4.pth"


def test_explainn_equals_tangermeme_with_exp_registered(explainn):
    from interpkit_explainn.architecture import Exp
    from interpkit_explainn.model import load_module

    model = interpkit.load(explainn, arch="explainn")
    X = random_one_hot(4, 200, seed=3)
    n = 10
    refs = deeplift_references(X, n_references=n)
    net = load_module(explainn).eval()
    deeplift(model, X[:1], target=0, n_references=2)  # warm-up of both, outside the timing
    tangermeme(net, X[:1], refs[:1, :2], 0, additional_nonlinear_ops={Exp: tangermeme_dls._nonlinear})
    start = time.perf_counter()
    result = deeplift(model, X, n_references=n)
    ours = time.perf_counter() - start
    assert result.provenance["unruled_ops"] == []  # torch.exp inside Exp got the rescale rule
    start = time.perf_counter()
    for k in range(3):
        theirs = tangermeme(net, X, refs, k, additional_nonlinear_ops={Exp: tangermeme_dls._nonlinear})
        assert relative_diff(result.arrays["hypothetical"][:, k], theirs) <= 1e-4
    peer = time.perf_counter() - start
    # the real checkpoint: deltas below 1e-3 (exponential activation handled), and the projected
    # attributions sum to the mean output difference over references
    assert result.delta.shape == (4, 3, n) and result.delta.max() < 1e-3
    y = model.predict(np.concatenate([X, refs.reshape(-1, 4, 200)]))
    expected = y[:4] - y[4:].reshape(4, n, 3).mean(axis=1)
    np.testing.assert_allclose(result.arrays["attributions"].sum(axis=(2, 3)), expected, atol=1e-3)
    pairs = 4 * n * 3
    print(f"\nExplaiNN DeepLIFT, {pairs} pairs: ours {pairs / ours:.0f} pairs/s, tangermeme {pairs / peer:.0f} "
          f"pairs/s (ratio {peer / ours:.2f}); max delta {result.delta.max():.2e}")


def test_overlapping_maxpool_equals_tangermeme():
    # MaxPool1d(4, stride 2): windows overlap, where Captum's max_unpool assigns and loses value.
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv1d(4, 6, 5), nn.ReLU(), nn.MaxPool1d(4, 2), nn.Conv1d(6, 4, 3), nn.ReLU(),
                        nn.MaxPool1d(3, 1), nn.Flatten(), nn.Linear(4 * 15, 2)).eval()
    model = interpkit.load(net, length=45)
    X = random_one_hot(3, 45, seed=4)
    refs = deeplift_references(X, n_references=6)
    result = deeplift(model, X, n_references=6)
    for k in range(2):
        assert relative_diff(result.arrays["hypothetical"][:, k], tangermeme(net, X, refs, k)) <= 1e-4
    assert result.delta.max() < 1e-4


def test_threshold_and_functional_exp_module():
    # nn.Threshold (Kipoi DeepSEA) and a user's own module calling torch.exp get the rescale rule.
    class MyExp(nn.Module):
        def forward(self, x):
            return x.exp()

    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv1d(4, 5, 7), nn.Threshold(0, 1e-6), nn.Conv1d(5, 3, 3), MyExp(), nn.Flatten(),
                        nn.Linear(3 * 32, 1)).eval()
    model = interpkit.load(net, length=40)
    X = random_one_hot(3, 40, seed=5)
    result = deeplift(model, X, n_references=5)
    assert result.delta.max() < 1e-4
    refs = deeplift_references(X, n_references=5)
    theirs = tangermeme(net, X, refs, 0, additional_nonlinear_ops={nn.Threshold: tangermeme_dls._nonlinear,
                                                                   MyExp: tangermeme_dls._nonlinear})
    assert relative_diff(result.arrays["hypothetical"][:, 0], theirs) <= 1e-4


# --- invariances and the user's module -------------------------------------------------------------------------


def test_batch_size_and_seed(explainn):
    model = interpkit.load(explainn, arch="explainn")
    X = random_one_hot(8, 200, seed=6)
    one = deeplift(model, X, target=1, n_references=3, batch_size=1)
    eight = deeplift(model, X, target=1, n_references=3, batch_size=8)
    # equal up to float32 rounding, which depends on the batch's shape in the convolutions
    assert relative_diff(one.arrays["hypothetical"], eight.arrays["hypothetical"]) <= 1e-5
    # references depend only on (random_state, sequence index): the first 3 sequences alone give the same
    first = deeplift(model, X[:3], target=1, n_references=3)
    assert relative_diff(first.arrays["hypothetical"], eight.arrays["hypothetical"][:3]) <= 1e-5
    other = deeplift(model, X[:3], target=1, n_references=3, random_state=1)
    assert not np.allclose(other.arrays["hypothetical"], first.arrays["hypothetical"])


def test_module_left_unchanged_even_on_error():
    net = torch_twin()
    net.train()  # a training module: eval during the call, back to train afterwards
    net.relu1.inplace = True
    before = state_of(net)
    model = interpkit.load(net, length=LENGTH)
    X = random_one_hot(2, LENGTH)
    result = deeplift(model, X, n_references=3)
    assert result.delta.max() < 1e-4
    assert_unchanged(net, before)

    calls = {"n": 0}

    def fail_on_backward(module, grad_input, grad_output):
        raise RuntimeError("boom")

    def fail_late(module, args, output):  # after the dry run, inside the attribution pass
        calls["n"] += 1
        if calls["n"] > 1:
            output.register_hook(lambda g: fail_on_backward(None, None, None))

    handle = net.fc2.register_forward_hook(fail_late)
    before = state_of(net)
    with pytest.raises(Exception, match="boom"):
        deeplift(model, X, n_references=2)
    assert_unchanged(net, before)
    handle.remove()


@pytest.mark.parametrize("check", METHOD_CHECKS, ids=check_id)
def test_method_checks(check):
    model = interpkit.load(torch_twin(), length=LENGTH)
    check("deeplift", model, random_one_hot(3, LENGTH, seed=7))


def test_twin_equals_tangermeme_and_run_params():
    net = torch_twin()
    X = random_one_hot(3, LENGTH, seed=8)
    result = interpkit.run("deeplift", net, X, target="2", n_references=4)
    assert result.targets == (2,) and result.params["n_references"] == 4
    theirs = tangermeme(net, X, deeplift_references(X, n_references=4), 2)
    assert relative_diff(result.arrays["hypothetical"][:, 0], theirs) <= 1e-4


# --- refusals and bad input ----------------------------------------------------------------------------------


def test_deeplift_raises(tmp_path):
    net = torch_twin()
    model = interpkit.load(net, length=LENGTH)
    X = random_one_hot(2, LENGTH)
    bad = {
        "n_references=0": (InputError, {"n_references": 0}),
        "n_references float": (InputTypeError, {"n_references": 2.5}),
        "negative random_state": (InputError, {"random_state": -1}),
        "batch_size=0": (InputError, {"batch_size": 0}),
        "negative threshold": (InputError, {"warning_threshold": -1.0}),
        "target out of range": (InputError, {"target": 7}),
        "unknown target name": (InputError, {"target": "nope"}),
    }
    for error, options in bad.values():
        name = next(iter(options))
        with pytest.raises(error, match=name):
            deeplift(model, X, **options)
    with pytest.raises(InputError):
        deeplift(model, X.transpose(0, 2, 1))  # (N, L, 4)
    with pytest.raises(InputError):
        deeplift(model, X[:, :, :50])  # wrong length
    with pytest.raises(InputError):
        deeplift_from_references(model, X, X[:, None, :, :50])

    # compiled modules hide their ops: refused
    with pytest.raises(CapabilityError, match="TorchScript"):
        deeplift(interpkit.load(torch.jit.script(net), length=LENGTH), X, n_references=2)


class _Reused(nn.Module):
    """One ReLU module called twice, and the same network with functional relu calls."""

    def __init__(self, functional: bool = False):
        super().__init__()
        self.c1, self.c2, self.act = nn.Conv1d(4, 4, 3, padding=1), nn.Conv1d(4, 2, 3), nn.ReLU()
        self.fc = nn.Linear(2 * 18, 2)
        self.functional = functional

    def forward(self, x):
        act = torch.nn.functional.relu if self.functional else self.act
        return self.fc(act(self.c2(act(self.c1(x)))).flatten(1))


def test_reused_and_functional_activations_get_their_rules():
    # tangermeme keeps one cache per call of a module; functional calls get the rule by interception
    torch.manual_seed(4)
    net = _Reused().eval()
    X = random_one_hot(3, 20, seed=10)
    refs = deeplift_references(X, n_references=4)
    theirs = tangermeme(net, X, refs, 1)
    for functional in (False, True):
        net.functional = functional
        with warnings.catch_warnings():
            warnings.simplefilter("error", InterpkitWarning)
            result = deeplift(interpkit.load(net, length=20), X, target=1, n_references=4)
        assert relative_diff(result.arrays["hypothetical"][:, 0], theirs) <= 1e-4
        assert result.delta.max() < 1e-5


def test_nonlinear_ops_without_a_rule_are_reported():
    class Gated(nn.Module):  # x * sigmoid(x): a product of two input-dependent tensors
        def __init__(self):
            super().__init__()
            self.c, self.fc = nn.Conv1d(4, 3, 5), nn.Linear(3 * 16, 1)

        def forward(self, x):
            h = self.c(x)
            return self.fc((h * torch.sigmoid(h)).flatten(1))

    torch.manual_seed(5)
    with pytest.warns(InterpkitWarning, match=r"without a DeepLIFT rule \(mul\)"):
        result = deeplift(interpkit.load(Gated().eval(), length=20), random_one_hot(2, 20), n_references=3)
    assert result.provenance["unruled_ops"] == ["mul"]


def test_in_model_strand_averaging_equals_its_one_strand_twin():
    # Kipoi DeepSEA/predict averages f(x) and f(reverse complement of x) inside the model (batch rows stacked);
    # DeepLIFT of the average is the average of the one-strand model's DeepLIFT on x and on rc(x) with rc(r).
    from interpkit_deepsea.architecture import DeepSEA, DeepSEAVariantEffects

    torch.manual_seed(6)
    both = DeepSEA(logits=True).eval()
    one = DeepSEAVariantEffects(logits=True).eval()
    one.load_state_dict({k.replace("2.", "1.", 1): v for k, v in both.state_dict().items()})
    X = random_one_hot(1, 1000, seed=11)
    refs = deeplift_references(X, n_references=2)
    result = deeplift(interpkit.load(both, layout="NC1L", length=1000), X, target=[0, 5], n_references=2)
    one_model = interpkit.load(one, layout="NC1L", length=1000)
    fwd = deeplift_from_references(one_model, X, refs, target=[0, 5])
    rev = deeplift_from_references(one_model, X[:, ::-1, ::-1].copy(), refs[:, :, ::-1, ::-1].copy(), target=[0, 5])
    expected = (fwd.arrays["hypothetical"] + rev.arrays["hypothetical"][:, :, ::-1, ::-1]) / 2
    assert relative_diff(result.arrays["hypothetical"], expected) <= 1e-4
    assert result.delta.max() < 1e-3


def test_onnx_twin_equals_torch(tmp_path):
    # the ONNX export, run through its op-by-op torch translation, gives the PyTorch twin's numbers
    from twins import onnx_twin

    net = torch_twin()
    X = random_one_hot(3, LENGTH, seed=12)
    onnx_model = interpkit.load(onnx_twin(net, tmp_path / "twin.onnx"))
    ours = deeplift(onnx_model, X, n_references=4)
    twin = deeplift(interpkit.load(net, length=LENGTH), X, n_references=4)
    assert ours.provenance["torch_function"] == "translation"
    assert relative_diff(ours.arrays["hypothetical"], twin.arrays["hypothetical"]) <= 1e-4
    assert ours.delta.max() < 1e-4


def test_keras_twin_equals_torch():
    # the Keras twin, run through its layer-by-layer torch translation, gives the PyTorch twin's numbers
    pytest.importorskip("keras")
    from twins import keras_twin

    net = torch_twin()
    X = random_one_hot(3, LENGTH, seed=13)
    ours = deeplift(interpkit.load(keras_twin(net)), X, n_references=4)
    twin = deeplift(interpkit.load(net, length=LENGTH), X, n_references=4)
    assert ours.provenance["torch_function"] == "translation"
    assert relative_diff(ours.arrays["hypothetical"], twin.arrays["hypothetical"]) <= 1e-4
    assert ours.delta.max() < 1e-4


def test_every_max_form_gets_the_max_rule():
    # max_pool1d with positional return_indices, adaptive max-pool and Tensor.max(dim): each is routed by
    # the max rule (summation-to-delta holds; treated as linear it would not)
    import torch.nn.functional as F

    class Maxes(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.fc = nn.Conv1d(4, 5, 5), nn.Linear(5 * 3, 2)

        def forward(self, x):
            h = torch.relu(self.c(x))
            a, _ = F.max_pool1d(h, 3, 3, 0, 1, False, True)
            return self.fc((a[:, :, :3] + F.adaptive_max_pool1d(h, 3) + h.max(dim=2, keepdim=True).values).flatten(1))

    torch.manual_seed(7)
    net = Maxes().eval()
    X = random_one_hot(3, 30, seed=14)
    result = deeplift(interpkit.load(net, length=30), X, n_references=4)
    assert result.provenance["unruled_ops"] == [] and result.delta.max() < 1e-5
    theirs = tangermeme(net, X, deeplift_references(X, n_references=4), 1)
    assert relative_diff(result.arrays["hypothetical"][:, 1], theirs) > 1e-3  # tangermeme: functional max is linear


class _Act(nn.Module):
    """Conv -> an activation written one of many ways -> Linear."""

    def __init__(self, act):
        super().__init__()
        self.c, self.fc, self.act = nn.Conv1d(4, 3, 5), nn.Linear(3 * 16, 2), act

    def forward(self, x):
        return self.fc(self.act(self.c(x)).flatten(1))


#: The same activation, written as users write it: each must get the module form's rule.
SAME_AS = {
    "sigmoid": (nn.Sigmoid(), [lambda h: torch.sigmoid(input=h), lambda h: h.clone().sigmoid_(),
                               lambda h: torch.special.expit(h)]),
    "relu": (nn.ReLU(), [lambda h: h.clone().relu_(), lambda h: torch.relu_(h.clone()),
                         lambda h: h.clone().clamp_(min=0), lambda h: torch.nn.functional.relu(h, inplace=True)]),
    "logsigmoid": (nn.LogSigmoid(), [lambda h: torch.nn.functional.logsigmoid(h)]),
}
#: Nonlinear forms without a rule: reported by name, never silently linear.
NO_RULE = {
    "h * (h > 0)": lambda h: h * (h > 0),
    "where(h > 0, h, 0.1 h)": lambda h: torch.where(h > 0, h, 0.1 * h),
    "1 / (1 + exp(-h))": lambda h: 1 / (1 + torch.exp(-h)),
    "h[h < 0] = 0": lambda h: h.clone().__setitem__(h < 0, 0) or h,
    "softmax": lambda h: torch.softmax(h, dim=1),
    "h * h": lambda h: torch.multiply(h, h),
    "2 ** h": lambda h: 2 ** h,
    "atan (no list of ours names it)": lambda h: torch.atan(h) * torch.cumprod(h, dim=2),
}


@pytest.mark.parametrize("name", SAME_AS)
def test_functional_and_in_place_forms_get_the_module_rule(name):
    module, forms = SAME_AS[name]
    X = random_one_hot(2, 20, seed=15)
    torch.manual_seed(8)
    reference = _Act(module).eval()
    expected = deeplift(interpkit.load(reference, length=20), X, n_references=3)
    for form in forms:
        net = _Act(_Lambda(form)).eval()
        net.load_state_dict(reference.state_dict(), strict=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", InterpkitWarning)
            got = deeplift(interpkit.load(net, length=20), X, n_references=3)
        assert relative_diff(got.arrays["hypothetical"], expected.arrays["hypothetical"]) <= 1e-6


class _Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, h):
        return self.fn(h)


@pytest.mark.parametrize("form", NO_RULE)
def test_nonlinear_forms_without_a_rule_are_reported(form):
    torch.manual_seed(9)
    net = _Act(_Lambda(NO_RULE[form])).eval()
    with pytest.warns(InterpkitWarning, match="without a DeepLIFT rule"):
        result = deeplift(interpkit.load(net, length=20), random_one_hot(2, 20, seed=16), n_references=3)
    assert result.provenance["unruled_ops"]


def test_models_deeplift_cannot_pair_or_compute_are_refused():
    class PerPosition(nn.Module):  # the batch axis folded with positions: rows no longer one per sequence
        def __init__(self):
            super().__init__()
            self.c, self.fc = nn.Conv1d(4, 6, 5), nn.Linear(6, 1)

        def forward(self, x):
            h = self.c(x)
            n, c, length = h.shape
            h = torch.relu(h.permute(0, 2, 1).reshape(-1, c)).reshape(n, length, c)
            return self.fc(h).sum(dim=1)

    torch.manual_seed(10)
    with pytest.raises(CapabilityError, match="reshapes its batch axis"):
        deeplift(interpkit.load(PerPosition().eval(), length=20), random_one_hot(2, 20), n_references=2)
    half = _Act(nn.ReLU()).eval().to(torch.float16)
    with pytest.raises(CapabilityError, match="float16.*float32"):
        deeplift(interpkit.load(half, length=20), random_one_hot(2, 20), n_references=2)
