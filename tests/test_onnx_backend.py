"""The ONNX backend: real torch.onnx exports checked against the torch modules they came from.

Oracles: the torch module itself (predictions, forward-hook activations, autograd
gradients), onnxruntime's own outputs (for the torch translation of the graph), receptive
fields computed by hand from the layer sizes, and closed forms (a conv neuron's gradient
is its weight).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import torch.nn.functional as F
import twins
from interpkit_onnx.model import OnnxModel
from interpkit_onnx.session import cuda_status
from interpkit_onnx.to_torch import to_torch
from torch import nn

import interpkit
from interpkit import (
    Capability,
    CapabilityError,
    InputError,
    InterpkitError,
    InterpkitWarning,
    capabilities_of,
)
from interpkit.adapt import OutputReduction
from interpkit.cli import main
from interpkit.probe import receptive_fields
from interpkit.testing import PREDICTOR_CHECKS, PROBE_CHECKS, check_id, random_one_hot

L = 60


# -- torch models ------------------------------------------------------------------------
class BassetLike(nn.Module):
    """conv9-bn-relu-pool3, conv5(pad 2)-bn-relu-pool2, flatten, linear: 60 bp -> 3 outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu1, self.pool1 = nn.Conv1d(4, 16, 9), nn.BatchNorm1d(16), nn.ReLU(), \
            nn.MaxPool1d(3)
        self.conv2, self.bn2, self.relu2, self.pool2 = nn.Conv1d(16, 8, 5, padding=2), nn.BatchNorm1d(8), \
            nn.ReLU(), nn.MaxPool1d(2)
        self.flatten, self.fc = nn.Flatten(), nn.Linear(8 * 8, 3)
        for bn in (self.bn1, self.bn2):  # non-trivial running statistics, as after training
            nn.init.uniform_(bn.running_mean, -0.3, 0.3)
            nn.init.uniform_(bn.running_var, 0.5, 2.0)
            nn.init.uniform_(bn.weight, 0.5, 1.5)

    def features(self, x):
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        return self.pool2(self.relu2(self.bn2(self.conv2(x))))

    def forward(self, x):
        return self.fc(self.flatten(self.features(x)))


class BassetView(BassetLike):
    """The same network flattening with x.view(x.size(0), -1): a fixed-batch export bakes the batch in."""

    def forward(self, x):
        h = self.features(x)
        return self.fc(h.view(h.size(0), -1))


class ExpResidual(nn.Module):
    """exp(conv5) -> conv3 residual add -> relu -> pool2 -> global average -> linear: 2 outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(4, 8, 5, padding=2), nn.Conv1d(8, 8, 3, padding=1)
        self.pool, self.gap, self.fc = nn.MaxPool1d(2), nn.AdaptiveAvgPool1d(1), nn.Linear(8, 2)

    def forward(self, x):
        h = torch.exp(self.conv1(x))
        h = F.relu(h + self.conv2(h))
        return self.fc(self.gap(self.pool(h)).flatten(1))


class Zoo(nn.Module):
    """Channels-last input and most ops of the torch translation, for translation and geometry tests."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2, self.bn, self.ln = nn.Conv1d(4, 6, 5), nn.Conv1d(6, 6, 4), nn.BatchNorm1d(6), nn.LayerNorm(6)
        self.fc, self.M = nn.Linear(117, 5), nn.Parameter(torch.randn(5, 3))
        nn.init.uniform_(self.bn.running_mean, -0.5, 0.5)
        nn.init.uniform_(self.bn.running_var, 0.5, 2.0)

    def forward(self, x):  # x: (N, 40, 4)
        h = F.elu(self.c1(x.transpose(1, 2)))
        h = F.leaky_relu(self.bn(self.c2(F.pad(h, (2, 1)))), 0.1)
        h = F.avg_pool1d(F.max_pool1d(torch.clamp(h, -1, 2) + F.softplus(h), 3, 1, padding=1), 2)
        h = torch.tanh(h) * torch.sigmoid(h) - h / 3
        h = self.ln(h.transpose(1, 2)).transpose(1, 2)
        s = h[:, :, 1:-2]
        t = F.gelu(s.unsqueeze(1).squeeze(1)) + torch.sqrt(s ** 2 + 1) + torch.exp(-s.abs())
        z = torch.cat([h.mean(dim=2), F.adaptive_max_pool1d(h, 1).flatten(1), t.flatten(1), h.sum(dim=1)[:, :9],
                       F.adaptive_avg_pool1d(h, 1).reshape(h.shape[0], -1)], dim=1)
        w = F.relu(self.fc(z)) @ self.M
        return torch.softmax(w, dim=1) + torch.log_softmax(w, dim=1)


