"""The PyTorch backend: loading, input/output adaptation, gradients, layer probing, real checkpoints.

Oracles: the raw module's own output on the same batch (and OutputReduction.apply on it);
autograd's jacobian and central finite differences on a smooth model; hand-computed receptive
fields; closed forms (a convolution's gradient is its kernel); the real OpenSpliceAI and Pangolin
checkpoints' known behaviour (splice sites at AG/GT, destroyed by mutating them).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import twins
from interpkit_torch import _claims
from interpkit_torch.checkpoint import load_weights
from interpkit_torch.load import load as torch_load
from torch import nn
from torch_models import (
    BASSET_LIKE_GEOMETRY,
    BASSET_LIKE_LENGTH,
    PANGOLIN_CONTEXT,
    PANGOLIN_P_SPLICE,
    OpenSpliceAI,
    Pangolin,
    basset_like,
    load_strict,
    one_hot,
    smooth_net,
)

import interpkit
from interpkit import Capability, capabilities_of, receptive_fields
from interpkit.adapt import OutputReduction
from interpkit.cli import main
from interpkit.errors import CapabilityError, InputError, InputTypeError, InterpkitWarning, MissingFileError
from interpkit.testing import PREDICTOR_CHECKS, PROBE_CHECKS, check_id, random_one_hot

CHECKPOINTS = "checkpoints"
GENOME = "data/genome/test_grch37_chr10_0-110kb.fa"
#: torch 2.13 deprecates torch.jit.script/trace/save, which these tests use to write TorchScript files.
jit_deprecated = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
X60 = random_one_hot(6, BASSET_LIKE_LENGTH, random_state=1)


def raw(module: nn.Module, X: np.ndarray, layout: str = "NCL") -> np.ndarray:
    """The module's own output on canonical one-hot X, in its layout, under no_grad and eval."""
    x = torch.from_numpy(X)
    x = {"NCL": x, "NCL1": x[..., None], "NC1L": x[:, :, None, :], "NLC": x.transpose(1, 2)}[layout]
    with torch.no_grad():
        return module.eval()(x).numpy()


@pytest.fixture(scope="module")
def genome(shared):
    import pyfaidx

    with pyfaidx.Fasta(str(shared / GENOME), as_raw=True) as fasta:
        return str(fasta["chr10"][:]).upper()


@pytest.fixture(scope="module")
def spliceai80(shared):
    return load_strict(OpenSpliceAI(80), shared / CHECKPOINTS / "openspliceai_mane/model_80nt_rs10.pt")


# -- registration and loading --------------------------------------------------------------------
@jit_deprecated
def test_backend_registered_and_claims_modules():
    spec = interpkit.get_registry().backends["torch"]
    assert spec.claims_source(basset_like()) and spec.claims_source(torch.jit.script(basset_like()))
    assert spec.claims_source("model.pth") and spec.claims_source("model.ts")
    assert not _claims(torch.zeros(3)) and not _claims(np.zeros(3)) and not _claims("x")
    assert isinstance(interpkit.load(basset_like()), interpkit.Predictor)


@pytest.mark.parametrize("layout", ["NCL", "NCL1", "NC1L"])
def test_layout_inferred_and_predictions_equal_the_raw_module(layout):
    module = basset_like(layout)
    model = interpkit.load(module, length=60)
    assert model.input_spec.layout == layout and model.input_spec.length == 60
    np.testing.assert_allclose(model.predict(X60), raw(module, X60, layout), rtol=1e-6, atol=1e-6)
    # Same weights in every layout: the same function (oracle: the NCL module).
    np.testing.assert_allclose(model.predict(X60), raw(basset_like("NCL"), X60), rtol=1e-5, atol=1e-5)


def test_length_from_first_dense_layer():
    # conv5 (no pool) then Linear(8 * 46): exactly one input length fits, 46 + 4 = 50 bp.
    module = nn.Sequential(nn.Conv1d(4, 8, 5), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 46, 2))
    assert interpkit.load(module).input_spec.length == 50
    # With pools the first Linear fits 60-65 bp (pools drop remainders): no guess, length stays None.
    model = interpkit.load(basset_like())
    assert model.input_spec.length is None
    np.testing.assert_allclose(model.predict(random_one_hot(2, 63)), raw(basset_like(), random_one_hot(2, 63)),
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match=r"length 40 bp.*pass length=.*fits 60-65 bp"):
        model.predict(random_one_hot(2, 40))


