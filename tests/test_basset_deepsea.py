"""Basset and DeepSEA architectures: Kipoi's exact state_dict layouts, strict loading, known invariances.

No Basset or DeepSEA weights exist offline (../shared/checkpoints/README.md), so the weights are
random, generated from key lists written here by hand from Kipoi's definitions (peers.md section
4.2; kipoi/models Basset/pretrained_model_reloaded_th.py and DeepSEA/model_architecture.py).
Oracles: those key lists, a functional forward pass written from the same definitions,
reverse-complement symmetry of the strand-averaged model, and Basset's published receptive fields.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import interpkit_basset.model as basset_model
from interpkit_basset import target_names
from interpkit_basset.architecture import Basset
from interpkit_deepsea.architecture import DeepSEA, DeepSEAVariantEffects
from interpkit_deepsea.model import load_predict, load_variant_effects

import interpkit
from interpkit import InputError, InputTypeError, InterpkitWarning
from interpkit.testing import PREDICTOR_CHECKS, PROBE_CHECKS, check_id, random_one_hot

# The torch backend is bundled: a broken or missing one must fail these tests, never skip them.
assert "torch" in interpkit.get_registry().backends, [p.error for p in interpkit.get_registry().plugins]
needs_backend = pytest.mark.usefixtures()  # kept as a label for the end-to-end tests


def _bn(i: int, n: int) -> dict[str, tuple[int, ...]]:
    keys = {f"{i}.{p}": (n,) for p in ("weight", "bias", "running_mean", "running_var")}
    return {**keys, f"{i}.num_batches_tracked": ()}


# Kipoi Basset: Sequential indices; Linear layers sit at index 1 of a nested Sequential(Lambda, Linear).
BASSET_KEYS = {
    "0.weight": (300, 4, 19, 1), "0.bias": (300,), **_bn(1, 300),
    "4.weight": (200, 300, 11, 1), "4.bias": (200,), **_bn(5, 200),
    "8.weight": (200, 200, 7, 1), "8.bias": (200,), **_bn(9, 200),
    "13.1.weight": (1000, 2000), "13.1.bias": (1000,), **_bn(14, 1000),
    "17.1.weight": (1000, 1000), "17.1.bias": (1000,), **_bn(18, 1000),
    "21.1.weight": (164, 1000), "21.1.bias": (164,),
}
# Kipoi deepsea_cpu; prefixed "2." in predict_model, "1." in veff_model.
DEEPSEA_CORE_KEYS = {
    "0.weight": (320, 4, 1, 8), "0.bias": (320,),
    "4.weight": (480, 320, 1, 8), "4.bias": (480,),
    "8.weight": (960, 480, 1, 8), "8.bias": (960,),
    "12.1.weight": (925, 50880), "12.1.bias": (925,),
    "14.1.weight": (919, 925), "14.1.bias": (919,),
}


def deepsea_keys(prefix: str) -> dict[str, tuple[int, ...]]:
    return {prefix + k: s for k, s in DEEPSEA_CORE_KEYS.items()}


def with_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The same tensors under Kipoi's wrapper prefix ("2." predict, "1." variant effects, "" bare)."""
    return {prefix + k: v for k, v in state.items()}


