"""ResidualBind architecture (PyTorch port of the Keras reference) and its loader.

Oracles: the parameter counts of the reference's Keras model (research/gia_residualbind.md section 1.1,
``model.summary()`` of p-koo/residualbind at HEAD); receptive fields in closed form (1 + (11 - 1) + sum of
2 d over the dilations, then + 9 for the 10-wide pool); a hand-set network whose outputs are base counts
in one pool window (which pins Keras' channels-last flatten order); the module itself for round trips
through files, the sidecar and the ONNX backend; channel 3 being U or T alike for RNA and DNA input.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from interpkit_residualbind import build as plugin_build
from interpkit_residualbind.architecture import HYPERPARAMETERS, ResidualBind, build
from interpkit_residualbind.model import infer_hyperparameters, load_module

import interpkit
from interpkit import InputError, InputTypeError, InterpkitWarning, one_hot_encode
from interpkit.testing import PREDICTOR_CHECKS, PROBE_CHECKS, check_id, random_one_hot

assert "torch" in interpkit.get_registry().backends, [p.error for p in interpkit.get_registry().plugins]
assert "residualbind" in interpkit.get_registry().models, [p.error for p in interpkit.get_registry().plugins]


def _randomise_norms(module, seed=0):
    """Non-trivial BatchNorm statistics and affine parameters, so that a wrong key or order shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return module


def _module(seed=0, **hyperparameters):
    torch.manual_seed(seed)
    return _randomise_norms(build(**hyperparameters), seed).eval()


def _out(module, X, profiles=None):
    with torch.no_grad():
        x = torch.from_numpy(X)
        return module(x, None if profiles is None else torch.from_numpy(profiles)).numpy()


@pytest.fixture(scope="module")
def rb41(tmp_path_factory):
    """A 4-channel, L = 41 ResidualBind (eval mode) and its state_dict file."""
    module = _module(1, input_length=41)
    path = tmp_path_factory.mktemp("rb") / "rb41.pth"
    torch.save(module.state_dict(), path)
    return module, path


@pytest.fixture(scope="module")
def predictor(rb41):
    return interpkit.load(rb41[1], arch="residualbind", length=41)


# -- architecture -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "length, channels, trainable, total",
    [(41, 4, 214_849, 216_321), (41, 6, 216_961, 218_433), (41, 9, 220_129, 221_601),
     (39, 4, 190_273, 191_745), (39, 6, 192_385, 193_857), (39, 9, 195_553, 197_025)],
)
def test_parameter_counts_equal_the_keras_reference(length, channels, trainable, total):
    # research/gia_residualbind.md section 1.1: trainable / non-trainable (BN moving mean + variance) / total.
    model = ResidualBind(length, channels)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == trainable
    running = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert running == 1_472 and trainable + running == total


def test_layers_as_the_reference():
    model = ResidualBind()
    assert model.options == HYPERPARAMETERS and model.options["dilations"] == (1, 2, 4, 8)
    assert [layer.conv.dilation[0] for layer in model.residual.layers] == [1, 2, 4, 8]
    assert [layer.conv.padding[0] for layer in model.residual.layers] == [1, 2, 4, 8]  # "same"
    assert model.conv.padding == (5,) and model.conv.bias is None and model.dense.bias is None
    assert model.output.bias is not None
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 6 and all(m.eps == 1e-3 and m.momentum == 0.01 for m in norms)  # Keras defaults
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == 6 and len({id(m) for m in relus}) == 6  # stem, 3 in the block, after add, dense
    drops = sorted(m.p for m in model.modules() if isinstance(m, torch.nn.Dropout))
    assert drops == [0.1, 0.1, 0.1, 0.1, 0.2, 0.5]
    assert model.dense.in_features == 4 * 96 and model.pool.kernel_size == model.pool.stride == (10,)
    assert not model.residual.layers[0].preactivate and all(m.preactivate for m in model.residual.layers[1:])