class DeepSEALike(nn.Module):
    """Conv2d over a (N, 4, 1, L) input with (1, k) kernels, as Kipoi's DeepSEA."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.pool, self.fc = nn.Conv2d(4, 6, (1, 7)), nn.MaxPool2d((1, 3)), nn.Linear(6 * 18, 2)

    def forward(self, x):
        return self.fc(self.pool(F.relu(self.conv(x))).flatten(1))


class TwoInputs(nn.Module):
    """A sequence and 3 per-sequence features (as Xpresso's half-lives)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv1d(4, 5, 7), nn.Linear(5 + 3, 2)

    def forward(self, x, feats):
        return self.fc(torch.cat([F.relu(self.conv(x)).amax(dim=2), feats], dim=1))


class PerPosition(nn.Module):
    """Two sigmoid tracks per position: output (N, 2, L)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 2, 5, padding=2)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


class DanQLike(nn.Module):
    """conv -> pool -> bidirectional LSTM: the LSTM's outputs hold the sequences on their third axis."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.pool = nn.Conv1d(4, 6, 5), nn.MaxPool1d(2)
        self.lstm, self.fc = nn.LSTM(6, 3, batch_first=True, bidirectional=True), nn.Linear(6, 1)

    def forward(self, x):
        out, _ = self.lstm(self.pool(F.relu(self.conv(x))).transpose(1, 2))
        return self.fc(out[:, -1])


class CumSum(nn.Module):
    """A graph with an op outside the torch translation (CumSum)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv1d(4, 4, 5), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.cumsum(F.relu(self.conv(x)), dim=2)[:, :, -1])


def export(module, path, *inputs, dynamic=True, names=("seq",)):
    """torch.onnx.export (TorchScript exporter: the dynamo one needs onnxscript), opset 17, BatchNorm kept."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), dynamo=False, opset_version=17, input_names=list(names),
                          training=torch.onnx.TrainingMode.PRESERVE,
                          dynamic_axes={n: {0: "N"} for n in names} if dynamic else None)
    return path


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """Torch modules (seeded, eval mode) under "<key>_module" and their ONNX exports under "<key>"."""
    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("onnx")
    basset = BassetLike().eval()
    view = BassetView().eval()
    view.load_state_dict(basset.state_dict())
    x, x_nlc, x_2d = torch.zeros(2, 4, L), torch.zeros(2, 40, 4), torch.zeros(2, 4, 1, L)
    exports = [
        ("basset", basset, (x,), {}),
        ("basset_fixed", basset, (x[:1],), {"dynamic": False}),  # batch fixed at 1, nn.Flatten
        ("basset_view", view, (x[:1],), {"dynamic": False}),  # batch 1 baked into Reshape(x, [1, -1])
        ("residual", ExpResidual().eval(), (x,), {}),
        ("zoo", Zoo().eval(), (x_nlc,), {}),
        ("deepsea", DeepSEALike().eval(), (x_2d,), {}),
        ("two", TwoInputs().eval(), (x, torch.zeros(2, 3)), {"names": ("seq", "feats")}),
        ("perpos", PerPosition().eval(), (x,), {}),
        ("cumsum", CumSum().eval(), (x,), {}),
        ("danq", DanQLike().eval(), (x,), {}),
    ]
    out = {}
    for key, module, example, options in exports:
        out[f"{key}_module"] = module
        out[key] = export(module, tmp / f"{key}.onnx", *example, **options)
    return out


@pytest.fixture(scope="module")
def X():
    return random_one_hot(7, L, random_state=1)


def torch_out(module, *xs):
    with torch.no_grad():
        return module(*[torch.from_numpy(np.ascontiguousarray(x)) for x in xs]).numpy()


