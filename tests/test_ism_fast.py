"""The receptive-field fast path of ``ism`` on PyTorch nn.Sequential CNNs: equal to the naive path and to tangermeme."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from interpkit_basset.architecture import Basset
from interpkit_explainn.architecture import ExplaiNN
from interpkit_ism import ism as ism_module
from interpkit_ism.ism import ism
from torch import nn
from torch_models import basset_like

import interpkit
from interpkit.testing import random_one_hot


def _naive(*args, **kwargs):
    ism_module._FORCE_NAIVE = True
    try:
        return ism(*args, **kwargs)
    finally:
        ism_module._FORCE_NAIVE = False


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def _randomize(net: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
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


def _same(fast, naive) -> None:
    assert fast.params["ism_path"] == "fast" and naive.params["ism_path"] == "naive"
    for name in ("deltas", "hypothetical", "l2"):
        assert _rel(fast.arrays[name], naive.arrays[name]) <= 1e-5, name
    np.testing.assert_array_equal(fast.arrays["reference"], naive.arrays["reference"])


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


class _Unsqueezed(nn.Module):
    """Basset on tangermeme's (N, 4, L) input."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.unsqueeze(-1))


def test_fast_equals_tangermeme_on_basset_and_is_faster(basset):
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis

    X = random_one_hot(2, 600, random_state=3)
    start, end, target = 250, 350, 5
    tic = time.perf_counter()
    fast = ism(basset, X, target=target, start=start, end=end, batch_size=256)
    t_fast = time.perf_counter() - tic
    tic = time.perf_counter()
    naive = _naive(basset, X, target=target, start=start, end=end, batch_size=256)
    t_naive = time.perf_counter() - tic
    tic = time.perf_counter()
    hyp = saturation_mutagenesis(_Unsqueezed(basset.module), torch.from_numpy(X), target=target, start=start,
                                 end=end, hypothetical=True, device="cpu", batch_size=256).numpy()
    t_theirs = time.perf_counter() - tic
    assert fast.params["ism_path"] == "fast"
    assert _rel(fast.arrays["hypothetical"][:, 0, :, start:end], hyp) <= 1e-5
    assert _rel(fast.arrays["deltas"], naive.arrays["deltas"]) <= 1e-5
    variants = 2 * 3 * (end - start)
    print(f"\nISM on Basset (600 bp, {end - start}-bp window, {variants} variants): fast {t_fast:.2f} s, "
          f"naive {t_naive:.2f} s ({t_naive / t_fast:.1f}x), tangermeme (its fast path) {t_theirs:.2f} s "
          f"({t_theirs / t_fast:.1f}x)")


def test_padded_model_falls_back_and_is_correct():
    model = interpkit.load(basset_like("NCL").eval())  # its second conv has padding="same"
    X = _with_n(random_one_hot(2, 60, random_state=4), 7)
    result = ism(model, X, target="0,1")
    assert result.params["ism_path"] == "naive"
    naive = _naive(model, X, target="0,1")
    np.testing.assert_array_equal(result.arrays["deltas"], naive.arrays["deltas"])


def test_explainn_falls_back_and_is_correct():
    module = _randomize(ExplaiNN(4, 100, 2), seed=5)
    assert not isinstance(module, nn.Sequential)  # a custom forward: no trunk/head split
    model = interpkit.load(module, length=100)
    X = random_one_hot(2, 100, random_state=5)
    result = ism(model, X, start=10, end=30)
    assert result.params["ism_path"] == "naive"
    np.testing.assert_array_equal(result.arrays["deltas"], _naive(model, X, start=10, end=30).arrays["deltas"])