def test_keras_initialisation():
    # Glorot uniform: limit sqrt(6 / (fan_in + fan_out)), fan = channels x kernel width.
    model = plugin_build(input_length=41)
    assert model.training
    limit = np.sqrt(6 / (4 * 11 + 96 * 11))
    w = model.conv.weight.detach().abs()
    assert w.max() <= limit and w.max() > 0.9 * limit
    assert model.output.bias.abs().sum() == 0
    assert all(m.running_var.eq(1).all() for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))


@pytest.mark.parametrize("length, pooled", [(41, 4), (39, 3)])
def test_shapes(length, pooled):
    model = _module(0, input_length=length, num_classes=3)
    x = torch.from_numpy(random_one_hot(5, length, random_state=0))
    with torch.no_grad():
        assert model.features(x).shape == (5, 96, length)
        assert model.pool(model.features(x)).shape == (5, 96, pooled)
        assert model(x).shape == (5, 3)
    assert model.dense.in_features == pooled * 96


def test_flatten_is_channels_last():
    # Hand-set network: channel 5 of the first conv detects A, channel 7 detects C (centre tap, BN scale 1);
    # the residual convolutions are zero, so the block passes the stem through, and the pool averages 10 bp.
    # Output 0 reads (pool window 2, channel 5) = fraction of A in bp 20-29; output 1 reads (window 0,
    # channel 7) = fraction of C in bp 0-9. Keras' Flatten puts (p, c) at p * 96 + c.
    model = ResidualBind(41, num_classes=2).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.fill_(1)
                m.running_var.fill_(1 - 1e-3)  # (x - 0) / sqrt(var + eps) * 1 + 0 = x
        model.conv.weight[5, 0, 5] = 1
        model.conv.weight[7, 1, 5] = 1
        model.dense.weight[0, 2 * 96 + 5] = 1
        model.dense.weight[1, 0 * 96 + 7] = 1
        model.output.weight[0, 0] = model.output.weight[1, 1] = 1
    seqs = ["".join(np.random.RandomState(i).choice(list("ACGU"), 41)) for i in range(6)]
    expected = [[s[20:30].count("A") / 10, s[0:10].count("C") / 10] for s in seqs]
    got = _out(model, one_hot_encode(seqs, alphabet="ACGU"))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert len({tuple(e) for e in expected}) > 1  # the sequences tell positions apart


def test_profiles_are_extra_channels():
    # Oracle: with the first convolution's weights on channels 4-5 zeroed, a 6-channel model is the 4-channel
    # model holding its other weights, whatever the profiles are; with them non-zero, the profiles matter.
    model = _module(2, input_length=41, in_channels=6)
    X = random_one_hot(3, 41, random_state=3)
    profiles = np.random.RandomState(4).rand(3, 2, 41).astype(np.float32)
    assert not np.allclose(_out(model, X, profiles), _out(model, X, profiles * 0), atol=1e-4)
    sequence_only = ResidualBind(41, 4).eval()
    state = model.state_dict()
    sequence_only.load_state_dict({**state, "conv.weight": state["conv.weight"][:, :4]})
    with torch.no_grad():
        model.conv.weight[:, 4:] = 0
    np.testing.assert_allclose(_out(model, X, profiles), _out(sequence_only, X), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="pass profiles of shape"):
        _out(model, X)
    with pytest.raises(ValueError, match="no structure profiles"):
        _out(_module(0), X, profiles)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"kernel_size": 10}, InputError, "kernel_size == 10, must be odd"),
        ({"dilations": ()}, InputError, "non-empty sequence"),
        ({"dilations": (1, 0)}, InputError, r"dilations\[1\] == 0"),
        ({"in_channels": 3}, InputError, "in_channels == 3"),
        ({"input_length": 9}, InputError, "input_length == 9, must be >= 10"),
        ({"filter": 96}, InputError, "no hyper-parameter"),
        ({"filters": 9.5}, InputTypeError, "filters must be int"),
    ],
    ids=["even-kernel", "no-dilations", "dilation-0", "3-channels", "too-short", "unknown-name", "float-filters"],
)
def test_build_raises(options, error, match):
    with pytest.raises(error, match=match):
        build(**options)


