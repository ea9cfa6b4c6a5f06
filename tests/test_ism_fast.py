"""The fast path of ``ism`` on chain-structured PyTorch CNNs: equal to the naive path and to tangermeme.

Both modes of :mod:`interpkit_ism.fast` are checked against the naive path (every variant run in
full through the module) on each supported pattern, and unsupported patterns must decline.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from interpkit_basset.architecture import Basset
from interpkit_explainn.architecture import ExplaiNN
from interpkit_ism import chain, fast, steps
from interpkit_ism import ism as ism_module
from interpkit_ism.ism import ism
from torch import nn
from torch_models import basset_like

import interpkit
from interpkit.adapt import OutputReduction
from interpkit.testing import random_one_hot


def _naive(*args, **kwargs):
    ism_module._FORCE_NAIVE = True
    try:
        return ism(*args, **kwargs)
    finally:
        ism_module._FORCE_NAIVE = False


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def _randomize(net: nn.Module, seed: int, scale: float = 0.3) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return net.eval()


def _with_n(X: np.ndarray, *columns: int) -> np.ndarray:
    X = X.copy()
    for c in columns:
        X[0, :, c] = 0  # all-zero (N) columns: 4 real edits
    return X


def _same(fast_result, naive, tolerance: float = 1e-5) -> None:
    assert fast_result.params["ism_path"] == "fast" and naive.params["ism_path"] == "naive"
    for name in ("deltas", "hypothetical", "l2"):
        assert _rel(fast_result.arrays[name], naive.arrays[name]) <= tolerance, name
    np.testing.assert_allclose(fast_result.arrays["reference"], naive.arrays["reference"], rtol=1e-5)  # predict()'s


@pytest.fixture
def mode(monkeypatch):
    """Force the linear mode ("linear") or the exact one ("exact"), whatever the sample check says."""

    def force(which: str) -> None:
        monkeypatch.setattr(fast, "_LINEAR_TOLERANCE", np.inf if which == "linear" else -1.0)

    return force


def test_fast_equals_naive_on_an_unpadded_basset_like_net():
    net = _randomize(nn.Sequential(
        nn.Conv1d(4, 8, 7), nn.ReLU(), nn.MaxPool1d(3),
        nn.Conv1d(8, 6, 3, dilation=2), nn.BatchNorm1d(6), nn.ReLU(), nn.MaxPool1d(2, stride=2),
        nn.Flatten(), nn.Linear(6 * 7, 3)), seed=1)
    model = interpkit.load(net)
    X = _with_n(random_one_hot(3, 60, random_state=1), 0, 20, 59)
    _same(ism(model, X, target="0,2", batch_size=37), _naive(model, X, target="0,2"))
    _same(ism(model, X, target=1, start=5, end=33), _naive(model, X, target=1, start=5, end=33))


@pytest.fixture(scope="module")
def basset():
    return interpkit.load(_randomize(Basset(logits=True), seed=2))


def test_fast_equals_naive_on_the_kipoi_basset_architecture(basset):
    assert basset.input_spec.layout == "NCL1"
    X = _with_n(random_one_hot(2, 600, random_state=2), 250, 0)
    _same(ism(basset, X, target="0,7", start=240, end=270, batch_size=200),
          _naive(basset, X, target="0,7", start=240, end=270))
    # The sequence ends, where the cone is cut by the edges (and the last 8 bp feed no output).
    _same(ism(basset, X, target=3, start=0, end=6), _naive(basset, X, target=3, start=0, end=6))
    _same(ism(basset, X, target=3, start=590, end=600), _naive(basset, X, target=3, start=590, end=600))


def test_both_modes_equal_naive_on_basset_and_the_sample_check_keeps_the_exact_one(basset, mode, monkeypatch):
    X = random_one_hot(2, 600, random_state=7)
    naive = _naive(basset, X, target=0, start=300, end=312)
    # Basset's float32 outputs are 12x its deltas: the linear mode's other rounding is about 2e-5 of the deltas,
    # the exact mode repeats the module's arithmetic; the sample check must pick the exact one.
    checks = []
    agrees = fast._linear_agrees
    monkeypatch.setattr(fast, "_linear_agrees", lambda *a: checks.append(agrees(*a)) or checks[-1])
    _same(ism(basset, X, target=0, start=300, end=312), naive)
    assert checks == [False]
    mode("linear")
    _same(ism(basset, X, target=0, start=300, end=312), naive, 1e-4)


def test_fast_equals_tangermeme_on_basset_and_is_faster(basset):
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis

    X = random_one_hot(2, 600, random_state=3)
    start, end, target = 250, 350, 5
    tic = time.perf_counter()
    fast_result = ism(basset, X, target=target, start=start, end=end, batch_size=256)
    t_fast = time.perf_counter() - tic
    tic = time.perf_counter()
    naive = _naive(basset, X, target=target, start=start, end=end, batch_size=256)
    t_naive = time.perf_counter() - tic
    tic = time.perf_counter()
    hyp = saturation_mutagenesis(_Unsqueezed(basset.module), torch.from_numpy(X), target=target, start=start,
                                 end=end, hypothetical=True, device="cpu", batch_size=256).numpy()
    t_theirs = time.perf_counter() - tic
    assert fast_result.params["ism_path"] == "fast"
    assert _rel(fast_result.arrays["hypothetical"][:, 0, :, start:end], hyp) <= 1e-5
    assert _rel(fast_result.arrays["deltas"], naive.arrays["deltas"]) <= 1e-5
    variants = 2 * 3 * (end - start)
    print(f"\nISM on Basset (600 bp, {end - start}-bp window, {variants} variants): fast {t_fast:.2f} s, "
          f"naive {t_naive:.2f} s ({t_naive / t_fast:.1f}x), tangermeme (its fast path) {t_theirs:.2f} s "
          f"({t_theirs / t_fast:.1f}x)")


class _Unsqueezed(nn.Module):
    """Basset on tangermeme's (N, 4, L) input."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.unsqueeze(-1))