def test_failures_on_a_length_name_it():
    class Fixed(nn.Module):  # runs only on 100 bp, which nothing in its modules tells
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 2, 5)

        def forward(self, x):
            if x.shape[2] != 100:
                raise ValueError(f"expects 100 bp, got {x.shape[2]}")
            return self.conv(x).amax(dim=2)

    model = interpkit.load(Fixed())  # the dry run at its guessed length fails quietly: length unknown
    X = random_one_hot(2, 100)
    np.testing.assert_allclose(model.predict(X), raw(model.module, X), rtol=1e-6)
    assert model.layers()[0].name == "conv"
    with pytest.raises(InputError, match=r"failed on input of length 90 bp: expects 100 bp, got 90; pass length="):
        model.predict(random_one_hot(2, 90))


def test_nlc_layout_and_model_alphabet():
    # The same function as basset_like, written for (N, L, 4) input in A,G,C,T channel order.
    class NLC(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = basset_like()
            with torch.no_grad():
                self.net[0].weight.copy_(self.net[0].weight[:, [0, 2, 1, 3]])

        def forward(self, x):
            return self.net(x.transpose(1, 2))

    model = interpkit.load(NLC(), layout="NLC", alphabet="agct", length=60)
    assert model.input_spec.model_alphabet == "AGCT" and model.input_spec.alphabet == "ACGT"
    np.testing.assert_allclose(model.predict(X60), raw(basset_like(), X60), rtol=1e-5, atol=1e-5)
    reference = interpkit.load(basset_like(), length=60)
    np.testing.assert_allclose(model.gradient(X60, 2), reference.gradient(X60, 2), rtol=1e-4, atol=1e-6)


def test_extra_inputs_passed_by_keyword():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 3, 5)

        def forward(self, x, halflife):
            return self.conv(x).mean(dim=2) + halflife.sum(dim=1, keepdim=True)

    module, feats = TwoInputs(), np.array([1.0, 2.0, 0.5], dtype=np.float32)
    model = interpkit.load(module, extra_inputs={"halflife": feats})
    X = random_one_hot(3, 30)
    with torch.no_grad():
        expected = module(torch.from_numpy(X), torch.from_numpy(np.tile(feats, (3, 1)))).numpy()
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-6)
    assert model.input_spec.extra_inputs == {"halflife": (3,)}
    with pytest.raises(InputError, match="extra input.*halflife"):
        interpkit.load(module)


@jit_deprecated
def test_torchscript_files_load_and_probe(tmp_path):
    module = basset_like().eval()  # traced in eval mode: a trace bakes in BatchNorm's mode
    eager = interpkit.load(module, length=60)
    for how in ("script", "trace"):
        path = tmp_path / f"model_{how}.pt"
        compiled = torch.jit.script(module) if how == "script" else torch.jit.trace(module, torch.zeros(1, 4, 60))
        torch.jit.save(compiled, str(path))
        model = interpkit.load(path, length=60)
        assert model.checkpoint["format"] == "TorchScript" and len(model.checkpoint["sha256"]) == 64
        np.testing.assert_allclose(model.predict(X60), eager.predict(X60), rtol=1e-6, atol=1e-6)
        assert model.layers() == eager.layers(), how  # geometry from TorchScript attributes or graph
        np.testing.assert_allclose(model.activations(X60, "4"), eager.activations(X60, "4"), rtol=1e-6)
        np.testing.assert_allclose(model.gradient(X60, 0), eager.gradient(X60, 0), rtol=1e-5, atol=1e-7)


@jit_deprecated
def test_torchscript_non_sequential_predicts_but_cannot_probe(tmp_path, spliceai80):
    path = tmp_path / "spliceai.ts"
    torch.jit.save(torch.jit.script(spliceai80), str(path))
    rule = OutputReduction(reduce="max", channels=(1, 2))
    model = interpkit.load(path, output=rule)
    X = random_one_hot(3, 120)
    np.testing.assert_allclose(model.predict(X), rule.apply(raw(spliceai80, X)), rtol=1e-5, atol=1e-6)
    assert capabilities_of(model) == {Capability.PREDICT, Capability.GRADIENT, Capability.TORCH_FUNCTION}
    eager = interpkit.load(spliceai80, output=rule)
    np.testing.assert_allclose(model.gradient(X, 1), eager.gradient(X, 1), rtol=1e-5, atol=1e-6)
    with pytest.raises(CapabilityError, match="ScriptModules do not support forward hooks"):
        model.layers()


@jit_deprecated
def test_info_on_torchscript_file_prints_receptive_fields(tmp_path, capsys):
    path = tmp_path / "basset_like.pt"
    torch.jit.save(torch.jit.script(basset_like("NCL1")), str(path))
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "torch" and info["input"]["layout"] == "NCL1"
    geometry = [None if r["receptive_field"] == "all" else (r["receptive_field"], r["jump"], r["start"])
                for r in info["layers"]]
    assert geometry == BASSET_LIKE_GEOMETRY
    assert [r["kind"] for r in info["layers"]] == ["conv", "norm", "activation", "maxpool", "conv", "norm",
                                                   "activation", "maxpool", "flatten", "dense"]
    assert info["layers"][4]["dilation"] == 2 and info["layers"][4]["padding"] == 2