# -- loader ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [41, 39])
def test_state_dict_file_round_trips_through_interpkit_load(tmp_path, length):
    module = _module(3, input_length=length, num_classes=2)
    path = tmp_path / "model.pth"
    torch.save(module.state_dict(), path)
    model = interpkit.load(path, arch="residualbind", length=length)
    assert model.input_spec.length == length and model.input_spec.layout == "NCL"
    assert model.input_spec.alphabet == "ACGU" and model.input_spec.model_alphabet is None
    assert len(model.output_names) == 2
    X = random_one_hot(9, length, random_state=length)
    y = model.predict(X)
    np.testing.assert_allclose(y, _out(module, X), atol=1e-6, rtol=0)
    assert np.ptp(y[:, 0]) > 1e-3  # not a constant network
    loaded = load_module(path, length=length)
    assert loaded.options == module.options and not loaded.training
    assert loaded.checkpoint_info["file"] == "model.pth" and len(loaded.checkpoint_info["md5"]) == 32


def test_hyperparameters_inferred_from_shapes(rb41):
    state = torch.load(rb41[1], map_location="cpu", weights_only=True)
    # 4 pooled positions x 96 filters fit L = 40 ... 49; the shortest is taken, dilations default to HEAD's.
    assert infer_hyperparameters(state) == {**HYPERPARAMETERS, "input_length": 40}
    assert load_module(state, length=49).input_length == 49
    three = _module(0, input_length=39, in_channels=9, dilations=(1, 2, 4), filters=32, kernel_size=7,
                    dense_units=64, num_classes=5).state_dict()
    assert infer_hyperparameters(three) == {
        **HYPERPARAMETERS, "input_length": 30, "in_channels": 9, "dilations": (1, 2, 4), "filters": 32,
        "kernel_size": 7, "dense_units": 64, "num_classes": 5}  # 3 convolutions: the paper's 1, 2, 4


def test_layer_table_and_receptive_fields(predictor):
    layers = predictor.layers()
    geometry = dict(zip((layer.name for layer in layers), interpkit.receptive_fields(layers)))
    convs = [layer for layer in layers if layer.kind == "conv"]
    assert [(c.name, c.kernel_size, c.dilation, c.padding) for c in convs] == [
        ("conv", 11, 1, 5), ("residual.layers.0.conv", 3, 1, 1), ("residual.layers.1.conv", 3, 2, 2),
        ("residual.layers.2.conv", 3, 4, 4), ("residual.layers.3.conv", 3, 8, 8)]
    # Closed form: 11, then + 2 d per residual convolution: 13, 17, 25, 41 (the 41-nt probe), start -d(k-1)/2 summed.
    assert [geometry[c.name].receptive_field for c in convs] == [11, 13, 17, 25, 41]
    assert geometry["residual.add"].receptive_field == 41 and geometry["residual.add"].start == -20
    assert {layer.name: layer.kind for layer in layers}["residual.add"] == "add"
    assert (geometry["pool"].receptive_field, geometry["pool"].jump) == (50, 10)
    assert geometry["flatten"].is_global and geometry["output"].is_global
    assert sum(layer.kind == "activation" for layer in layers) == 6
    X = random_one_hot(2, 41, random_state=5)
    assert predictor.activations(X, "residual.act").shape == (2, 96, 41)
    assert predictor.activations(X, "pool").shape == (2, 96, 4)


@pytest.mark.parametrize("check", PREDICTOR_CHECKS + PROBE_CHECKS, ids=check_id)
def test_conformance(predictor, check):
    check(predictor, random_one_hot(3, 41, random_state=2))