def torch_grad(module, x, select):
    xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    select(module(xt)).sum().backward()
    return xt.grad.numpy()


# -- predictions and adaptation --------------------------------------------------------------
@pytest.mark.parametrize("key", ["basset", "residual", "basset_fixed", "basset_view"])
def test_predictions_equal_torch(nets, X, key):
    model = interpkit.load(nets[key])
    assert isinstance(model, OnnxModel) and model.input_spec.layout == "NCL" and model.input_spec.length == L
    y = model.predict(X)
    assert y.dtype == np.float32 and y.shape == (7, len(model.output_names))
    np.testing.assert_allclose(y, torch_out(nets[f"{key}_module"], X), atol=1e-5)


def test_fixed_batch_files(nets, X):
    # Exported with batch 1: nn.Flatten keeps the batch free; x.view(x.size(0), -1) bakes Reshape(x, [1, -1]).
    free, baked = interpkit.load(nets["basset_fixed"]), interpkit.load(nets["basset_view"])
    assert onnx.load(nets["basset_view"]).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    assert free.batch_chunk is None and baked.batch_chunk == 1
    np.testing.assert_allclose(baked.predict(X, batch_size=4), free.predict(X), atol=1e-6)
    expected = torch_grad(nets["basset_module"], X, lambda y: y[:, 2])
    np.testing.assert_allclose(baked.gradient(X, 2), expected, atol=1e-4)


def test_default_export_fuses_batchnorm(nets, X, tmp_path):
    # torch.onnx.export's default (eval) mode folds each BatchNorm into the conv before it: the graph's conv
    # then outputs what the torch module's BatchNorm outputs.
    module = nets["basset_module"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(2, 4, L),), str(tmp_path / "fused.onnx"), dynamo=False,
                          opset_version=13, dynamic_axes={"input": {0: "N"}}, input_names=["input"])
    model = interpkit.load(tmp_path / "fused.onnx")
    assert [info.kind for info in model.layers()][:3] == ["conv", "activation", "maxpool"]
    np.testing.assert_allclose(model.predict(X), torch_out(module, X), atol=1e-5)
    conv = model.layers()[0].name
    np.testing.assert_allclose(model.activations(X, conv), hooked(module, ["bn1"], X)["bn1"], atol=1e-5)


def test_model_proto_and_layouts(nets, X):
    proto = onnx.load(nets["basset_fixed"])
    model = interpkit.load(proto)  # claimed by type, copied
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    np.testing.assert_allclose(model.predict(X), torch_out(nets["basset_module"], X), atol=1e-5)
    # (N, 4, 1, L) Conv2d model: layout NC1L from the declared shape; alphabet order handled by the backend.
    deepsea = interpkit.load(nets["deepsea"])
    assert deepsea.input_spec.layout == "NC1L"
    np.testing.assert_allclose(deepsea.predict(X), torch_out(nets["deepsea_module"], X[:, :, None]), atol=1e-5)
    agct = interpkit.load(nets["deepsea"], alphabet="AGCT")
    assert agct.input_spec.model_alphabet == "AGCT"
    np.testing.assert_allclose(agct.predict(X), torch_out(nets["deepsea_module"], X[:, [0, 2, 1, 3], None]),
                               atol=1e-5)
    # Every axis symbolic: the layout comes from the first convolution's weight (C_in = 4), any length runs.
    module = nets["residual_module"]
    free = export(module, nets["residual"].parent / "free.onnx", torch.zeros(2, 4, L), names=("seq",))
    proto = onnx.load(free)
    for d, name in zip(proto.graph.input[0].type.tensor_type.shape.dim, ("N", "C", "L")):
        d.Clear()
        d.dim_param = name
    model = interpkit.load(proto)
    assert (model.input_spec.layout, model.input_spec.length) == ("NCL", None)
    for length in (40, 90):
        Xl = random_one_hot(3, length, random_state=length)
        np.testing.assert_allclose(model.predict(Xl), torch_out(module, Xl), atol=1e-5)
    # Channels-last model: layout NLC; gradients come back in canonical (N, 4, L).
    zoo, Xz = interpkit.load(nets["zoo"]), random_one_hot(5, 40, random_state=2)
    assert zoo.input_spec.layout == "NLC"
    expected = torch_grad(nets["zoo_module"], Xz.transpose(0, 2, 1), lambda y: y[:, 1]).transpose(0, 2, 1)
    np.testing.assert_allclose(zoo.gradient(Xz, 1), expected, atol=1e-4)