def test_pickled_module_needs_trust(tmp_path):
    path = tmp_path / "whole.pth"
    torch.save(basset_like(), path)
    with pytest.raises(InputError, match=r"whole.pth.*runs code from the file.*trust=True \(--trust\)"):
        interpkit.load(path)
    model = interpkit.load(path, trust=True, length=60)
    np.testing.assert_allclose(model.predict(X60), raw(basset_like(), X60), rtol=1e-6, atol=1e-6)


class _WritesAFile:
    """A pickle whose loading would write a file: the attack weights_only loading prevents."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (self.target, "pwned"))


def test_malicious_pickle_does_not_run_without_trust(tmp_path):
    target, path = tmp_path / "pwned.txt", tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(2), "payload": _WritesAFile(target)}, path)
    with pytest.raises(InputError, match="trust=True"):
        interpkit.load(path)
    assert not target.exists()


def test_state_dict_and_corrupt_files(tmp_path):
    weights = tmp_path / "weights.pth"
    torch.save(basset_like().state_dict(), weights)
    with pytest.raises(InputError, match=r"weights.pth holds a state_dict .* pass arch= one of: .*"
                                         r"build the nn.Module yourself"):
        interpkit.load(weights)
    # The helper architecture plugins may use: strict loading with every mismatch named.
    module = load_weights(basset_like(seed=3), weights)
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), basset_like().state_dict().values()))
    with pytest.raises(InputError, match=r"missing keys: 10.weight, 10.bias; unexpected keys: 9.weight, 9.bias"):
        load_weights(nn.Sequential(*basset_like()[:9], nn.Identity(), nn.Linear(54, 3)), weights)
    with pytest.raises(InputError, match=r"wrong shapes: 9.weight \(3, 54\) \(expected \(2, 54\)\)"):
        load_weights(nn.Sequential(*basset_like()[:9], nn.Linear(54, 2)), weights)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(weights.read_bytes()[:300])
    with pytest.raises(InputError, match="corrupt.pth could not be read as a PyTorch checkpoint"):
        interpkit.load(corrupt)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(InputError, match="garbage.pt"):
        interpkit.load(garbage)


# -- the user's module is left as it was ------------------------------------------------------------
def test_module_left_unchanged():
    module = basset_like().train()
    module[1].eval()  # a mixed state must come back exactly
    flags = [m.training for m in module.modules()]
    state = {k: v.clone() for k, v in module.state_dict().items()}
    model = interpkit.load(module, length=60)
    model.predict(X60)
    model.gradient(X60, 1)
    model.activations(X60, "6", pre_activation=True)
    model.pool_inputs(X60, "7")
    model.neuron_gradient("4", 0, X60[:, :, :21])
    assert [m.training for m in module.modules()] == flags
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in state.items())  # BN statistics included
    assert all(p.grad is None for p in module.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())
    assert next(module.parameters()).device.type == "cpu"


# -- output reduction and gradients -------------------------------------------------------------------
RULES = [
    OutputReduction(),
    OutputReduction(reduce="max", channels=(1, 2)),
    OutputReduction(window=(5, -5), reduce="sum", channels=(2,)),
    OutputReduction(window=(-10, None), reduce="center", channels=(-1, 0)),
]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.describe())
def test_output_reduction_equals_numpy_reference(rule, spliceai80):
    X = random_one_hot(4, 80 + 30, random_state=2)
    model = interpkit.load(spliceai80, output=rule)
    np.testing.assert_allclose(model.predict(X), rule.apply(raw(spliceai80, X)), rtol=1e-6, atol=1e-6)
    # The gradient flows through the same rule: autograd on the raw module with the rule written in torch.
    x = torch.from_numpy(X).requires_grad_(True)
    y = spliceai80.eval()(x)[:, :, slice(*(rule.window or (None, None)))]
    y = y[:, list(rule.channels)] if rule.channels else y
    value = {"mean": y.mean(2), "max": y.amax(2), "sum": y.sum(2), "center": y[:, :, (y.shape[2] - 1) // 2]}
    (grad,) = torch.autograd.grad(value[rule.reduce][:, -1].sum(), x)
    np.testing.assert_allclose(model.gradient(X, len(model.output_names) - 1), grad.numpy(), rtol=1e-4, atol=1e-7)


def test_channels_last_outputs_and_default_rule_warning(spliceai80):
    class ChannelsLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = spliceai80

        def forward(self, x):
            return self.inner(x).transpose(1, 2)

    X = random_one_hot(3, 100)
    rule = OutputReduction(positions="middle", reduce="max", channels=(2,))
    model = interpkit.load(ChannelsLast(), output=rule)
    np.testing.assert_allclose(model.predict(X), rule.apply(raw(ChannelsLast(), X)), rtol=1e-6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        default = interpkit.load(spliceai80)
    messages = [str(w.message) for w in caught if issubclass(w.category, InterpkitWarning)]
    assert len(messages) == 1 and "OutputReduction()" in messages[0] and "--output" in messages[0]
    assert default.output_reduction == OutputReduction()
    np.testing.assert_allclose(default.predict(X), raw(spliceai80, X).mean(axis=2), rtol=1e-6)


def test_gradient_matches_finite_differences_and_jacobian():
    # Softplus and average pools make the model smooth, so derivatives exist everywhere.
    module = smooth_net()
    model = interpkit.load(module)
    X = random_one_hot(3, 24, random_state=4)
    G = model.gradient(X, 1)
    jac = torch.autograd.functional.jacobian(lambda x: module.eval()(x)[:, 1].sum(), torch.from_numpy(X))
    np.testing.assert_allclose(G, jac.numpy(), rtol=1e-5, atol=1e-7)
    double, eps = smooth_net().double().eval(), 1e-5
    base = torch.from_numpy(X).double()
    for n, c, i in [(0, 0, 0), (1, 2, 11), (2, 3, 23), (0, 1, 7)]:
        plus, minus = base.clone(), base.clone()
        plus[n, c, i] += eps
        minus[n, c, i] -= eps
        with torch.no_grad():
            fd = (double(plus)[n, 1] - double(minus)[n, 1]).item() / (2 * eps)
        assert G[n, c, i] == pytest.approx(fd, rel=1e-4, abs=1e-6)


def test_batch_size_invariance_of_every_call():
    model = interpkit.load(basset_like(), length=60)
    for call in (lambda b: model.predict(X60, batch_size=b), lambda b: model.gradient(X60, 2, batch_size=b),
                 lambda b: model.activations(X60, "7", batch_size=b)):
        np.testing.assert_allclose(call(1), call(None), rtol=1e-5, atol=1e-6)


# -- layer probing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["NCL", "NCL1"])
def test_layer_table_geometry_by_hand(layout):
    model = interpkit.load(basset_like(layout), length=60)
    got = [None if g.is_global else (g.receptive_field, g.jump, g.start) for g in receptive_fields(model.layers())]
    assert got == BASSET_LIKE_GEOMETRY
    assert [info.name for info in model.layers()] == [str(i) for i in range(10)]
    assert [info.channels for info in model.layers()] == [8, 8, 8, 8, 6, 6, 6, 6, 54, 3]


class ExpActivation(nn.Module):
    """ExplaiNN-style exponential activation (a custom class, recognised by its name)."""

    def forward(self, x):
        return torch.exp(x)


class Recode(nn.Module):
    """Swaps the C and G channels: position-wise, which only its declared kind can tell."""

    interpkit_kind = "identity"

    def forward(self, x):
        return x[:, [0, 2, 1, 3]]


class Flip(nn.Module):
    """Reverses the sequence: shape-preserving but not position-wise, so its kind must stay unknown."""

    def forward(self, x):
        return x.flip(2)


def test_layer_kinds_and_geometry_of_less_common_modules():
    module = nn.Sequential(Recode(), nn.Conv2d(4, 3, (1, 5), padding=(0, 2)), nn.Threshold(0, 1e-6),
                           ExpActivation(), nn.MaxPool2d((1, 3), padding=(0, 1)), nn.Dropout(0.2), Flip(),
                           nn.Conv2d(3, 2, (1, 3)), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.GELU(), nn.Linear(2, 1))
    model = interpkit.load(module, layout="NC1L", length=30)
    assert [i.kind for i in model.layers()] == ["identity", "conv", "activation", "activation", "maxpool", "dropout",
                                                "unknown", "conv", "global_pool", "flatten", "activation", "dense"]
    geometry = [(g.receptive_field, g.jump, g.start) for g in receptive_fields(model.layers())[:6]]
    assert geometry == [(1, 1, 0), (5, 1, -2), (5, 1, -2), (5, 1, -2), (7, 3, -3), (7, 3, -3)]
    assert receptive_fields(model.layers())[7].is_global  # above the unknown Flip
    A = model.activations(random_one_hot(2, 30), "4")
    assert A.shape == (2, 3, 10) and (A > 0).all()  # exp before the pool: positive

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.lstm, self.head = nn.Conv1d(4, 6, 3), nn.LSTM(6, 5, batch_first=True), nn.Linear(5, 2)

        def forward(self, x):
            out, _ = self.lstm(self.conv(x).transpose(1, 2))
            return self.head(out[:, -1])

    recurrent = Recurrent()
    model = interpkit.load(recurrent)
    assert [(i.name, i.kind, i.channels) for i in model.layers()] == [("conv", "conv", 6), ("lstm", "recurrent", 5),
                                                                      ("head", "dense", 2)]
    X = random_one_hot(2, 20)
    with torch.no_grad():
        expected = recurrent.lstm(recurrent.conv(torch.from_numpy(X)).transpose(1, 2))[0].transpose(1, 2)
    np.testing.assert_allclose(model.activations(X, "lstm"), expected.numpy(), rtol=1e-6)


def test_activations_in_both_layouts_equal_the_modules_own_outputs():
    ncl, ncl1 = (interpkit.load(basset_like(layout), length=60) for layout in ("NCL", "NCL1"))
    x = torch.from_numpy(X60)
    with torch.no_grad():
        net = basset_like().eval()
        expected = {str(i): net[: i + 1](x).numpy() for i in (0, 3, 4, 7, 9)}
    for name, value in expected.items():
        value = value if value.ndim == 3 else value[:, :, None]
        np.testing.assert_allclose(ncl.activations(X60, name), value, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ncl1.activations(X60, name), value, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ncl.activations(X60, "2", pre_activation=True), ncl.activations(X60, "1"))
    pools = ncl.pool_inputs(X60, "7")
    assert list(pools) == ["3", "7"]
    np.testing.assert_array_equal(pools["7"], ncl.activations(X60, "6"))
    assert ncl.pool_inputs(X60, "0") == {}


def test_neuron_is_the_activation_at_its_window():
    # Oracle: the activation of the full sequence at the output position whose window starts at a.
    model = interpkit.load(basset_like(), length=60)  # fixed length: windows are embedded in an all-N input
    free = interpkit.load(nn.Sequential(*list(basset_like())[:8]), output=OutputReduction())  # any length
    for layer, position in (("0", 5), ("3", 4), ("4", 6), ("7", 3)):
        index = [info.name for info in model.layers()].index(layer)
        geom = receptive_fields(model.layers())[index]
        begin, end = geom.window(position)
        expected = model.activations(X60, layer)[:, 2, position]
        for m in (model, free):
            np.testing.assert_allclose(m.neuron(layer, 2, X60[:, :, begin:end]), expected, rtol=1e-5, atol=1e-6)


def test_neuron_gradient_of_first_convolution_is_its_kernel():
    module = basset_like()
    model = interpkit.load(module, length=60)
    G = model.neuron_gradient("0", 3, X60[:, :, 10:17])
    np.testing.assert_allclose(G, np.broadcast_to(module[0].weight[3].detach().numpy(), G.shape), rtol=1e-6)
    # Deeper: autograd on the raw module at the same window and position.
    W = X60[:2, :, 0:21]
    x = torch.zeros(2, 4, 60)
    x[:, :, :21] = torch.from_numpy(W)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(module.eval()[:5](x)[:, 1, 2].sum(), x)
    np.testing.assert_allclose(model.neuron_gradient("4", 1, W), grad[:, :, :21].numpy(), rtol=1e-5, atol=1e-7)


def test_packed_neurons_equal_one_window_per_input():
    # Oracle: each window alone in an all-N 100-bp input, the activation at its output position and
    # autograd on the raw module. The twin network (tests/twins.py) packs conv1 (RF 7) 14 windows per
    # input, conv2 ("same", RF 21, jump 3, position 2 at offset 0) and pool2 (RF 24, jump 6) 4 each; a
    # stride-3 pool of 2 under a padded conv has R = 14 < S = 15 (1-bp gaps), 6 per input.
    twin = twins.torch_twin()
    gapped = nn.Sequential(nn.Conv1d(4, 5, 7), nn.ReLU(), nn.MaxPool1d(2, stride=3), nn.Conv1d(5, 3, 3, padding=1))
    cases = [(twin, "conv1", 1, 7, 14), (twin, "conv2", 5, 21, 4), (twin, "pool2", 8, 24, 4),
             (gapped.eval(), "3", 4, 14, 6)]
    for module, layer, depth, R, per in cases:
        model = interpkit.load(module, length=twins.LENGTH, output=None if module is twin else OutputReduction())

        def autograd(X, position, module=module, depth=depth):
            x = torch.from_numpy(X).requires_grad_(True)
            module[:depth](x)[:, 2, position].sum().backward()
            return x.grad.numpy()

        twins.check_packed_neuron(model, layer, R, per, autograd)


def test_repeated_module_calls_get_numbered_rows():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv1d(4, 5, 3), nn.Conv1d(5, 5, 3)
            self.relu, self.pool = nn.ReLU(), nn.MaxPool1d(2)

        def forward(self, x):
            return self.pool(self.relu(self.conv2(self.pool(self.relu(self.conv1(x)))))).mean(dim=2)

    module = Shared()
    model = interpkit.load(module)
    assert [i.name for i in model.layers()] == ["conv1", "relu", "pool", "conv2", "relu#2", "pool#2"]
    assert [g.receptive_field for g in receptive_fields(model.layers())] == [3, 3, 4, 8, 8, 10]
    X = random_one_hot(2, 30)
    with torch.no_grad():
        expected = module.pool(module.relu(module.conv2(module.pool(module.relu(module.conv1(torch.from_numpy(X)))))))
    np.testing.assert_allclose(model.activations(X, "pool#2"), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("check", PREDICTOR_CHECKS + PROBE_CHECKS, ids=check_id)
@pytest.mark.parametrize("case", ["NCL", "NCL1", "openspliceai80"])
def test_conformance(check, case, spliceai80):
    if case == "openspliceai80":
        model = interpkit.load(spliceai80, output=OutputReduction(window=(10, 30), reduce="max", channels=(1, 2)))
        X = random_one_hot(4, 80 + 40, random_state=5)
    else:
        model, X = interpkit.load(basset_like(case), length=60), X60
    check(model, X)


# -- real checkpoints ------------------------------------------------------------------------------
#: Splice sites the 80-nt model calls with high confidence in GRCh37 chr10:0-110,000 (0-based positions of the
#: first exon base after an AG acceptor / the last exon base before a GT donor).
ACCEPTOR, DONOR = 94950, 90461


def test_openspliceai_80nt_per_position_outputs_on_real_sequence(genome, spliceai80):
    # 2,000 positions as 2,000 windows of 81 bp (80 nt of context), each reduced to its single position;
    # the oracle is the raw module run once on the whole 2,080-bp stretch (receptive field 81 bp).
    start = 93_000
    X = np.stack([one_hot(genome[p - 40: p + 41]) for p in range(start, start + 2000)])
    model = interpkit.load(spliceai80, output=OutputReduction(reduce="center"))
    y = model.predict(X)
    whole = raw(spliceai80, one_hot(genome[start - 40: start + 2040])[None])[0].T
    np.testing.assert_allclose(y, whole, atol=2e-6)
    np.testing.assert_allclose(y.sum(axis=1), 1, atol=1e-5)  # softmax over [neither, acceptor, donor]
    ag = np.array([genome[p - 2: p] == "AG" for p in range(start, start + 2000)])
    gt = np.array([genome[p + 1: p + 3] in ("GT", "GC") for p in range(start, start + 2000)])  # GC: minor introns
    assert y[ag, 1].mean() > 100 * y[~ag, 1].mean() and y[gt, 2].mean() > 100 * y[~gt, 2].mean()
    assert ag[y[:, 1] > 0.01].all() and gt[y[:, 2] > 0.01].all()


def test_openspliceai_splice_sites_need_their_dinucleotides(genome, spliceai80):
    # Known behaviour: a canonical acceptor needs the AG before it and a donor the GT after it.
    model = interpkit.load(spliceai80, output=OutputReduction(reduce="center"))

    def around(site, mutate=None):
        seq = list(genome[site - 40: site + 41])
        for offset, base in (mutate or {}).items():
            seq[40 + offset] = base
        return one_hot("".join(seq))

    X = np.stack([around(ACCEPTOR), around(ACCEPTOR, {-2: "C", -1: "C"}), around(DONOR), around(DONOR, {1: "C", 2: "A"})])
    y = model.predict(X)
    assert genome[ACCEPTOR - 2: ACCEPTOR] == "AG" and genome[DONOR + 1: DONOR + 3] == "GT"
    assert y[0, 1] > 0.1 and y[1, 1] < y[0, 1] / 1000
    assert y[2, 2] > 0.5 and y[3, 2] < y[2, 2] / 1000
    G = model.gradient(X[:1], 1)  # the acceptor call leans on its AG: largest |gradient| near the site
    assert abs(np.abs(G[0]).sum(axis=0).argmax() - 40) <= 3


def test_openspliceai_400nt_loads_strictly_and_matches_raw(shared, genome):
    module = load_strict(OpenSpliceAI(400), shared / CHECKPOINTS / "openspliceai_mane/model_400nt_rs10.pt")
    rule = OutputReduction(reduce="max", channels=(1, 2))
    X = np.stack([one_hot(genome[s - 200: s + 201]) for s in (ACCEPTOR, DONOR, 50_000)])
    model = interpkit.load(module, output=rule)
    y = model.predict(X)
    np.testing.assert_allclose(y, rule.apply(raw(module, X)), atol=1e-6)
    assert y[0, 0] > 10 * y[2, 0] and y[1, 1] > 10 * y[2, 1]  # real sites far above an intergenic position


def test_pangolin_p_splice_at_real_sites(shared, genome):
    module = load_strict(Pangolin(), shared / CHECKPOINTS / "pangolin/final.1.0.3.v2")
    half, flank = PANGOLIN_CONTEXT // 2, 50
    X = np.stack([one_hot(genome[s - half - flank: s + half + flank + 1]) for s in (88_785, DONOR)])
    raw_y = raw(module, X)
    assert raw_y.shape == (2, 12, 2 * flank + 1) and raw_y.min() >= 0 and raw_y.max() <= 1
    np.testing.assert_allclose(raw_y[:, [0, 3, 6, 9]] + raw_y[:, [1, 4, 7, 10]], 1, atol=1e-5)
    rule = OutputReduction(reduce="max", channels=PANGOLIN_P_SPLICE)
    model = interpkit.load(module, output=rule)
    y = model.predict(X)
    np.testing.assert_allclose(y, rule.apply(raw_y), atol=1e-6)
    assert ((y >= 0) & (y <= 1)).all()
    heart = raw_y[:, 1]  # heart P(splice) (background about 0.05): each site is the peak of its 101 positions
    assert (heart.argmax(axis=1) == flank).all() and heart[0, flank] > 0.5 and heart[1, flank] > 0.2


def test_explainn_motif_insertions(shared):
    assert "explainn" in interpkit.get_registry().models  # bundled: missing must fail, not skip
    from interpkit.sequences import dinucleotide_shuffle

    # Oracle (SOURCE.txt): output 0 is MAX (E-box CACGTG), 1 FOXA1 (forkhead TGTTTAC), 2 JUND (AP-1 TGACTCA).
    model = interpkit.load(shared / CHECKPOINTS / "explainn_tf_binding/model_epoch_best_4.pth", arch="explainn")
    background = dinucleotide_shuffle(random_one_hot(50, 200, random_state=7), n=1, random_state=0)[:, 0]
    base = model.predict(background)
    for output, motif in enumerate(("CACGTG", "TGTTTAC", "TGACTCA")):
        inserted = background.copy()
        inserted[:, :, 97: 97 + len(motif)] = one_hot(motif)
        gain = (model.predict(inserted) - base).mean(axis=0)
        assert gain[output] > 0 and gain.argmax() == output, (motif, gain)


# -- errors ----------------------------------------------------------------------------------------
def test_torch_backend_raises(tmp_path):
    model = interpkit.load(basset_like(), length=60)

    class BothStrands(nn.Module):  # doubles the batch inside (Kipoi DeepSEA's ConcatenateRC)
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 2, 5)

        def forward(self, x):
            y = self.conv(torch.cat([x, x.flip(1, 2)])).amax(dim=2)
            return (y[: len(x)] + y[len(x):]) / 2

    both = interpkit.load(BothStrands())
    cases = [
        (lambda: both.activations(X60, "conv"), InputError, "batch size 12 for 6 sequences"),
        (lambda: interpkit.load(nn.Sequential(nn.Linear(4, 2))), InputError, "no Conv1d/Conv2d layer.*layout="),
        (lambda: interpkit.load(nn.Conv1d(5, 2, 3)), InputError, "takes 5 channels, not 4"),
        (lambda: interpkit.load(nn.Conv2d(4, 2, (3, 3))), InputError, r"kernel \(3, 3\).*--layout"),
        (lambda: interpkit.load(basset_like(), layout="LNC"), InputError, "layout == 'LNC'"),
        (lambda: interpkit.load(basset_like(), length="60"), InputTypeError, "length must be int"),
        (lambda: interpkit.load(basset_like(), length=30), InputError, r"failed on a batch of shape \(2, 4, 30\)"),
        (lambda: interpkit.load(basset_like(), length=60, output="max"), InputError, "leave output= unset"),
        (lambda: interpkit.load(basset_like(), length=60, output_names=["a"]), InputError,
         r"1 output name\(s\) given for model Sequential, which has 3 outputs"),
        (lambda: interpkit.load(basset_like(), output_names=["a"], labels="x.txt"), InputError, "not both"),
        (lambda: interpkit.load(basset_like(), device="tpu"), InputError, "device == 'tpu'"),
        (lambda: interpkit.load(basset_like(), alphabet="ACGX"), InputError, "not an ordering"),
        (lambda: interpkit.load(basset_like(), extra_inputs={"z": [1.0]}), InputError, "not arguments"),
        (lambda: torch_load(42), InputTypeError, "not int"),
        (lambda: torch_load(tmp_path / "missing.pt"), MissingFileError, "missing.pt does not exist"),
        (lambda: torch_load(tmp_path), InputError, "is a directory"),
        (lambda: model.predict(X60[:, :, :50]), InputError, "needs 60 bp"),
        (lambda: model.gradient(X60, 3), InputError, r"target == 3, must be an int in \[0, 2\]"),
        (lambda: model.activations(X60, "conv9"), InputError, "no layer named 'conv9'"),
        (lambda: model.activations(X60, 10), InputError, "out of range"),
        (lambda: model.neuron("9", 0, X60), InputError, "sees the whole input"),
        (lambda: model.neuron("4", 6, X60[:, :, :21]), InputError, r"channel == 6, must be an int in \[0, 5\]"),
        (lambda: model.neuron("4", 0, X60[:, :, :20]), InputError, "W has length 20 bp but the model needs 21"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    labels = tmp_path / "labels.txt"
    labels.write_text("MAX\nFOXA1\nJUND\n")
    assert interpkit.load(basset_like(), length=60, labels=labels).output_names == ("MAX", "FOXA1", "JUND")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(spliceai80):
    X = random_one_hot(8, 120)
    rule = OutputReduction(window=(0, 40), reduce="max", channels=(1, 2))
    cpu, cuda = (interpkit.load(spliceai80, output=rule, device=d) for d in ("cpu", "cuda"))
    np.testing.assert_allclose(cuda.predict(X), cpu.predict(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cuda.gradient(X, 1), cpu.gradient(X, 1), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(cuda.activations(X, "final_conv"), cpu.activations(X, "final_conv"), rtol=1e-4,
                               atol=1e-5)
    assert next(spliceai80.parameters()).device.type == "cpu"  # moved for the call, moved back after


def test_non_involutive_alphabet_order_in_predict_and_gradient():
    # CGTA is not its own inverse (unlike AGCT), so a swapped permutation would fail here. The model's
    # channel j holds base "CGTA"[j]: feed the raw module X[:, [1, 2, 3, 0]].
    module = basset_like()
    model = interpkit.load(module, length=BASSET_LIKE_LENGTH, alphabet="CGTA")
    X = random_one_hot(4, BASSET_LIKE_LENGTH, random_state=8)
    x = torch.from_numpy(X[:, [1, 2, 3, 0]]).requires_grad_(True)
    raw = module.eval()(x)
    np.testing.assert_allclose(model.predict(X), raw.detach().numpy(), atol=1e-5)
    raw[:, 1].sum().backward()
    expected = np.empty_like(X)
    expected[:, [1, 2, 3, 0]] = x.grad.numpy()  # model channel j -> canonical channel "ACGT".index("CGTA"[j])
    np.testing.assert_allclose(model.gradient(X, 1), expected, atol=1e-5)


def test_neurons_use_a_cheaper_layout_only_where_it_changes_nothing():
    # A positional bias changes the values of a short input (and of packed windows) without failing; a
    # length assertion fails on short inputs. The first must fall back to one window per full-length input;
    # the second packs (its values do not depend on the position); a plain stack runs on the window alone.
    class Positional(nn.Module):
        def __init__(self, fixed: bool):
            super().__init__()
            self.fixed = fixed
            self.bias = nn.Parameter(torch.linspace(-1, 1, 60)[None, None])
            self.conv = nn.Conv1d(4, 3, 5)

        def forward(self, x):
            if self.fixed:
                assert x.shape[-1] == 60
                return self.conv(x)
            return self.conv(x + self.bias[..., -x.shape[-1]:])  # a short input gets the last columns

    W = random_one_hot(9, 5, random_state=4)
    for module, layout in ((Positional(fixed=False), (60, 1)), (Positional(fixed=True), (60, 12)),
                           (nn.Sequential(nn.Conv1d(4, 3, 5)), (5, 1))):
        model = interpkit.load(module.eval(), length=60, output=OutputReduction())
        X = np.zeros((len(W), 4, 60), np.float32)
        X[:, :, :5] = W
        np.testing.assert_allclose(model.neuron(0, 1, W), model.activations(X, 0)[:, 1, 0], rtol=1e-6, atol=1e-6)
        chosen = model._layouts[model.layers()[0].name]
        assert (chosen.length, chosen.per) == layout, module