def _write_record(path, module, **extra):
    record = {"format": 1, "arch": "residualbind", "hyperparameters": module.options,
              "checkpoint": {"file": path.name}, **extra}
    path.with_suffix(".json").write_text(json.dumps(record))


def test_sidecar_hyperparameters_are_used(tmp_path):
    module = _module(4, input_length=45, dilations=(1, 3, 9, 27), num_classes=2)
    path = tmp_path / "model.pth"
    torch.save(module.state_dict(), path)
    _write_record(path, module, targets=["RBFOX1", "VTS1"], alphabet="ACGU", length=45)
    X = random_one_hot(6, 45, random_state=6)
    model = interpkit.load(path, arch="residualbind")
    assert model.input_spec.length == 45 and model.output_names == ("RBFOX1", "VTS1")
    np.testing.assert_allclose(model.predict(X), _out(module, X), atol=1e-6, rtol=0)
    loaded = load_module(path)
    assert loaded.options["dilations"] == (1, 3, 9, 27) and loaded.checkpoint_info["record"] == "model.json"
    # interpkit.load finds the architecture through the record alone.
    np.testing.assert_allclose(interpkit.load(path).predict(X), _out(module, X), atol=1e-6, rtol=0)
    # Explicit arguments win over the record: HEAD's dilations on the same weights give other outputs.
    other = interpkit.load(path, arch="residualbind", dilations=(1, 2, 4, 8), length=40)
    assert other.input_spec.length == 40
    assert load_module(path, dilations=(1, 2, 4, 8)).options["dilations"] == (1, 2, 4, 8)
    assert not np.allclose(other.predict(random_one_hot(6, 40, random_state=6)),
                           _out(module, random_one_hot(6, 40, random_state=6)), atol=1e-4)


def test_sidecar_with_three_convolutions_and_overrides(tmp_path):
    module = _module(5, input_length=41, dilations=(1, 2, 4))
    path = tmp_path / "rbfox1.pth"
    torch.save(module.state_dict(), path)
    _write_record(path, module)
    X = random_one_hot(4, 41, random_state=7)
    np.testing.assert_allclose(interpkit.load(path, arch="residualbind").predict(X), _out(module, X), atol=1e-6)
    assert load_module(path, dilations=[2, 4, 8]).options["dilations"] == (2, 4, 8)
    with pytest.raises(InputError, match=r"dilations=\(1, 2, 4, 8\) \(argument\) does not fit rbfox1\.pth.*3 "
                                         r"residual\.layers"):
        load_module(path, dilations=(1, 2, 4, 8))


def test_sidecar_that_contradicts_the_shapes(tmp_path, rb41):
    module, source = rb41
    path = tmp_path / "model.pth"
    path.write_bytes(source.read_bytes())
    ours = {"arch": "residualbind", "checkpoint": {"file": "model.pth"}}
    path.with_suffix(".json").write_text(json.dumps({**ours, "hyperparameters": {
        **module.options, "kernel_size": 9}}))
    with pytest.raises(InputError, match=r"kernel_size=9 \(model\.json\) does not fit model\.pth, whose conv\.weight "
                                         r"\(96, 4, 11\) gives kernel_size=11; correct or remove it in model\.json"):
        load_module(path)
    ours = {"arch": "residualbind", "checkpoint": {"file": "model.pth"}}
    path.with_suffix(".json").write_text(json.dumps({**ours, "hyperparameters": {"input_length": 60}}))
    with pytest.raises(InputError, match=r"length=60 \(model\.json\).*inputs of 40 to 49 bp"):
        load_module(path)
    assert load_module(path, length=41).input_length == 41  # the argument wins
    ours = {"arch": "residualbind", "checkpoint": {"file": "model.pth"}}
    path.with_suffix(".json").write_text(json.dumps({**ours, "hyperparameters": {"filter": 96}}))
    with pytest.raises(InputError, match="model.json names unknown ResidualBind hyper-parameter"):
        load_module(path)
    path.with_suffix(".json").write_text(json.dumps({"arch": "explainn", "checkpoint": {"file": "model.pth"},
                                                "hyperparameters": {"num_units": 3}}))
    with pytest.warns(InterpkitWarning, match="records architecture 'explainn'"):
        assert load_module(path).options == {**HYPERPARAMETERS, "input_length": 40}
    path.with_suffix(".json").write_text("{not json")  # not a record of ours: ignored, shapes decide
    assert load_module(path).options == {**HYPERPARAMETERS, "input_length": 40}