def test_extra_inputs(nets, X):
    module = nets["two_module"]
    with pytest.warns(InterpkitWarning, match="feats"):
        zeros = interpkit.load(nets["two"])
    assert zeros.input_spec.extra_inputs == {"feats": (3,)}
    np.testing.assert_allclose(zeros.predict(X), torch_out(module, X, np.zeros((7, 3), np.float32)), atol=1e-5)
    feats = np.array([0.5, -1.0, 2.0], np.float32)
    model = interpkit.load(nets["two"], extra_inputs={"feats": feats})
    expected = torch_out(module, X, np.tile(feats, (7, 1)))
    np.testing.assert_allclose(model.predict(X), expected, atol=1e-5)
    xt = torch.from_numpy(X).requires_grad_(True)
    module(xt, torch.from_numpy(np.tile(feats, (7, 1))))[:, 0].sum().backward()
    np.testing.assert_allclose(model.gradient(X, 0), xt.grad.numpy(), atol=1e-4)


def test_per_position_output(nets, X):
    module = nets["perpos_module"]
    raw = torch_out(module, X)  # (N, 2, L)
    with pytest.warns(InterpkitWarning, match="output="):
        default = interpkit.load(nets["perpos"])
    np.testing.assert_allclose(default.predict(X), raw.mean(axis=2), atol=1e-6)
    model = interpkit.load(nets["perpos"], output="max:10:50@1")
    assert model.output_names == ("out0",) and model.output_reduction.channels == (1,)
    np.testing.assert_allclose(model.predict(X)[:, 0], raw[:, 1, 10:50].max(axis=1), atol=1e-6)
    expected = torch_grad(module, X, lambda y: y[:, 1, 10:50].amax(dim=1))
    np.testing.assert_allclose(model.gradient(X, 0), expected, atol=1e-5)


# -- layers, activations, neurons -------------------------------------------------------------
def test_layer_table_receptive_fields(nets):
    # By hand: conv9 (rf 9), pool3 (9 + 2 = 11, jump 3), conv5 pad 2 (11 + 4 * 3 = 23, start -2 * 3 = -6),
    # pool2 (23 + 1 * 3 = 26, jump 6); flatten and dense see the whole input.
    layers = interpkit.load(nets["basset"]).layers()
    table = {info.name: (info.kind, g.receptive_field, g.jump, g.start)
             for info, g in zip(layers, receptive_fields(layers))}
    assert table == {
        "/conv1/Conv": ("conv", 9, 1, 0), "/bn1/BatchNormalization": ("norm", 9, 1, 0),
        "/relu1/Relu": ("activation", 9, 1, 0), "/pool1/MaxPool": ("maxpool", 11, 3, 0),
        "/conv2/Conv": ("conv", 23, 3, -6), "/bn2/BatchNormalization": ("norm", 23, 3, -6),
        "/relu2/Relu": ("activation", 23, 3, -6), "/pool2/MaxPool": ("maxpool", 26, 6, -6),
        "/flatten/Flatten": ("flatten", None, None, None), "/fc/Gemm": ("dense", None, None, None),
    }
    assert [info.channels for info in layers] == [16, 16, 16, 16, 8, 8, 8, 8, 64, 3]
    # Residual: the Add merges exp(conv5 pad 2) (rf 5, start -2) and conv3 pad 1 above it (rf 7, start -3).
    res = interpkit.load(nets["residual"]).layers()
    geoms = {info.name: (g.receptive_field, g.jump, g.start) for info, g in zip(res, receptive_fields(res))}
    add = next(info for info in res if info.kind == "add")
    assert add.inputs == ("/Exp", "/conv2/Conv") and geoms[add.name] == (7, 1, -3)
    assert geoms["/pool/MaxPool"] == (8, 2, -3) and geoms["/gap/GlobalAveragePool"] == (None, None, None)


