"""ExplaiNN architecture and loader on the real reference checkpoints.

Oracles: the two ExplaiNN checkpoints of wassermanlab/ExplaiNN (../shared/checkpoints/explainn_tf_binding,
outputs 0 = MAX, 1 = FOXA1, 2 = JUND for these files only); forward-pass values computed by an independent
float64 NumPy re-implementation (research/explainn.md section 8); the reference code's grouped-convolution
form, written below with functional calls from the published description; motif insertion into real peaks.
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from interpkit_explainn.architecture import Exp, ExplaiNN
from interpkit_explainn.model import infer_hyperparameters, load_module

import interpkit
from interpkit import InputError, InputTypeError, one_hot_encode, read_fasta
from interpkit.testing import PREDICTOR_CHECKS, PROBE_CHECKS, check_id, random_one_hot

# The torch backend is bundled: a broken or missing one must fail these tests, never skip them.
assert "torch" in interpkit.get_registry().backends, [p.error for p in interpkit.get_registry().plugins]
needs_backend = pytest.mark.usefixtures()  # kept as a label for the end-to-end tests
FILES = ["model_epoch_best_4.pth", "model_epoch_best_5_.pth"]
MOTIFS = ["CACGTG", "TGTTTAC", "TGACTCA"]  # E-box (MAX), forkhead (FOXA1), AP-1 (JUND): outputs 0, 1, 2


@pytest.fixture(scope="module", params=FILES)
def checkpoint(request, shared):
    return shared / "checkpoints" / "explainn_tf_binding" / request.param


@pytest.fixture(scope="module")
def best4(shared):
    return shared / "checkpoints" / "explainn_tf_binding" / "model_epoch_best_4.pth"


@pytest.fixture(scope="module")
def peaks(shared):
    _, seqs = read_fasta(shared / "data" / "peaks" / "TAp73alpha.fa")
    return [s.upper() for s in seqs]


def reference_forward(sd, x):
    """The reference's form: the input repeated U times through Conv1d(4U, U, F, groups=U), per-unit layers grouped."""
    def bn(h, i):
        keys = [f"linears.{i}.{p}" for p in ("running_mean", "running_var", "weight", "bias")]
        return F.batch_norm(h, *(sd[k] for k in keys), eps=1e-5)
    units = sd["linears.0.weight"].shape[0]
    h = F.conv1d(x.repeat(1, units, 1), sd["linears.0.weight"], sd["linears.0.bias"], groups=units)
    h = F.max_pool1d(torch.exp(bn(h, 1)), 7, 7).flatten(1).unsqueeze(-1)
    h = F.relu(bn(F.conv1d(h, sd["linears.6.weight"], sd["linears.6.bias"], groups=units), 7))
    h = F.relu(bn(F.conv1d(h, sd["linears.10.weight"], sd["linears.10.bias"], groups=units), 11)).flatten(1)
    return F.linear(h, sd["final.weight"], sd["final.bias"])


def _put(seq: str, pos: int, motif: str) -> str:
    return seq[:pos] + motif + seq[pos + len(motif):]


def test_real_checkpoints_load_with_inferred_hyperparameters(checkpoint):
    model = load_module(checkpoint)
    assert model.options == {"num_units": 100, "input_length": 200, "num_classes": 3, "filter_size": 19,
                             "num_fc": 2, "pool_size": 7, "pool_stride": 7, "hidden": 100}
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == 308_503  # research/explainn.md section 2.2
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)  # saved from cuda:0
    state = model.state_dict()
    assert list(state) == list(saved)  # the reference layout round-trips, key by key, in order
    assert all(state[k].equal(saved[k]) for k in saved)
    assert isinstance(model.linears[2], Exp)
    assert type(pickle.loads(pickle.dumps(model))) is ExplaiNN
    assert model.checkpoint_info["file"] == checkpoint.name and len(model.checkpoint_info["md5"]) == 32


def test_known_forward_values(best4):
    # research/explainn.md section 8.2: float64 NumPy re-implementation of the reference, eval mode.
    rand0 = "".join(np.random.RandomState(0).choice(list("ACGT"), 200))
    seqs = ["N" * 200, "A" * 200, rand0, _put(rand0, 97, "CACGTG"), _put(rand0, 95, "TGTTTAC"),
            _put(rand0, 96, "TGACTCA")]
    logits = [[-3.41841, -0.94849, -0.61177], [-5.04834, -0.79029, -1.79858], [0.87787, 0.93024, 0.28570],
              [2.35576, 0.09550, -0.24799], [-0.62392, 5.95006, -1.08979], [1.47888, -0.68028, 4.37045]]
    units = [[0, 0, 0]] * 3 + [[3.35357, 0, 0], [0, 0, 0], [0, 0, 5.08730]]  # units 70, 15, 8
    model = load_module(best4)
    x = torch.from_numpy(one_hot_encode(seqs))
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), logits, atol=1e-4)
        np.testing.assert_allclose(model.unit_outputs(x)[:, [70, 15, 8]].numpy(), units, atol=1e-4)