@pytest.mark.parametrize(
    "edit, options, match",
    [
        ("missing", {}, r"not a residualbind state_dict: missing keys: residual\.layers\.2\.norm\.running_var"),
        ("wrong-shape", {}, r"wrong shapes: dense_norm\.weight \(255,\) \(expected \(256,\)\)"),
        ("unexpected", {}, r"unexpected keys: head\.weight"),
        ("explainn", {}, "is not a ResidualBind state_dict: it needs conv.weight"),
        ("five-convs", {}, "has 5 residual convolutions, whose dilations a state_dict does not store; pass dilations="),
        ("dense-inputs", {}, r"dense\.weight \(256, 380\) takes 380 inputs, not a multiple of the 96 filters"),
        ("none", {"length": 50}, r"length=50 \(argument\) does not fit the state_dict given.*inputs of 40 to 49 bp"),
        ("none", {"length": 0}, "length == 0"),
        ("none", {"dilations": (1, 2)}, r"dilations=\(1, 2\) \(argument\) does not fit"),
        ("none", {"dilations": "1248"}, "must be a sequence of int"),
    ],
)
def test_load_module_raises(rb41, edit, options, match):
    state = dict(rb41[0].state_dict())
    if edit == "missing":
        del state["residual.layers.2.norm.running_var"]
    elif edit == "wrong-shape":
        state["dense_norm.weight"] = torch.zeros(255)
    elif edit == "unexpected":
        state["head.weight"] = torch.zeros(1)
    elif edit == "explainn":
        state = {"linears.0.weight": torch.zeros(8, 4, 19), "final.weight": torch.zeros(2, 8)}
    elif edit == "five-convs":
        state = _module(0, dilations=(1, 2, 4, 8, 16)).state_dict()
    elif edit == "dense-inputs":
        state["dense.weight"] = torch.zeros(256, 380)
    with pytest.raises(InputError, match=match):
        load_module(state, **options)


def test_truncated_file(tmp_path, rb41):
    path = tmp_path / "cut.pth"
    path.write_bytes(rb41[1].read_bytes()[:4000])
    with pytest.raises(InputError, match="could not be read as a PyTorch checkpoint"):
        interpkit.load(path, arch="residualbind")


# -- structure profiles through the torch backend --------------------------------------------------------------------
def test_six_channel_model_predicts_with_a_profile(tmp_path):
    module = _module(6, input_length=41, in_channels=6)
    path = tmp_path / "pu.pth"
    torch.save(module.state_dict(), path)
    profile = np.random.RandomState(8).rand(2, 41).astype(np.float32)  # paired, unpaired
    model = interpkit.load(path, arch="residualbind", length=41, extra_inputs={"profiles": profile})
    assert model.input_spec.extra_inputs == {"profiles": (2, 41)}
    X = random_one_hot(5, 41, random_state=9)
    expected = _out(module, X, np.broadcast_to(profile, (5, 2, 41)).copy())
    np.testing.assert_allclose(model.predict(X), expected, atol=1e-6, rtol=0)
    assert model.gradient(X, 0).shape == (5, 4, 41)
    with pytest.raises(InputError, match=r"2 structure profile\(s\); pass extra_inputs=\{'profiles': array of shape "
                                         r"\(2, 41\)\}"):
        interpkit.load(path, arch="residualbind", length=41)
    with pytest.raises(InputError, match=r"has shape \(5, 2, 41\).*takes \(2, 41\)"):
        interpkit.load(path, arch="residualbind", length=41, extra_inputs={"profiles": np.zeros((5, 2, 41))})