def test_layer_table_plumbing(nets):
    # Transpose of the NLC input keeps positions; the exported F.pad(h, (2, 1)) is folded into the next conv's
    # left padding (2); cropping positions with a Slice is "unknown".
    layers = interpkit.load(nets["zoo"]).layers()
    info = {i.name: (i.kind, i.padding, g.receptive_field, g.start) for i, g in zip(layers, receptive_fields(layers))}
    assert info["/Transpose"] == ("identity", 0, 1, 0) and info["/c1/Conv"] == ("conv", 0, 5, 0)
    assert info["/c2/Conv"] == ("conv", 2, 8, -2) and "/Pad" not in info
    assert info["/MaxPool"] == ("maxpool", 1, 10, -3) and info["/AveragePool"][2:] == (11, -3)
    assert info["/Slice_2"][0] == "unknown" and info["/ReduceMean"][0] == "global_pool"
    deepsea = interpkit.load(nets["deepsea"]).layers()
    assert [(g.receptive_field, g.jump) for g in receptive_fields(deepsea)[:3]] == [(7, 1), (7, 1), (9, 3)]


def hooked(module, names, x):
    """Forward-hook outputs of named submodules."""
    found, handles = {}, []
    for name in names:
        sub = module.get_submodule(name)
        handles.append(sub.register_forward_hook(lambda m, i, o, name=name: found.__setitem__(name, o.detach())))
    try:
        torch_out(module, x)
    finally:
        for handle in handles:
            handle.remove()
    return {k: v.numpy() for k, v in found.items()}


@pytest.mark.parametrize("key, names", [
    ("basset", {"conv1": "/conv1/Conv", "pool1": "/pool1/MaxPool", "conv2": "/conv2/Conv", "pool2": "/pool2/MaxPool",
                "relu2": "/relu2/Relu"}),
    ("residual", {"conv1": "/conv1/Conv", "conv2": "/conv2/Conv", "pool": "/pool/MaxPool", "fc": "/fc/Gemm"}),
])
def test_activations_equal_forward_hooks(nets, X, key, names):
    model = interpkit.load(nets[key])
    expected = hooked(nets[f"{key}_module"], list(names), X)
    for module_name, layer in names.items():
        A = model.activations(X, layer, batch_size=3)
        want = expected[module_name] if expected[module_name].ndim == 3 else expected[module_name][:, :, None]
        assert A.dtype == np.float32
        np.testing.assert_allclose(A, want, atol=1e-5, err_msg=layer)
    if key == "basset":  # pre-activation of relu2 = the BatchNorm output; max-pool inputs = relu outputs
        bn2 = hooked(nets["basset_module"], ["bn2", "relu1"], X)
        np.testing.assert_allclose(model.activations(X, "/relu2/Relu", pre_activation=True), bn2["bn2"], atol=1e-5)
        pools = model.pool_inputs(X, "/conv2/Conv")
        assert list(pools) == ["/pool1/MaxPool"]
        np.testing.assert_allclose(pools["/pool1/MaxPool"], bn2["relu1"], atol=1e-5)
        assert list(model.pool_inputs(X, "/fc/Gemm")) == ["/pool1/MaxPool", "/pool2/MaxPool"]


def test_neurons(nets, X):
    model = interpkit.load(nets["basset"])
    W = X[:, :, :9]
    np.testing.assert_allclose(model.neuron("/conv1/Conv", 3, W), model.activations(X, 0)[:, 3, 0], atol=1e-5)
    # Closed form: a conv unit is linear in its window, so its gradient is its weight.
    weight = nets["basset_module"].conv1.weight[3].detach().numpy()
    np.testing.assert_allclose(model.neuron_gradient("/conv1/Conv", 3, W), np.broadcast_to(weight, W.shape),
                               atol=1e-6)
    # pool2's window is 26 bp, starting at -6: the first whole window begins at 0 (output position 1).
    W26 = X[:, :, 6:32]
    np.testing.assert_allclose(model.neuron("/pool2/MaxPool", 5, W26), model.activations(X, "/pool2/MaxPool")[:, 5, 2],
                               atol=1e-5)
    embedded = np.zeros_like(X)
    embedded[:, :, :26] = W26
    xt = torch.from_numpy(embedded).requires_grad_(True)
    nets["basset_module"].features(xt)[:, 5, 1].sum().backward()
    expected = xt.grad.numpy()[:, :, :26]
    np.testing.assert_allclose(model.neuron_gradient("/pool2/MaxPool", 5, W26), expected, atol=1e-5)