def random_state(keys: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in a given key layout, scaled so activations stay O(1) (outputs not saturated)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in keys.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        elif len(shape) > 1:
            state[key] = torch.randn(shape, generator=gen) * (2.0 / np.prod(shape[1:])) ** 0.5
        else:
            state[key] = 0.1 * torch.randn(shape, generator=gen) + (1.0 if key.endswith("weight") else 0.0)
    return state


@pytest.fixture(scope="module")
def basset_state():
    return random_state(BASSET_KEYS)


@pytest.fixture(scope="module")
def deepsea_core():
    return random_state(DEEPSEA_CORE_KEYS, seed=1)


def basset_oracle(sd, x):
    """Kipoi Basset as functional calls: 3 x (conv, BN, ReLU, max-pool), 2 x (linear, BN, ReLU), linear, sigmoid."""
    def bn(h, i):
        return F.batch_norm(h, sd[f"{i}.running_mean"], sd[f"{i}.running_var"], sd[f"{i}.weight"], sd[f"{i}.bias"])
    h = x
    for conv, pool in ((0, 3), (4, 4), (8, 4)):
        h = F.max_pool2d(F.relu(bn(F.conv2d(h, sd[f"{conv}.weight"], sd[f"{conv}.bias"]), conv + 1)), (pool, 1))
    h = h.reshape(len(h), -1)
    for lin in (13, 17):
        h = F.relu(bn(F.linear(h, sd[f"{lin}.1.weight"], sd[f"{lin}.1.bias"]), lin + 1))
    return torch.sigmoid(F.linear(h, sd["21.1.weight"], sd["21.1.bias"]))


def deepsea_oracle(sd, x):
    """Kipoi deepsea_cpu on ACGT input (N, 4, 1, L): recode to AGCT, 3 convs with Threshold(0, 1e-6), 2 linears."""
    def thr(h):
        return torch.where(h > 0, h, torch.full_like(h, 1e-6))
    h = x[:, [0, 2, 1, 3]]
    for conv in (0, 4, 8):
        h = thr(F.conv2d(h, sd[f"{conv}.weight"], sd[f"{conv}.bias"]))
        h = F.max_pool2d(h, (1, 4)) if conv < 8 else h
    h = thr(F.linear(h.reshape(len(h), -1), sd["12.1.weight"], sd["12.1.bias"]))
    return torch.sigmoid(F.linear(h, sd["14.1.weight"], sd["14.1.bias"]))


def basset_input(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(random_one_hot(n, 600, random_state=seed))[..., None]


def deepsea_input(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(random_one_hot(n, 1000, random_state=seed))[:, :, None, :]


def _shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# --- Basset ------------------------------------------------------------------------------------------------


def test_basset_layout_is_kipoi_layout():
    assert _shapes(Basset()) == BASSET_KEYS
    assert list(_shapes(Basset())) == list(BASSET_KEYS)  # same order, so Kipoi files round-trip key by key


def test_basset_loads_hand_written_layout_and_matches_functional_oracle(tmp_path, basset_state):
    path = tmp_path / "basset.pth"
    torch.save(basset_state, path)
    model = basset_model.load(path)
    assert not model.training
    x = basset_input(5)
    with torch.no_grad():
        y = model(x)
        expected = basset_oracle(basset_state, x)
    assert y.shape == (5, 164)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    assert 0.05 < y.mean() < 0.95 and y.std() > 0.01  # not saturated, so the comparison means something
    assert model.checkpoint_info == {"file": "basset.pth", "md5": model.checkpoint_info["md5"], "verified": False,
                                     "reference": None}


def test_basset_logits_drop_only_the_sigmoid(basset_state):
    x = basset_input(3)
    with torch.no_grad():
        p = basset_model.load(basset_state)(x)
        z = basset_model.load(basset_state, logits=True)(x)
    torch.testing.assert_close(torch.sigmoid(z), p)


def test_basset_loads_legacy_format_and_files_without_num_batches_tracked(tmp_path, basset_state):
    # Kipoi's files were written by PyTorch 0.4 (legacy, non-zip serialisation; possibly no num_batches_tracked).
    old = {k: v for k, v in basset_state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(old, path, _use_new_zipfile_serialization=False)
    model = basset_model.load(path)
    torch.testing.assert_close(model.state_dict()["13.1.weight"], basset_state["13.1.weight"])


def test_missing_and_renamed_keys_are_named(basset_state):
    state = dict(basset_state)
    del state["13.1.bias"]
    state["0.conv.weight"] = state.pop("0.weight")
    with pytest.raises(InputError, match=r"missing keys: 0\.weight, 13\.1\.bias; unexpected keys: 0\.conv\.weight"):
        basset_model.load(state)


def test_wrong_shape_is_named(basset_state):
    state = {**basset_state, "21.1.weight": torch.zeros(100, 1000)}
    with pytest.raises(InputError, match=r"wrong shapes: 21\.1\.weight \(100, 1000\) \(expected \(164, 1000\)\)"):
        basset_model.load(state)


def test_md5_of_kipoi_file_name(tmp_path, basset_state, monkeypatch):
    path = tmp_path / "pretrained_model_reloaded_th.pth"
    torch.save(basset_state, path)
    with pytest.warns(InterpkitWarning, match="md5 .* differs from the published pretrained_model_reloaded_th.pth"):
        info = basset_model.load(path).checkpoint_info
    assert info["verified"] is False and len(info["md5"]) == 32
    # The same bytes registered as the published file: verified, no warning.
    monkeypatch.setitem(basset_model.KIPOI_FILES, path.name, (info["md5"], "test entry"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", InterpkitWarning)
        info = basset_model.load(path).checkpoint_info
    assert info["verified"] is True and info["reference"] == f"{path.name}, test entry"


def test_published_md5s():
    from interpkit_deepsea.model import KIPOI_FILES

    assert basset_model.KIPOI_FILES["pretrained_model_reloaded_th.pth"][0] == "4878981d84499eb575abd0f3b45570d3"
    assert KIPOI_FILES["deepsea_predict.pth"][0] == "89e640bf6bdbe1ff165f484d9796efc7"
    assert KIPOI_FILES["deepsea_variant_effects.pth"][0] == "35956ab9c28960b5a3693f470fe980c1"


def test_target_names():
    names = target_names()
    assert len(names) == 164 == len(set(names))
    assert names[:3] == ("8988T", "AoSMC", "Chorion") and names[-1] == "PANC"
    assert all(n == n.strip() and n for n in names)


def test_modules_pickle_without_lambdas(basset_state):
    # Kipoi's Lambda modules hold lambdas and cannot be pickled; ours are ordinary modules.
    for module in (basset_model.load(basset_state), DeepSEA()):
        assert type(pickle.loads(pickle.dumps(module))) is type(module)


@pytest.mark.parametrize(
    "source, error, match",
    [
        ("absent", interpkit.MissingFileError, "does not exist"),
        (b"\x00corrupt", InputError, "could not be read as a PyTorch checkpoint"),
        (["a", "list"], InputError, "not a state_dict"),
        ("module", InputError, r"holds a pickle of Python objects \(torch.nn.modules.linear.Linear"),
        ({}, InputError, "not a state_dict"),
        (42, InputTypeError, "takes a checkpoint path"),
        ("deepsea", InputError, "missing keys: 0.weight"),
    ],
    ids=["missing-file", "corrupt-file", "pickled-list", "pickled-module", "empty-dict", "int", "deepsea-weights"],
)
def test_basset_raises(tmp_path, source, error, match):
    if source == "absent":
        source = tmp_path / "absent.pth"
    elif isinstance(source, bytes):
        (tmp_path / "bad.pth").write_bytes(source)
        source = tmp_path / "bad.pth"
    elif isinstance(source, list) or source == "module":
        torch.save(source if isinstance(source, list) else torch.nn.Linear(2, 2), tmp_path / "obj.pth")
        source = tmp_path / "obj.pth"
    elif source == "deepsea":
        source = {k: torch.zeros(1) for k in deepsea_keys("2.")}  # key names are enough
    with pytest.raises(error, match=match):
        basset_model.load(source)


def test_logits_must_be_bool(basset_state):
    with pytest.raises(InputTypeError, match="logits must be bool"):
        basset_model.load(basset_state, logits="yes")


# --- DeepSEA -----------------------------------------------------------------------------------------------


def test_deepsea_layouts_are_kipoi_layouts():
    assert _shapes(DeepSEA()) == deepsea_keys("2.")
    assert _shapes(DeepSEAVariantEffects()) == deepsea_keys("1.")


def test_deepsea_veff_matches_functional_oracle_and_recodes(deepsea_core):
    state = with_prefix(deepsea_core, "1.")
    veff = load_variant_effects(state)
    x = deepsea_input(3)
    with torch.no_grad():
        y = veff(x)
        logits = load_variant_effects(state, logits=True)(x)
        expected = deepsea_oracle(deepsea_core, x)
        agct = veff[1](x[:, [0, 2, 1, 3]])  # the bare network fed A, G, C, T itself
        unrecoded = veff[1](x)
    assert y.shape == (3, 919)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y, agct)
    torch.testing.assert_close(torch.sigmoid(logits), y)
    assert (y - unrecoded).abs().max() > 1e-3  # the recoding matters
    assert 0.05 < y.mean() < 0.95 and y.std() > 0.01


def test_deepsea_predict_is_strand_average_and_reverse_complement_symmetric(deepsea_core):
    model = load_predict(with_prefix(deepsea_core, "2."))
    x = deepsea_input(3, seed=2)
    rc = x.flip(1, 3)  # A,C,G,T one-hot: complement = reversed channels
    with torch.no_grad():
        y, y_rc = model(x), model(rc)
        # In float64, so that only the architecture (not float32 rounding, ~1e-6 here) decides.
        y64, y64_rc = model.double()(x.double()), model(rc.double())
    assert y.shape == (3, 919)
    torch.testing.assert_close(y, y_rc, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y64, y64_rc, atol=1e-6, rtol=0)
    with torch.no_grad():
        expected = (deepsea_oracle(deepsea_core, x) + deepsea_oracle(deepsea_core, rc)) / 2
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("prefix", ["2.", "1.", ""], ids=["predict-file", "veff-file", "bare-deepsea_cpu"])
def test_deepsea_loads_every_kipoi_layout(prefix, deepsea_core):
    state = with_prefix(deepsea_core, prefix)
    x = deepsea_input(2, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(load_variant_effects(state)(x), deepsea_oracle(deepsea_core, x), atol=1e-5, rtol=1e-5)
        assert load_predict(state).state_dict()["2.14.1.bias"].equal(deepsea_core["14.1.bias"])


def test_deepsea_missing_and_renamed_keys_are_named(deepsea_core):
    state = with_prefix(deepsea_core, "1.")
    del state["1.14.1.bias"]
    state["1.12.weight"] = state.pop("1.12.1.weight")
    # Closest layout is the variant-effects one, so the message speaks in its key names.
    with pytest.raises(InputError, match=r"missing keys: 1\.12\.1\.weight, 1\.14\.1\.bias; unexpected keys: 1\.12\.weight"):
        load_predict(state)


def test_deepsea_file_with_published_name_warns(tmp_path, deepsea_core):
    path = tmp_path / "deepsea_variant_effects.pth"
    state = {k: v.half() for k, v in with_prefix(deepsea_core, "1.").items()}  # half: a smaller file
    torch.save(state, path)
    with pytest.warns(InterpkitWarning, match="differs from the published deepsea_variant_effects.pth"):
        model = load_variant_effects(path)
    assert model.checkpoint_info["verified"] is False
    assert model.state_dict()["1.0.weight"].dtype == torch.float32


# --- through the torch backend -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def basset_predictor(tmp_path_factory, basset_state):
    path = tmp_path_factory.mktemp("basset") / "basset.pth"
    torch.save(basset_state, path)
    return interpkit.load(path, arch="basset")


@needs_backend
def test_basset_end_to_end(basset_predictor, basset_state):
    X = random_one_hot(4, 600, random_state=5)
    y = basset_predictor.predict(X)
    assert y.shape == (4, 164) and y.dtype == np.float32
    expected = basset_oracle(basset_state, torch.from_numpy(X)[..., None]).numpy()
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert tuple(basset_predictor.output_names) == target_names()
    assert basset_predictor.input_spec.length == 600 and basset_predictor.input_spec.layout == "NCL1"


@needs_backend
def test_basset_receptive_fields(basset_predictor):
    # Kelley et al. 2016: conv19-pool3-conv11-pool4-conv7-pool4 -> 19, 21, 51, 60, 132, 168 bp.
    layers = basset_predictor.layers()
    geometry = interpkit.receptive_fields(layers)
    local = [(layer.kind, g.receptive_field) for layer, g in zip(layers, geometry) if layer.kind in ("conv", "maxpool")]
    assert local == [("conv", 19), ("maxpool", 21), ("conv", 51), ("maxpool", 60), ("conv", 132), ("maxpool", 168)]


@needs_backend
@pytest.mark.parametrize("check", PREDICTOR_CHECKS + PROBE_CHECKS, ids=check_id)
def test_basset_conformance(basset_predictor, check):
    check(basset_predictor, random_one_hot(3, 600, random_state=1))


@needs_backend
def test_basset_labels_replace_target_names(tmp_path, basset_state):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"cell{i}" for i in range(164)) + "\n")
    model = interpkit.load(basset_state, arch="basset", labels=labels)
    assert model.output_names[0] == "cell0" and len(model.output_names) == 164


@pytest.fixture(scope="module")
def deepsea_predictors(deepsea_core):
    return {arch: interpkit.load(deepsea_core, arch=arch) for arch in ("deepsea", "deepsea-veff")}


@needs_backend
@pytest.mark.parametrize("arch", ["deepsea", "deepsea-veff"])
def test_deepsea_end_to_end(deepsea_predictors, deepsea_core, arch):
    model = deepsea_predictors[arch]
    X = random_one_hot(2, 1000, random_state=6)
    y = model.predict(X)
    x = torch.from_numpy(X)[:, :, None, :]
    expected = deepsea_oracle(deepsea_core, x)
    if arch == "deepsea":
        expected = (expected + deepsea_oracle(deepsea_core, x.flip(1, 3))) / 2
    np.testing.assert_allclose(y, expected.numpy(), atol=1e-5)
    assert model.output_names[0] == "out0" and len(model.output_names) == 919
    assert model.input_spec.layout == "NC1L" and model.input_spec.length == 1000


# The strand-averaged model doubles its batch inside, so layer probing is checked on deepsea-veff only.
@needs_backend
@pytest.mark.parametrize("arch, check", [("deepsea", c) for c in PREDICTOR_CHECKS]
                         + [("deepsea-veff", c) for c in PREDICTOR_CHECKS + PROBE_CHECKS],
                         ids=lambda v: check_id(v) if callable(v) else v)
def test_deepsea_conformance(deepsea_predictors, arch, check):
    check(deepsea_predictors[arch], random_one_hot(2, 1000, random_state=1))


@needs_backend
def test_deepsea_predict_layers_need_the_variant_effects_model(deepsea_core):
    model = interpkit.load(deepsea_core, arch="deepsea")
    with pytest.raises(InputError, match="batch"):
        model.activations(random_one_hot(2, 1000), "2.0")


@pytest.mark.gpu
@needs_backend
def test_basset_cuda_equals_cpu(tmp_path, basset_state):
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    path = tmp_path / "basset.pth"
    torch.save(basset_state, path)
    X = random_one_hot(8, 600, random_state=7)
    cpu = interpkit.load(path, arch="basset", device="cpu").predict(X)
    gpu = interpkit.load(path, arch="basset", device="cuda").predict(X)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)


@needs_backend
def test_deepsea_veff_receptive_fields_by_hand(deepsea_predictors):
    # conv8: 8 (jump 1); pool4: 8 + 3 = 11 (jump 4); conv8: 11 + 7*4 = 39; pool4: 39 + 3*4 = 51 (jump 16);
    # conv8: 51 + 7*16 = 163. ReCodeAlphabet keeps positions, so it must not break the geometry.
    model = deepsea_predictors["deepsea-veff"]
    table = interpkit.layer_table(model.layers()).records()
    convs_pools = [(r["kind"], r["receptive_field"], r["jump"]) for r in table if r["kind"] in ("conv", "maxpool")]
    assert convs_pools == [("conv", 8, 1), ("maxpool", 11, 4), ("conv", 39, 4), ("maxpool", 51, 16), ("conv", 163, 16)]