def test_fast_form_equals_reference_grouped_form(checkpoint, peaks):
    model = load_module(checkpoint)
    sd = model.state_dict()
    x = torch.from_numpy(one_hot_encode(peaks))
    with torch.no_grad():
        reference_forward(sd, x[:8]), model(x[:8])  # warm-up
        start = time.perf_counter()
        reference = reference_forward(sd, x)
        middle = time.perf_counter()
        fast = model(x)
        end = time.perf_counter()
    np.testing.assert_allclose(fast.numpy(), reference.numpy(), atol=1e-5, rtol=0)
    print(f"\n{checkpoint.name}: {len(peaks)} x 200 bp forward on CPU ({torch.get_num_threads()} threads): "
          f"reference grouped form {middle - start:.3f} s, dense form {end - middle:.3f} s, "
          f"{(middle - start) / (end - middle):.1f}x faster; max |difference| "
          f"{(fast - reference).abs().max().item():.2e}")


def test_inserted_motifs_raise_their_outputs(checkpoint, peaks):
    model = load_module(checkpoint)
    background = peaks[:200]
    with torch.no_grad():
        before = model(torch.from_numpy(one_hot_encode(background))).numpy()
        for target, motif in enumerate(MOTIFS):
            after = model(torch.from_numpy(one_hot_encode([_put(s, 97, motif) for s in background]))).numpy()
            change = after - before
            # The motif's own output rises the most on average, by > 1 logit, and rises in >= 90% of peaks.
            assert change.mean(0).argmax() == target, (motif, change.mean(0))
            assert change[:, target].mean() > 1.0
            assert (change[:, target] > 0).mean() >= 0.9


@pytest.mark.parametrize("num_fc", [0, 1, 2, 3, 4])
def test_every_variant_round_trips_with_inferred_hyperparameters(num_fc):
    torch.manual_seed(num_fc)
    built = ExplaiNN(5, 62, 2, filter_size=7, num_fc=num_fc, hidden=8).eval()
    for module in built.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    loaded = load_module(built.state_dict(), length=62 if num_fc == 0 else None)
    expected = {**built.options, "hidden": 8 if num_fc >= 2 else 100}
    assert loaded.options == expected
    x = torch.from_numpy(random_one_hot(4, 62, random_state=num_fc))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), built(x))
        assert loaded.unit_outputs(x).shape == (4, 5)


def test_input_length_range(best4):
    state = torch.load(best4, map_location="cpu", weights_only=True)
    # 26 pooled positions of a 19-bp filter with pool 7/7 fit L = 200 ... 206; the shortest is taken.
    assert infer_hyperparameters(state)["input_length"] == 200
    assert load_module(state, length=206).input_length == 206
    with pytest.raises(InputError, match="takes inputs of 200 to 206 bp"):
        load_module(state, length=207)


@pytest.mark.parametrize(
    "options, source, error, match",
    [
        ({}, "basset", InputError, "not an ExplaiNN state_dict"),
        ({}, "num_fc0", InputError, "pass length="),
        ({}, "missing", InputError, r"missing keys: linears\.7\.running_var"),
        ({}, "truncated", InputError, "could not be read as a PyTorch checkpoint"),
        ({"length": "200"}, "real", InputTypeError, "length must be int"),
        ({"length": 0}, "real", InputError, "length == 0"),
        ({"pool_size": 0}, "real", InputError, "pool_size == 0"),
    ],
    ids=["other-architecture", "num_fc0-without-length", "missing-key", "truncated-file", "length-str", "length-0",
         "pool-0"],
)
def test_load_module_raises(tmp_path, best4, options, source, error, match):
    state = torch.load(best4, map_location="cpu", weights_only=True)
    if source == "basset":
        state = {"0.weight": torch.zeros(300, 4, 19, 1), "21.1.weight": torch.zeros(164, 1000)}
    elif source == "num_fc0":
        state = ExplaiNN(3, 50, 2, num_fc=0).state_dict()
    elif source == "missing":
        del state["linears.7.running_var"]
    elif source == "truncated":
        state = tmp_path / "model_epoch_best_4.pth"
        state.write_bytes(best4.read_bytes()[:5000])
    with pytest.raises(error, match=match):
        load_module(state, **options)


# --- through the torch backend -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor(best4):
    return interpkit.load(best4, arch="explainn")


@needs_backend
def test_arch_alone_through_the_backend(predictor, best4, peaks):
    assert predictor.input_spec.length == 200 and predictor.input_spec.layout == "NCL"
    assert len(predictor.output_names) == 3
    X = one_hot_encode(peaks[:50])
    with torch.no_grad():
        expected = load_module(best4)(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(predictor.predict(X), expected, atol=1e-5)
    named = interpkit.load(best4, arch="explainn", output_names=["MAX", "FOXA1", "JUND"], length=203)
    assert tuple(named.output_names) == ("MAX", "FOXA1", "JUND") and named.input_spec.length == 203


@needs_backend
def test_layer_geometry(predictor):
    layers = predictor.layers()
    geometry = dict(zip((layer.name for layer in layers), interpkit.receptive_fields(layers)))
    assert geometry["linears.0"].receptive_field == 19  # one 19-bp filter per unit
    assert geometry["linears.3"].receptive_field == 25 and geometry["linears.3"].jump == 7  # max-pool 7/7
    assert predictor.activations(one_hot_encode(["A" * 200]), "linears.2").shape == (1, 100, 182)


@needs_backend
@pytest.mark.parametrize("check", PREDICTOR_CHECKS + PROBE_CHECKS, ids=check_id)
def test_conformance(predictor, check):
    check(predictor, random_one_hot(3, 200, random_state=2))


@pytest.mark.gpu
def test_cuda_equals_cpu(best4, peaks):
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    model = load_module(best4)
    x = torch.from_numpy(one_hot_encode(peaks[:256]))
    with torch.no_grad():
        cpu = model(x)
        gpu = model.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)