def test_packed_neurons_equal_one_window_per_input(tmp_path):
    # Oracle: each window alone in an all-N 100-bp input, the activation at its output position and
    # autograd on the exported torch module. The twin network (tests/twins.py) packs conv1 (RF 7) 14
    # windows per input, conv2 ("same", RF 21, jump 3, position 2 at offset 0) and pool2 (RF 24, jump 6)
    # 4 each; a stride-3 pool of 2 under a padded conv has R = 14 < S = 15 (1-bp gaps), 6 per input.
    twin = twins.torch_twin()
    torch.manual_seed(1)
    gapped = nn.Sequential(nn.Conv1d(4, 5, 7), nn.ReLU(), nn.MaxPool1d(2, stride=3),
                           nn.Conv1d(5, 3, 3, padding=1)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        twin_path = twins.onnx_twin(twin, tmp_path / "twin.onnx")
    gapped_path = export(gapped, tmp_path / "gapped.onnx", torch.zeros(2, 4, twins.LENGTH))
    cases = [(twin, twin_path, "/conv1/Conv", 1, 7, 14), (twin, twin_path, "/conv2/Conv", 5, 21, 4),
             (twin, twin_path, "/pool2/MaxPool", 8, 24, 4), (gapped, gapped_path, "/3/Conv", 4, 14, 6)]
    for module, path, layer, depth, R, per in cases:
        model = interpkit.load(path, output=None if module is twin else OutputReduction())

        def autograd(X, position, module=module, depth=depth):
            x = torch.from_numpy(X).requires_grad_(True)
            module[:depth](x)[:, 2, position].sum().backward()
            return x.grad.numpy()

        twins.check_packed_neuron(model, layer, R, per, autograd, atol=1e-5)


# -- gradients and the torch translation ------------------------------------------------------
@pytest.mark.parametrize("key", ["basset", "residual"])
def test_gradient_equals_autograd(nets, X, key):
    model = interpkit.load(nets[key])
    for target in range(len(model.output_names)):
        expected = torch_grad(nets[f"{key}_module"], X, lambda y, t=target: y[:, t])
        np.testing.assert_allclose(model.gradient(X, target, batch_size=3), expected, atol=1e-4)


@pytest.mark.parametrize("key, shape", [("basset", (5, 4, L)), ("residual", (5, 4, L)), ("zoo", (5, 40, 4)),
                                        ("deepsea", (5, 4, 1, L))])
def test_translation_equals_onnxruntime(nets, key, shape):
    import onnxruntime as ort

    x = np.random.default_rng(0).random(shape, dtype=np.float32)  # beyond one-hot: every op in its range
    session = ort.InferenceSession(str(nets[key]), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"seq": x})[0]
    with torch.no_grad():
        got = to_torch(onnx.load(nets[key]))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, reference, atol=1e-5)


def test_unsupported_op_has_no_gradient(nets, X):
    model = interpkit.load(nets["cumsum"])
    assert Capability.GRADIENT not in capabilities_of(model)
    assert capabilities_of(model) == {Capability.PREDICT, Capability.LAYERS, Capability.NEURON,
                                      Capability.POOL_INPUTS}
    np.testing.assert_allclose(model.predict(X), torch_out(nets["cumsum_module"], X), atol=1e-5)
    with pytest.raises(CapabilityError, match="CumSum"):
        model.gradient(X, 0)
    with pytest.raises(CapabilityError, match="CumSum"):
        model.neuron_gradient("/conv/Conv", 0, X[:, :, :5])
    assert model.neuron("/conv/Conv", 0, X[:, :, :5]).shape == (7,)