@pytest.mark.parametrize("layout", ["NCL", "NCL1", "NC1L"])
def test_fast_equals_naive_with_same_padding(layout):
    # basset_like's second conv has padding="same" (dilation 2): crops read the cached zero padding near the ends.
    model = interpkit.load(basset_like(layout).eval())
    X = _with_n(random_one_hot(2, 60, random_state=4), 7, 58)
    _same(ism(model, X, target="0,1", batch_size=25), _naive(model, X, target="0,1"))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_fast_equals_naive_with_even_same_padding_strides_and_groups():
    # "same" with an even kernel pads one more column on the right; a strided grouped conv and an average pool.
    net = _randomize(nn.Sequential(
        nn.Conv1d(4, 6, 4, padding="same"), nn.ELU(), nn.Conv1d(6, 6, 5, stride=2, padding=3, groups=3),
        nn.Tanh(), nn.AvgPool1d(3), nn.Flatten(), nn.Linear(6 * 10, 2)), seed=3)
    model = interpkit.load(net, length=59)
    X = _with_n(random_one_hot(2, 59, random_state=5), 0, 58)
    _same(ism(model, X, batch_size=16), _naive(model, X))


@pytest.fixture(scope="module")
def explainn(shared):
    return interpkit.load(shared / "checkpoints" / "explainn_tf_binding" / "model_epoch_best_4.pth", arch="explainn")


def test_real_explainn_runs_fast_in_either_mode_equal_to_naive(explainn, mode):
    # Not an nn.Sequential (forward is final(linears(x))), a custom Exp activation, a custom Unsqueeze after Flatten,
    # grouped 1x1 convolutions in the head (the linear mode's grouped products).
    assert not isinstance(explainn.module, nn.Sequential)
    X = _with_n(random_one_hot(3, 200, random_state=6), 0, 100, 199)
    naive = _naive(explainn, X, target="0,2")
    _same(ism(explainn, X, target="0,2"), naive)
    for which in ("linear", "exact"):
        mode(which)
        _same(ism(explainn, X, target="0,2", batch_size=101), naive)
    _same(ism(explainn, X, target=1, start=3, end=9, batch_size=1), _naive(explainn, X, target=1, start=3, end=9))