def test_profiles_refused_by_a_sequence_only_model(rb41):
    with pytest.raises(InputError, match="no structure profiles"):
        interpkit.load(rb41[1], arch="residualbind", extra_inputs={"profiles": np.zeros((2, 40))})


# -- RNA and DNA input -------------------------------------------------------------------------------------------
def test_rna_fasta_reads_with_u_and_dna_with_the_dna_alphabet(tmp_path, rb41, predictor):
    module, path = rb41
    rna = ["".join(np.random.RandomState(20 + i).choice(list("ACGU"), 41)) for i in range(5)]
    rna[0] = "UGCAUG" + rna[0][6:]  # the RBFOX1 site
    (tmp_path / "rna.fa").write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(rna)))
    (tmp_path / "dna.fa").write_text("".join(f">r{i}\n{s.replace('U', 'T')}\n" for i, s in enumerate(rna)))
    from_rna = interpkit.run("predict", predictor, tmp_path / "rna.fa").arrays["predictions"]
    dna_model = interpkit.load(path, arch="residualbind", length=41, alphabet="ACGT")
    assert dna_model.input_spec.alphabet == "ACGT"
    from_dna = interpkit.run("predict", dna_model, tmp_path / "dna.fa").arrays["predictions"]
    expected = _out(module, one_hot_encode(rna, alphabet="ACGU"))  # U is channel 3
    np.testing.assert_allclose(from_rna, expected, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(from_dna, from_rna)
    with pytest.raises(InputError, match="it looks like DNA, so pass alphabet='ACGT'"):
        interpkit.run("predict", predictor, tmp_path / "dna.fa")


# -- ONNX ----------------------------------------------------------------------------------------------------------
def test_onnx_export_predicts_the_same(tmp_path, rb41, predictor):
    pytest.importorskip("onnxruntime")
    from interpkit_torch.export import to_onnx

    module = rb41[0]
    onnx_model = interpkit.load(to_onnx(predictor, tmp_path / "residualbind.onnx"))  # alphabet and names carried
    assert onnx_model.input_spec.length == 41 and onnx_model.input_spec.layout == "NCL"
    assert onnx_model.input_spec.alphabet == "ACGU" and onnx_model.output_names == predictor.output_names
    X = random_one_hot(7, 41, random_state=10)
    np.testing.assert_allclose(onnx_model.predict(X), predictor.predict(X), atol=1e-5, rtol=0)
    np.testing.assert_allclose(onnx_model.predict(X), _out(module, X), atol=1e-5, rtol=0)


# -- attribution and devices -----------------------------------------------------------------------------------
def test_captum_deeplift_sums_to_the_output_difference():
    # Summation to delta (Shrikumar et al. 2017, eq. 1) holds only when Captum sees every nonlinearity as its own
    # module: six distinct nn.ReLU, the residual addition linear.
    captum = pytest.importorskip("captum.attr")
    model = _module(7, input_length=41)
    x = torch.from_numpy(random_one_hot(4, 41, random_state=11))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attributions, delta = captum.DeepLift(model).attribute(x, baselines=torch.zeros_like(x), target=0,
                                                               return_convergence_delta=True)
    with torch.no_grad():
        difference = model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]
    torch.testing.assert_close(attributions.sum((1, 2)), difference, atol=1e-5, rtol=0)
    assert delta.abs().max() < 1e-5


@pytest.mark.gpu
def test_cuda_equals_cpu():
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    model = _module(8, input_length=41, in_channels=6)
    x = torch.from_numpy(random_one_hot(64, 41, random_state=12))
    profiles = torch.rand(64, 2, 41, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cpu = model(x, profiles)
        gpu = model.cuda()(x.cuda(), profiles.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)