def test_recurrent_layers(nets, X):
    # The exported LSTM reads (L, N, C) and outputs (L, 2, N, 3): activations come back per sequence,
    # flattened to (N, L' * 2 * 3, 1); the LSTM has no torch translation, so no gradients.
    model = interpkit.load(nets["danq"])
    kinds = {info.name: info.kind for info in model.layers()}
    assert kinds["/lstm/LSTM"] == "recurrent" and "LSTM" in model.gradient_problem
    np.testing.assert_allclose(model.predict(X), torch_out(nets["danq_module"], X), atol=1e-5)
    xt = torch.from_numpy(X)
    with torch.no_grad():
        h = nets["danq_module"].pool(F.relu(nets["danq_module"].conv(xt))).transpose(1, 2)
        out, _ = nets["danq_module"].lstm(h)  # (N, L', 2 * 3), forward then backward direction
    A = model.activations(X, "/lstm/LSTM")  # onnx Y: (L', 2, N, 3) -> (N, L', 2, 3) -> (N, L' * 6, 1)
    assert A.shape == (7, out.shape[1] * 6, 1)
    np.testing.assert_allclose(A[:, :, 0], out.numpy().reshape(7, -1), atol=1e-5)


@pytest.mark.parametrize("motif, output", [("CACGTG", 0), ("TGTTTAC", 1), ("TGACTCA", 2)])
def test_explainn_exported_to_onnx(shared, tmp_path, motif, output):
    # Acceptance: the real ExplaiNN checkpoint (loaded by the explainn architecture plugin through the
    # torch backend), exported to ONNX, predicts as the torch model; its known motifs raise their own
    # output (MAX E-box CACGTG -> 0, FOXA1 forkhead TGTTTAC -> 1, JUND AP-1 TGACTCA -> 2).
    assert "explainn" in interpkit.get_registry().models  # bundled: missing must fail, not skip
    from interpkit.sequences import one_hot_encode

    reference = interpkit.load(shared / "checkpoints" / "explainn_tf_binding" / "model_epoch_best_4.pth",
                               arch="explainn")
    model = interpkit.load(export(reference.module, tmp_path / "explainn.onnx", torch.zeros(2, 4, 200)))
    assert model.input_spec.length == 200 and len(model.output_names) == 3
    X = random_one_hot(64, 200, random_state=5)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), atol=1e-5)
    np.testing.assert_allclose(model.gradient(X[:8], output), reference.gradient(X[:8], output), atol=1e-4)
    planted = X.copy()
    site = one_hot_encode([motif])[0]
    planted[:, :, 97:97 + site.shape[1]] = site
    gain = model.predict(planted) - model.predict(X)
    assert gain[:, output].mean() > 1.0 and gain.mean(axis=0).argmax() == output, gain.mean(axis=0)


# -- conformance, CLI, errors -------------------------------------------------------------
@pytest.mark.parametrize("check", PREDICTOR_CHECKS + PROBE_CHECKS, ids=check_id)
@pytest.mark.parametrize("key", ["basset", "residual", "basset_view", "deepsea", "cumsum", "danq"])
def test_conformance(nets, X, check, key):
    check(interpkit.load(nets[key]), X[:4])