def test_sample_check_picks_the_linear_mode_on_the_real_explainn(explainn, monkeypatch):
    checks = []
    agrees = fast._linear_agrees
    monkeypatch.setattr(fast, "_linear_agrees", lambda *a: checks.append(agrees(*a)) or checks[-1])
    X = random_one_hot(2, 200, random_state=8)
    _same(ism(explainn, X, target=0), _naive(explainn, X, target=0))
    assert checks == [True]


@pytest.mark.parametrize("num_fc", [0, 1, 3])
def test_explainn_variants_run_fast(num_fc, mode):
    module = _randomize(ExplaiNN(5, 60, 2, filter_size=7, num_fc=num_fc, hidden=8), seed=num_fc, scale=0.5)
    model = interpkit.load(module, length=60)
    X = _with_n(random_one_hot(2, 60, random_state=num_fc), 30)
    naive = _naive(model, X)
    for which in ("linear", "exact"):
        mode(which)
        _same(ism(model, X, batch_size=40), naive)


class _Swish(nn.Module):
    """x * sigmoid(x), two torch functions: element-wise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class _Centre(nn.Module):
    """x minus its mean over the sequence: pure torch functions, but not element-wise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(-1, keepdim=True)


class _Square(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.pow(2)


class _Scaled(nn.Module):
    """Element-wise but with a buffer: not known to be a pure function."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("factor", torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def _custom_net(act: nn.Module, head_act: nn.Module) -> nn.Sequential:
    return _randomize(nn.Sequential(
        nn.Conv1d(4, 6, 5), act, nn.MaxPool1d(2), nn.Conv1d(6, 4, 3), nn.BatchNorm1d(4), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 24, 8), head_act, nn.Linear(8, 2)), seed=4)


def test_custom_elementwise_modules_run_fast(mode):
    model = interpkit.load(_custom_net(_Swish(), _Square()), length=56)
    assert fast.plan(model) is not None
    X = _with_n(random_one_hot(2, 56, random_state=9), 3)
    naive = _naive(model, X)
    for which in ("linear", "exact"):
        mode(which)
        _same(ism(model, X), naive)


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 30, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x + self.conv(x))


class _FunctionalFlatten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3)
        self.lin = nn.Linear(4 * 28, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.flatten(torch.relu(self.conv(x)), 1))


_DECLINED = {
    "centre": (lambda: _custom_net(_Centre(), nn.ReLU()), 56),  # pure torch functions, not element-wise
    "buffer": (lambda: _custom_net(_Scaled(), nn.ReLU()), 56),  # a custom module with a buffer
    "padded-pool": (lambda: nn.Sequential(nn.Conv1d(4, 4, 3), nn.MaxPool1d(2, padding=1), nn.Flatten(),
                                          nn.Linear(4 * 15, 2)), 30),
    "ceil-mode": (lambda: nn.Sequential(nn.Conv1d(4, 4, 3), nn.MaxPool1d(3, ceil_mode=True), nn.Flatten(),
                                        nn.Linear(4 * 10, 2)), 30),
    "circular": (lambda: nn.Sequential(nn.Conv1d(4, 4, 3, padding=1, padding_mode="circular"), nn.Flatten(),
                                       nn.Linear(4 * 30, 2)), 30),
    "residual": (_Residual, 30),  # forward adds a tensor: not a chain of module calls
    "functional": (_FunctionalFlatten, 30),  # forward calls torch functions between the modules
}


@pytest.mark.parametrize("name", list(_DECLINED))
def test_unsupported_patterns_decline_and_stay_correct(name):
    build, length = _DECLINED[name]
    model = interpkit.load(_randomize(build(), seed=5), length=length)
    assert fast.plan(model) is None
    X = _with_n(random_one_hot(2, length, random_state=10), 4)
    result = ism(model, X, start=2, end=9)
    assert result.params["ism_path"] == "naive"
    np.testing.assert_array_equal(result.arrays["deltas"], _naive(model, X, start=2, end=9).arrays["deltas"])


def test_per_position_outputs_decline():
    net = _randomize(nn.Sequential(nn.Conv1d(4, 4, 3), nn.ReLU(), nn.Conv1d(4, 2, 1)), seed=6)
    model = interpkit.load(net, length=30, output=OutputReduction())
    assert fast.plan(model) is None
    assert ism(model, random_one_hot(1, 30), start=0, end=3).params["ism_path"] == "naive"


def test_elementwise_check():
    x = torch.randn(2, 3, 40)
    assert chain.is_elementwise(_Swish(), x) and chain.is_elementwise(nn.ReLU(), x)
    assert not chain.is_elementwise(_Centre(), x)
    assert not chain.is_elementwise(nn.Softmax(dim=1), x)
    assert not chain.is_elementwise(_Scaled(), x)
    assert chain.is_reshape(nn.Flatten(), x) and not chain.is_reshape(nn.AdaptiveAvgPool1d(1), x)


def test_windows_hold_every_changed_output():
    # Brute force: an input change at p changes exactly the outputs whose window holds p; each layer's window must
    # hold all of them (zero padding, stride, dilation).
    layers = [steps.Local("conv", 5, 2, 2, (4, 4)), steps.Local("maxpool", 3, 3, 1, (0, 0)),
              steps.Local("conv", 4, 1, 1, (1, 2))]
    length = 41
    chain.windows(length, layers)
    changed = [np.zeros(length, dtype=bool) for _ in range(length)]
    for p in range(length):
        changed[p][p] = True
    n_in = length
    for layer in layers:
        n_out = (n_in + sum(layer.pad) - layer.k_eff) // layer.stride + 1
        for p in range(length):
            padded = np.concatenate([np.zeros(layer.pad[0], bool), changed[p], np.zeros(layer.pad[1], bool)])
            out = np.array([padded[j * layer.stride:j * layer.stride + layer.k_eff:layer.dilation].any()
                            for j in range(n_out)])
            inside = np.zeros(n_out, dtype=bool)
            inside[layer.lo[p]:layer.lo[p] + layer.width] = True
            assert not (out & ~inside).any(), (layer, p)
            changed[p] = out
        n_in = n_out


def test_naive_path_picks_a_cache_sized_batch_on_the_cpu(explainn):
    size = fast.naive_batch_size(explainn, 200)
    assert 16 <= size <= 1024
    from interpkit_numpy.pwm_scan import PWMScanModel

    assert fast.naive_batch_size(PWMScanModel([np.ones((4, 3))], ["m"]), 20) is None


def test_fast_path_shows_progress_and_restores_threads(capsys):
    model = interpkit.load(basset_like("NCL").eval())
    threads = torch.get_num_threads()
    result = ism(model, random_one_hot(2, 60, random_state=11), verbose=True)
    assert result.params["ism_path"] == "fast" and torch.get_num_threads() == threads
    assert "ism variants" in capsys.readouterr().err


def test_compiled_reference_that_disagrees_with_predict_falls_back(monkeypatch):
    model = interpkit.load(basset_like("NCL").eval())
    X = random_one_hot(2, 60, random_state=12)
    monkeypatch.setattr(fast, "_CHECK_TOLERANCE", -1.0)  # no compiled reference can pass
    result = ism(model, X)
    assert result.params["ism_path"] == "naive"
    np.testing.assert_array_equal(result.arrays["deltas"], _naive(model, X).arrays["deltas"])


@pytest.mark.parametrize("which", ["linear", "exact"])
def test_sequences_in_chunks_of_two(which, mode, monkeypatch):
    monkeypatch.setattr(fast, "_CACHE_BYTES", 1)  # the reference cache of two sequences at a time (the last: one)
    mode(which)
    model = interpkit.load(_custom_net(_Swish(), nn.ReLU()), length=56)
    X = _with_n(random_one_hot(5, 56, random_state=13), 9)
    _same(ism(model, X, start=4, end=40), _naive(model, X, start=4, end=40))