def test_cli_info(nets, capsys):
    assert main(["info", str(nets["basset"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "onnx" and info["input"]["layout"] == "NCL" and info["input"]["length"] == L
    assert info["outputs"] == ["out0", "out1", "out2"] and "gradient" in info["capabilities"]
    assert [(r["name"], r["receptive_field"]) for r in info["layers"] if r["kind"] in ("conv", "maxpool")] == [
        ("/conv1/Conv", 9), ("/pool1/MaxPool", 11), ("/conv2/Conv", 23), ("/pool2/MaxPool", 26)]
    assert main(["info", str(nets["cumsum"])]) == 0
    text = capsys.readouterr().out
    assert "backend: onnx" in text and "/conv/Conv" in text and "gradient" not in text.split("capabilities:")[1]


def test_no_noise_on_stderr(nets, X, capfd, monkeypatch):
    # onnxruntime-gpu lists the CUDA provider even where it cannot start, and says so in red on stderr;
    # the probe must find out quietly. Pretend a GPU exists so that the provider is really tried.
    from interpkit_onnx import session

    monkeypatch.setattr(session, "_gpu_count", lambda: 1)
    cuda_status.cache_clear()
    try:
        usable, reason = cuda_status()
        model = interpkit.load(nets["basset"])
        model.predict(X)
    finally:
        cuda_status.cache_clear()
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert model.device == ("cuda" if usable else "cpu") and (usable or "libraries" in reason)
    # The probe model itself must be readable by this onnxruntime (else every GPU would count as unusable).
    ort = pytest.importorskip("onnxruntime")
    probe = ort.InferenceSession(session._identity_model().SerializeToString(), providers=["CPUExecutionProvider"])
    assert probe.run(None, {"x": np.ones(1, np.float32)})[0].tolist() == [1.0]


def test_onnx_backend_raises(nets, X, tmp_path):
    path = nets["basset"]
    data = path.read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.onnx").write_text("not a model\n")
    for bad in ("truncated.onnx", "text.onnx"):
        with pytest.raises(InputError, match=bad.replace(".", r"\.")):
            interpkit.load(tmp_path / bad)
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    bad_options = [
        ({"layout": "NLC"}, "not layout NLC"),
        ({"layout": "NCHW"}, "layout == 'NCHW'"),
        ({"alphabet": "ACGX"}, "not an ordering"),
        ({"length": 100}, "fixes the sequence length at 60"),
        ({"extra_inputs": {"nope": 1}}, "does not have"),
        ({"custom_op_libraries": ["ops.so"]}, "trust=True"),
        ({"device": "tpu"}, "device == 'tpu'"),
        ({"output_names": ["a"]}, "3 outputs"),
        ({"output_names": ["a", "b", "c"], "labels": labels}, "not both"),
        ({"output": "mean"}, "drop output="),
        ({"graph_output": "nope"}, "no output 'nope'"),
        ({"sequence_input": "nope"}, "no input 'nope'"),
        ({"batch_size": 0}, "batch_size == 0"),
        ({"extra_inputs": [1, 2]}, "must be a dict"),
    ]
    for options, message in bad_options:
        with pytest.raises(InterpkitError, match=message):
            interpkit.load(path, **options)
    assert interpkit.load(path, labels=labels).output_names == ("a", "b", "c")
    model = interpkit.load(path)
    with pytest.raises(InputError, match="needs 60 bp"):
        model.predict(X[:, :, :50])
    with pytest.raises(InputError, match="target == 3"):
        model.gradient(X, 3)
    with pytest.raises(InputError, match="sees the whole input"):
        model.neuron("/fc/Gemm", 0, X)
    with pytest.raises(InputError, match="length 10 bp but the model needs 9"):
        model.neuron("/conv1/Conv", 0, X[:, :, :10])
    with pytest.raises(InputError, match="channel == 16"):
        model.neuron("/conv1/Conv", 16, X[:, :, :9])
    if not cuda_status()[0]:
        with pytest.raises(CapabilityError, match="device='cuda'"):
            interpkit.load(path, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_status()[0], reason=f"onnxruntime cannot use CUDA here: {cuda_status()[1]}")
def test_cuda_equals_cpu(nets, X):
    cpu, gpu = interpkit.load(nets["basset"], device="cpu"), interpkit.load(nets["basset"], device="cuda")
    assert "CUDAExecutionProvider" in gpu.providers
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), atol=1e-4)
    np.testing.assert_allclose(gpu.activations(X, "/pool2/MaxPool"), cpu.activations(X, "/pool2/MaxPool"), atol=1e-4)
    np.testing.assert_allclose(gpu.gradient(X, 0), cpu.gradient(X, 0), atol=1e-4)


def test_same_padding_with_stride_two_places_neuron_windows(tmp_path):
    # A SAME_UPPER conv with stride 2 on 100 bp pads 0 on the left (1 on the right): neuron()
    # windows must then line up with the activations exactly.
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(3, 4, 3)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3], strides=[2], auto_pad="SAME_UPPER",
                            name="conv")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 100])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 50])], [w])
    path = tmp_path / "same.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    model = interpkit.load(path, output="max")
    assert model.layers()[0].padding == 0
    X = random_one_hot(4, 100)
    np.testing.assert_allclose(model.neuron("conv", 1, X[:, :, :3]), model.activations(X, "conv")[:, 1, 0],
                               atol=1e-5)
