"""The keras backend on real Keras 1/2/3 checkpoints with known behaviour, closed forms and the conformance kit.

Oracles: the published AUROCs of the TAL/GATA model on its simulated data, each framework's own forward
pass on the same batch, the planted motifs and grammar of NeuronMotif's demos (with the demo1 values of
an independent NumPy forward pass in ../shared/research/neuronmotif.md), receptive fields computed by
hand from the layer configs, and closed forms on small Keras 3 models built here.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import twins

import interpkit
from interpkit import CapabilityError, InputError, InputTypeError, InterpkitWarning, MissingFileError
from interpkit.adapt import OutputReduction
from interpkit.probe import INPUT, receptive_fields
from interpkit.sequences import one_hot_encode, read_fasta, reverse_complement
from interpkit.testing import PREDICTOR_CHECKS, PROBE_CHECKS, check_id, random_one_hot

keras = pytest.importorskip("keras")
load = pytest.importorskip("interpkit_keras.load").load
# Keras' own save/get_weights on numpy 2 (not this backend) warns about __array__(copy=...).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

TAL_GATA = "checkpoints/tal_gata_simulated/keras2_conv1d_record_5_model_PQzyq_modelJson.json"
XPRESSO = "checkpoints/xpresso/human_trainepoch.11-0.426.h5"
OPTIMUS = "checkpoints/optimus5prime/retrained_evolution_model.hdf5"
DEMOS = "checkpoints/neuronmotif_demos"


def _geometry(model):
    """{layer name: (receptive field, jump, start)} from the model's layer table."""
    return {info.name: (g.receptive_field, g.jump, g.start) for info, g in zip(model.layers(),
                                                                            receptive_fields(model.layers()))}


# -- fixtures (each model loaded once) ----------------------------------------------------------------
@pytest.fixture(scope="module")
def tal_gata(shared):
    return interpkit.load(shared / TAL_GATA)


@pytest.fixture(scope="module")
def simdata(shared):
    """The 8,000 simulated sequences and their task1..task3 labels (SOURCE.txt columns)."""
    with gzip.open(shared / "checkpoints/tal_gata_simulated/sequences.simdata.gz", "rt") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    X = one_hot_encode([r["sequence"] for r in rows])
    return X, np.array([[int(r[f"task{t}"]) for t in (1, 2, 3)] for r in rows])


@pytest.fixture(scope="module")
def xpresso(shared):
    with pytest.warns(InterpkitWarning, match="halflife"):
        return interpkit.load(shared / XPRESSO)


@pytest.fixture(scope="module")
def promoters(shared):
    """Four 10,500-bp windows of GRCh37 chr10; the last runs off the 110-kb file and is padded with N."""
    _, (chrom,) = read_fasta(shared / "data/genome/test_grch37_chr10_0-110kb.fa")
    windows = [chrom[s: s + 10_500] for s in (60_000, 80_000, 95_000, 105_000)]
    return one_hot_encode([w.ljust(10_500, "N") for w in windows])


@pytest.fixture(scope="module")
def demo1(shared):
    return interpkit.load(shared / DEMOS / "demo1/weight.hdf5")


@pytest.fixture(scope="module")
def demo2(shared):
    return interpkit.load(shared / DEMOS / "demo2/weight.hdf5")


def _basset_like():
    """A small Keras 3 Basset-like network with a residual branch: conv(relu)-bn-pool-conv-relu(+skip)-pool-dense."""
    keras.utils.set_random_seed(0)
    L = keras.layers
    inputs = keras.Input((60, 4), name="dna")
    x = L.Conv1D(6, 7, padding="same", activation="relu", name="conv1")(inputs)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.MaxPooling1D(3, name="pool1")(x)
    y = L.ReLU(name="relu2")(L.Conv1D(5, 5, padding="same", name="conv2")(x))
    x = L.Add(name="add")([y, L.Conv1D(5, 1, name="skip")(x)])
    x = L.MaxPooling1D(2, name="pool2")(x)
    x = L.Dropout(0.5, name="drop")(L.Dense(8, activation="relu", name="fc1")(L.Flatten(name="flatten")(x)))
    model = keras.Model(inputs, L.Dense(3, activation="sigmoid", name="out")(x), name="basset_like")
    rng = np.random.default_rng(0)
    bn = model.get_layer("bn1")
    bn.set_weights([rng.uniform(0.5, 1.5, 6), rng.uniform(-0.2, 0.2, 6), rng.uniform(-0.5, 0.5, 6),
                    rng.uniform(0.5, 2.0, 6)])
    return model


@pytest.fixture(scope="module")
def basset_like():
    return _basset_like()


@pytest.fixture(scope="module")
def basset_model(basset_like):
    return interpkit.load(basset_like)


def _lambda_model():
    inputs = keras.Input((20, 4))
    x = keras.layers.Conv1D(3, 5, name="conv")(inputs)
    x = keras.layers.Lambda(lambda t: 2.0 * t, name="double")(x)
    return keras.Model(inputs, keras.layers.GlobalMaxPooling1D(name="gmax")(x))


# -- real checkpoints --------------------------------------------------------------------------------
def test_tal_gata_auroc_on_its_simulated_sequences(tal_gata, simdata):
    # Oracle: SOURCE.txt reports AUROC 0.992 / 0.989 / 0.998 for the three tasks on these 8,000 sequences.
    from sklearn.metrics import roc_auc_score

    X, Y = simdata
    y = tal_gata.predict(X)
    aurocs = [roc_auc_score(Y[:, t], y[:, t]) for t in range(3)]
    assert tal_gata.framework == "tf_keras"  # Keras 3 refuses its list-style Sequential JSON
    assert all(a >= 0.95 for a in aurocs), aurocs
    np.testing.assert_allclose(aurocs, [0.992, 0.989, 0.998], atol=1e-3)


def test_tal_gata_equals_the_raw_tf_keras_call(tal_gata, simdata):
    X = simdata[0][:300]
    raw = tal_gata.keras_model(X.transpose(0, 2, 1), training=False).numpy()
    np.testing.assert_allclose(tal_gata.predict(X, batch_size=300), raw, rtol=1e-6, atol=1e-6)
    assert tal_gata.output_names == ("activation_4:0", "activation_4:1", "activation_4:2")
    assert tal_gata.input_spec.layout == "NLC" and tal_gata.input_spec.length == 200


def test_tal_gata_layer_table_by_hand(tal_gata):
    # conv 11 -> RF 11; conv 11 -> 21; average pool 180/180 -> 21 + 179 = 200, jump 180; dense: whole input.
    geometry = _geometry(tal_gata)
    assert geometry["conv1d_1"] == (11, 1, 0) and geometry["conv1d_2"] == (21, 1, 0)
    assert geometry["average_pooling1d_1"] == (200, 180, 0) and geometry["dense_1"] == (None, None, None)
    kinds = [info.kind for info in tal_gata.layers()]
    assert kinds == ["conv", "activation", "conv", "activation", "avgpool", "flatten", "dense", "activation",
                     "dropout", "dense", "activation"]


def test_xpresso_two_inputs_equal_the_raw_call(xpresso, promoters):
    km = xpresso.keras_model
    assert xpresso.framework == "keras"
    assert dict(xpresso.input_spec.extra_inputs) == {"halflife": (6,)} and xpresso.input_spec.length == 10_500
    y = xpresso.predict(promoters)
    raw = km([promoters.transpose(0, 2, 1), np.zeros((4, 6), np.float32)], training=False).numpy()
    assert y.shape == (4, 1) and xpresso.output_names == ("dense_3:0",)
    np.testing.assert_allclose(y, raw, rtol=1e-5, atol=1e-5)
    assert np.ptp(y) > 0.1  # different promoters, different predicted expression


def test_xpresso_extra_inputs_change_the_output(shared, xpresso, promoters):
    halflife = np.array([0.5, -1.0, 0.3, 1.2, -0.4, 0.8], np.float32)
    model = interpkit.load(shared / XPRESSO, extra_inputs={"halflife": halflife})
    y = model.predict(promoters[:2])
    raw = model.keras_model([promoters[:2].transpose(0, 2, 1), np.tile(halflife, (2, 1))], training=False).numpy()
    np.testing.assert_allclose(y, raw, rtol=1e-5, atol=1e-5)
    assert np.abs(y - xpresso.predict(promoters[:2])).min() > 1e-3


def test_optimus_loads_through_tf_keras_and_equals_raw(shared):
    model = interpkit.load(shared / OPTIMUS)
    assert model.framework == "tf_keras" and model.input_spec.length == 54
    X = random_one_hot(16, 54, random_state=2)
    raw = model.keras_model(X.transpose(0, 2, 1), training=False).numpy()
    y = model.predict(X)
    assert y.shape == (16, 1)
    np.testing.assert_allclose(y, raw, rtol=1e-6, atol=1e-6)
    assert [info.activation for info in model.layers()[:2]] == ["relu", "relu"]  # fused into the Conv1D layers
    pre = model.activations(X, "convolution1d_2", pre_activation=True)
    assert pre.shape == (16, 40, 40) and (pre < 0).any()
    np.testing.assert_allclose(model.activations(X, "convolution1d_2"), np.maximum(pre, 0), atol=1e-6)


def test_demo1_layer_table_by_hand(demo1):
    # conv 5 -> RF 5; max-pool 2/2 -> 5 + 1 = 6, jump 2; conv 2 on jump 2 -> 6 + 1 * 2 = 8 = the whole input.
    assert _geometry(demo1) == {"conv1d_1": (5, 1, 0), "activation_1": (5, 1, 0), "max_pooling1d_1": (6, 2, 0),
                                "conv1d_2": (8, 2, 0), "activation_2": (8, 2, 0), "flatten_1": (None, None, None)}
    pool = demo1.layers()[2]
    assert (pool.kind, pool.kernel_size, pool.stride, pool.channels) == ("maxpool", 2, 2, 3)


def test_demo1_scores_its_planted_motif(shared, demo1):
    # PWM0 (rows A, C, G, T; consensus CCCACCTG) was planted reverse-complemented (CAGGTGGG) by simu.py.
    ppm = np.loadtxt(shared / DEMOS / "demo1/PWM0")
    planted = reverse_complement("".join("ACGT"[i] for i in ppm.argmax(axis=0)))
    assert planted == "CAGGTGGG"
    random_scores = demo1.predict(random_one_hot(2000, 8, random_state=0))[:, 0]
    score = demo1.predict(one_hot_encode([planted]))[0, 0]
    assert score > 0.99 and score > np.quantile(random_scores, 0.99)
    # Independent NumPy forward pass (research notes): the best of all 4^8 8-mers is CAGGTGGT, pre-sigmoid 9.016.
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=8)]
    X = one_hot_encode(kmers)
    best = int(demo1.predict(X)[:, 0].argmax())
    pre = demo1.activations(X[best: best + 1], "activation_2", pre_activation=True)
    assert kmers[best] == "CAGGTGGT" and pre[0, 0, 0] == pytest.approx(9.016, abs=1e-3)


def test_demo2_layer_table_and_spacing_grammar(demo2):
    # conv7 7; pool2 8 j2; conv3 8+2*2=12; pool 14 j4; conv3 22; pool 26 j8; conv3 42; pool 50 j16; conv3 82.
    geometry = _geometry(demo2)
    expected = {"conv1d_1": 7, "max_pooling1d_1": 8, "conv1d_2": 12, "max_pooling1d_2": 14, "conv1d_3": 22,
                "max_pooling1d_3": 26, "conv1d_4": 42, "max_pooling1d_4": 50, "conv1d_5": 82}
    assert {k: geometry[k][0] for k in expected} == expected and geometry["conv1d_5"][1] == 16
    # Its training data: CTCF (reverse strand) at [0, 16) and [44, 60) is positive; a pair 20 bp apart negative.
    motif = one_hot_encode("TAGCGCCCCCTGGTGGCCA")[0]

    def planted(starts):
        X = random_one_hot(100, 82, random_state=1)
        for s in starts:
            X[:, :, s: s + 19] = motif
        return demo2.predict(X)[:, 0]

    assert planted([5, 50]).min() > planted([5, 25]).max()


# -- files: .keras, safe mode, custom objects ---------------------------------------------------------
def test_keras3_file_round_trip(tmp_path, basset_like, basset_model):
    path = tmp_path / "basset_like.keras"
    basset_like.save(path)
    (tmp_path / "labels.txt").write_text("DNase_a\nDNase_b\n\nDNase_c\n")
    model = interpkit.load(path, labels=tmp_path / "labels.txt")
    X = random_one_hot(7, 60, random_state=4)
    assert model.name == "basset_like.keras" and model.framework == "keras"
    assert basset_model.output_names == ("out:0", "out:1", "out:2")
    assert model.output_names == ("DNase_a", "DNase_b", "DNase_c")
    np.testing.assert_array_equal(model.predict(X), basset_model.predict(X))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layers_need_trust(tmp_path, suffix):
    km = _lambda_model()
    path = tmp_path / f"lambda{suffix}"
    km.save(path)
    with pytest.raises(InputError, match=r"Lambda layer\(s\) double: loading them would run Python code.*trust=True"):
        interpkit.load(path)
    model = interpkit.load(path, trust=True)
    X = random_one_hot(3, 20)
    np.testing.assert_allclose(model.predict(X), km(X.transpose(0, 2, 1)).numpy(), rtol=1e-6)


def test_custom_objects_are_passed_through(tmp_path):
    class Scale(keras.layers.Layer):  # a local class: found only through custom_objects
        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    inputs = keras.Input((12, 4))
    km = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(Scale(3.0, name="scale")(
        keras.layers.Conv1D(2, 3)(inputs))))
    km.save(tmp_path / "custom.keras")
    with pytest.raises(InputError, match="custom_objects"):
        interpkit.load(tmp_path / "custom.keras")
    model = interpkit.load(tmp_path / "custom.keras", custom_objects={"Scale": Scale})
    X = random_one_hot(3, 12)
    np.testing.assert_allclose(model.predict(X), km(X.transpose(0, 2, 1)).numpy(), rtol=1e-6)
    assert model.layers()[1].kind == "unknown"


def test_json_weights_rule(tmp_path, shared):
    # A plain X.json pairs with X.weights.h5; weights= overrides; *_modelJson.json with *_modelWeights.h5.
    km = _basset_like()
    (tmp_path / "net.json").write_text(km.to_json())
    km.save_weights(tmp_path / "net.weights.h5")
    X = random_one_hot(4, 60)
    np.testing.assert_allclose(interpkit.load(tmp_path / "net.json").predict(X), km(X.transpose(0, 2, 1)).numpy(),
                               rtol=1e-6)
    from interpkit_keras.read import weights_for

    json_path = shared / TAL_GATA
    assert weights_for(json_path).name == "keras2_conv1d_record_5_model_PQzyq_modelWeights.h5"


# -- closed forms on small models ---------------------------------------------------------------------
def test_layer_table_of_a_functional_graph(basset_model):
    infos = {info.name: info for info in basset_model.layers()}
    assert "dna" not in infos and infos["conv1"].inputs == (INPUT,)
    assert infos["add"].inputs == ("relu2", "skip") and infos["add"].kind == "add"
    assert (infos["conv1"].padding, infos["conv1"].activation, infos["fc1"].activation) == (3, "relu", "relu")
    # conv7 "same" -> 7, start -3; pool 3/3 -> 9, jump 3; conv5 "same" -> 9 + 12 = 21, start -3 - 2*3 = -9;
    # skip conv1 keeps pool1's 9 / start -3; add spans both: start -9, RF 21; pool 2/2 -> 24, jump 6.
    geometry = _geometry(basset_model)
    assert geometry["conv1"] == (7, 1, -3) and geometry["pool1"] == (9, 3, -3)
    assert geometry["conv2"] == (21, 3, -9) and geometry["skip"] == (9, 3, -3)
    assert geometry["add"] == (21, 3, -9) and geometry["pool2"] == (24, 6, -9)


def test_pre_activation_is_the_affine_part(basset_like, basset_model):
    X = random_one_hot(5, 60, random_state=5)
    before = basset_like.to_json()
    kernel, bias = basset_like.get_layer("conv1").get_weights()  # (7, 4, 6), (6,)
    padded = np.pad(X, ((0, 0), (0, 0), (3, 3)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, 7, axis=2)  # (N, 4, 60, 7)
    expected = np.einsum("nbpk,kbc->ncp", windows, kernel) + bias[None, :, None]
    pre = basset_model.activations(X, "conv1", pre_activation=True)
    np.testing.assert_allclose(pre, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(basset_model.activations(X, "conv1"), np.maximum(pre, 0), atol=1e-6)
    out = basset_model.activations(X, "out", pre_activation=True)[:, :, 0]
    np.testing.assert_allclose(1 / (1 + np.exp(-out)), basset_model.predict(X), rtol=1e-5, atol=1e-6)
    # An activation layer's pre-activation is its input; a layer without a fused activation gives its output.
    np.testing.assert_array_equal(basset_model.activations(X, "relu2", pre_activation=True),
                                  basset_model.activations(X, "conv2"))
    np.testing.assert_array_equal(basset_model.activations(X, "bn1", pre_activation=True),
                                  basset_model.activations(X, "bn1"))
    assert basset_like.to_json() == before  # the user's model is unchanged


def test_neuron_on_padded_layers_and_its_gradient(basset_like, basset_model):
    X = random_one_hot(6, 60, random_state=6)
    # conv1 (start -3): the first unpadded window, input [0, 7), is output position 3.
    np.testing.assert_allclose(basset_model.neuron("conv1", 2, X[:, :, :7]),
                               basset_model.activations(X, "conv1")[:, 2, 3], rtol=1e-5, atol=1e-6)
    # add (RF 21, jump 3, start -9): position 3 sees [0, 21).
    np.testing.assert_allclose(basset_model.neuron("add", 1, X[:, :, :21]),
                               basset_model.activations(X, "add")[:, 1, 3], rtol=1e-5, atol=1e-5)
    # d relu(w . x + b) / dx = w where the pre-activation is positive, else 0.
    kernel = basset_like.get_layer("conv1").get_weights()[0][:, :, 2].T  # (4, 7)
    active = basset_model.activations(X, "conv1", pre_activation=True)[:, 2, 3] > 0
    grad = basset_model.neuron_gradient("conv1", 2, X[:, :, :7])
    np.testing.assert_allclose(grad, np.where(active[:, None, None], kernel, 0), atol=1e-6)


def _gapped_keras():
    """conv7 -> stride-3 pool of 2 -> conv3 ("same"), 100 bp: the conv's RF is 14 bp, jump 3 (windows 15 bp apart)."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((twins.LENGTH, 4))
    x = keras.layers.MaxPooling1D(2, strides=3, name="pool")(keras.layers.Conv1D(5, 7, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Conv1D(3, 3, padding="same", name="conv")(x))


def test_packed_neurons_equal_one_window_per_input():
    # Oracle: each window alone in an all-N 100-bp input, the activation at its output position and
    # tf.GradientTape on the Keras model cut at the layer. The twin network (tests/twins.py) packs conv1
    # (RF 7) 14 windows per input, conv2 ("same", RF 21, jump 3, position 2 at offset 0) and pool2 (RF 24,
    # jump 6) 4 each; the gapped model's conv (R = 14 < S = 15) 6.
    import tensorflow as tf

    twin, gapped = twins.keras_twin(twins.torch_twin()), _gapped_keras()
    cases = [(twin, "conv1", 7, 14), (twin, "conv2", 21, 4), (twin, "pool2", 24, 4), (gapped, "conv", 14, 6)]
    for km, layer, R, per in cases:
        model = interpkit.load(km, output=None if km is twin else OutputReduction())

        def tape_gradient(X, position, km=km, layer=layer):
            x = tf.constant(X.transpose(0, 2, 1))
            with tf.GradientTape() as tape:
                tape.watch(x)
                total = tf.reduce_sum(keras.Model(km.inputs, km.get_layer(layer).output)(x, training=False)[:, position, 2])
            return tape.gradient(total, x).numpy().transpose(0, 2, 1)

        twins.check_packed_neuron(model, layer, R, per, tape_gradient, atol=1e-5)


def test_pool_inputs_follow_the_graph(basset_model):
    X = random_one_hot(3, 60, random_state=7)
    inputs = basset_model.pool_inputs(X, "out")
    assert list(inputs) == ["pool1", "pool2"]
    np.testing.assert_array_equal(inputs["pool1"], basset_model.activations(X, "bn1"))
    np.testing.assert_array_equal(inputs["pool2"], basset_model.activations(X, "add"))
    assert list(basset_model.pool_inputs(X, "skip")) == ["pool1"]


def _linear_per_position():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None, 4))
    return keras.Model(inputs, keras.layers.Conv1D(3, 5, padding="same", name="track")(inputs))


def test_per_position_outputs_and_linear_gradients():
    km = _linear_per_position()
    X = random_one_hot(4, 40, random_state=8)
    raw = km(X.transpose(0, 2, 1)).numpy()  # (N, P, C)
    with pytest.warns(InterpkitWarning, match="mean over all positions"):
        default = interpkit.load(km, length=40)
    np.testing.assert_allclose(default.predict(X), raw.mean(axis=1), rtol=1e-5, atol=1e-6)
    rule = OutputReduction(positions="middle", window=(10, -5), reduce="sum", channels=(2, 0))
    model = interpkit.load(km, output="sum:10:-5@2,0", alphabet="AGCT")  # the CLI's text form, Keras axes
    assert model.output_reduction == rule
    assert model.output_names == ("track:2", "track:0") and model.input_spec.length is None
    raw_agct = km(X[:, [0, 2, 1, 3]].transpose(0, 2, 1)).numpy()
    np.testing.assert_allclose(model.predict(X), rule.apply(raw_agct), rtol=1e-5, atol=1e-5)
    # The model is linear in X, so f(X) - f(all N) = <grad, X> (in canonical order, through the reduction).
    G = model.gradient(X, 1)
    zero = model.predict(np.zeros_like(X))[:, 1]
    np.testing.assert_allclose((G * X).sum(axis=(1, 2)), model.predict(X)[:, 1] - zero, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.predict(random_one_hot(2, 100)).shape, (2, 2))  # any length


def test_channels_first_input_is_inferred_as_ncl():
    inputs = keras.Input((4, 30))
    x = keras.layers.Conv1D(3, 5, data_format="channels_first", name="conv")(inputs)
    km = keras.Model(inputs, keras.layers.GlobalMaxPooling1D(data_format="channels_first")(x))
    model = interpkit.load(km)
    X = random_one_hot(2, 30)
    assert model.input_spec.layout == "NCL"
    np.testing.assert_allclose(model.activations(X, "conv"), km.get_layer("conv")(X).numpy(), rtol=1e-6)


@pytest.mark.parametrize(("layout", "shape", "kernel"), [("NC1L", (4, 1, 30), (1, 5)), ("NCL1", (4, 30, 1), (5, 1))])
def test_conv2d_layouts_use_the_sequence_axis(layout, shape, kernel):
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(3, kernel, padding="same", data_format="channels_first", name="conv")(inputs)
    x = keras.layers.MaxPooling2D(tuple(2 if k == 5 else 1 for k in kernel), data_format="channels_first",
                                  name="pool")(x)
    km = keras.Model(inputs, keras.layers.GlobalMaxPooling2D(data_format="channels_first")(x))
    model = interpkit.load(km)
    X = random_one_hot(2, 30, random_state=10)
    assert model.input_spec.layout == layout and _geometry(model)["pool"] == (6, 2, -2)
    raw = km.get_layer("conv")(X.reshape(2, *shape)).numpy().reshape(2, 3, 30)
    np.testing.assert_allclose(model.activations(X, "conv"), raw, rtol=1e-6)
    np.testing.assert_allclose(model.neuron("pool", 1, X[:, :, :6]), model.activations(X, "pool")[:, 1, 1], rtol=1e-6)


# -- CLI, quiet start-up -------------------------------------------------------------------------------
@pytest.mark.parametrize("checkpoint", [TAL_GATA, XPRESSO], ids=["tal_gata", "xpresso"])
def test_cli_info_prints_the_layer_table(shared, capsys, checkpoint):
    from interpkit.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InterpkitWarning)
        assert main(["info", str(shared / checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "backend: keras" in out and "receptive_field" in out and "conv1d_1" in out
    if checkpoint == XPRESSO:
        assert "'halflife': [6]" in out and "max_pooling1d_2" in out


def test_tensorflow_starts_quietly(shared):
    # Without TF_CPP_MIN_LOG_LEVEL, the backend sets it to 2 and keeps absl's start-up notes off stderr.
    # The TAL/GATA JSON goes through Keras 3 (refused) and then tf_keras: both imports must be quiet.
    code = ("import os, numpy, interpkit; m = interpkit.load(os.environ['MODEL']); "
            "m.predict(numpy.zeros((1, 4, 200), 'float32')); print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["MODEL"] = str(shared / TAL_GATA)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "2"
    assert "oneDNN" not in done.stderr and "cuInit" not in done.stderr and "absl" not in done.stderr, done.stderr


# -- conformance and errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("check", PREDICTOR_CHECKS + PROBE_CHECKS, ids=check_id)
@pytest.mark.parametrize("which", ["tal_gata", "basset_model"])
def test_conformance(check, which, request):
    model = request.getfixturevalue(which)
    check(model, random_one_hot(4, model.input_spec.length, random_state=9))


def test_keras_backend_raises(tmp_path, shared, tal_gata, basset_like, basset_model):
    X = random_one_hot(2, 60)
    with pytest.raises(MissingFileError, match="does not exist"):
        load(tmp_path / "missing.h5")
    (tmp_path / "model.txt").write_text("x")
    with pytest.raises(InputError, match=r"reads \.keras, \.h5/\.hdf5 and \.json"):
        load(tmp_path / "model.txt")
    (tmp_path / "broken.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(InputError, match="broken.h5 is not readable as HDF5"):
        interpkit.load(tmp_path / "broken.h5")
    with pytest.raises(InputError, match="holds weights only"):
        interpkit.load(shared / "checkpoints/tal_gata_simulated/keras2_conv1d_record_5_model_PQzyq_modelWeights.h5")
    (tmp_path / "lonely.json").write_text(basset_like.to_json())
    with pytest.raises(MissingFileError, match="weights="):
        interpkit.load(tmp_path / "lonely.json")
    with pytest.raises(InputError, match="cannot load .*Keras 3: .*tf_keras: "):
        interpkit.load(shared / TAL_GATA, weights=shared / OPTIMUS)
    for keras1 in ("checkpoints/optimus5prime/evolution_model.hdf5",
                   "checkpoints/tal_gata_simulated/record_5_model_PQzyq_modelJson.json"):
        with pytest.raises(InputError, match=r"written by Keras 1\.2\.\d, whose configs neither reads"):
            interpkit.load(shared / keras1)
    with pytest.raises(InputError, match="weights= is for JSON"):
        interpkit.load(shared / OPTIMUS, weights=shared / OPTIMUS)
    with pytest.raises(InputError, match="not an in-memory model|apply when loading a file"):
        load(basset_like, weights="x.h5")
    with pytest.raises(InputTypeError, match="not dict"):
        load({})
    with pytest.raises(InputError, match="layout == 'NCL' puts the alphabet on an axis of size 60"):
        load(basset_like, layout="NCL")
    with pytest.raises(InputError, match="length == 100 but the model's input is fixed at 60 bp"):
        load(basset_like, length=100)
    with pytest.raises(InputError, match="not extra inputs"):
        load(basset_like, extra_inputs={"halflife": np.zeros(6)})
    with pytest.raises(InputError, match="sequence_input == 'seq'"):
        load(basset_like, sequence_input="seq")
    with pytest.raises(InputError, match=r"2 output name\(s\) given for model basset_like, which has 3 outputs"):
        load(basset_like, output_names=["a", "b"])
    with pytest.raises(MissingFileError, match="labels file"):
        load(basset_like, labels=tmp_path / "labels.txt")
    with pytest.raises(InputError, match="device == 'tpu'"):
        load(basset_like, device="tpu")
    with pytest.raises(InputError, match="needs 200 bp"):
        tal_gata.predict(X)
    with pytest.raises(InputError, match=r"target == 3, must be an int in \[0, 2\]"):
        basset_model.gradient(X, 3)
    with pytest.raises(InputError, match="Did you mean 'conv1'"):
        basset_model.activations(X, "conv_1")
    with pytest.raises(InputError, match="sees the whole input"):
        basset_model.neuron("fc1", 0, X[:, :, :7])
    with pytest.raises(InputError, match="channel == 6"):
        basset_model.neuron("conv1", 6, X[:, :, :7])
    with pytest.raises(InputError, match="W has length 8 bp but the model needs 7 bp"):
        basset_model.neuron("conv1", 0, X[:, :, :8])
    with pytest.raises(InputError, match="batch_size == 0"):
        basset_model.predict(X, batch_size=0)
    inputs = keras.Input((None, 4))
    any_length = load(keras.Model(inputs, keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(2, 5)(inputs))))
    for call in (any_length.predict, lambda X: any_length.gradient(X, 0)):
        with pytest.raises(InputError, match="failed on sequences of 3 bp .*Computed output size would be negative"):
            call(random_one_hot(2, 3))


def test_sequence_input_and_extra_input_errors(shared, xpresso):
    with pytest.raises(InputError, match=r"extra_inputs\['halflife'\] has shape \(5,\)"):
        interpkit.load(shared / XPRESSO, extra_inputs={"halflife": np.zeros(5)})
    with pytest.raises(InputError, match="not extra inputs"):
        interpkit.load(shared / XPRESSO, extra_inputs={"half_life": np.zeros(6)})
    a, b = keras.Input((10, 4), name="a"), keras.Input((12, 4), name="b")
    km = keras.Model([a, b], keras.layers.GlobalMaxPooling1D()(keras.layers.Concatenate(axis=1)([a, b])))
    with pytest.raises(InputError, match="cannot tell which model input.*sequence_input="):
        load(km)
    model = load(km, sequence_input="b", extra_inputs={"a": np.full((10, 4), 2.0)})
    X = random_one_hot(3, 12)
    assert model.input_spec.length == 12 and dict(model.input_spec.extra_inputs) == {"a": (10, 4)}
    np.testing.assert_array_equal(model.predict(X), np.full((3, 4), 2.0, np.float32))


@pytest.mark.gpu
def test_cuda_agrees_with_cpu(basset_like):
    from interpkit_keras._runtime import gpus

    if not gpus():
        pytest.skip("TensorFlow sees no GPU")
    X = random_one_hot(8, 60)
    cpu, gpu = interpkit.load(basset_like, device="cpu"), interpkit.load(basset_like, device="cuda")
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu.gradient(X, 0), cpu.gradient(X, 0), rtol=1e-4, atol=1e-5)


def test_cuda_without_gpu_is_refused(basset_like):
    from interpkit_keras._runtime import gpus

    if gpus():
        pytest.skip("a GPU is present")
    with pytest.raises(CapabilityError, match="sees no GPU"):
        load(basset_like, device="cuda")


def test_channels_last_conv2d_geometry_uses_the_sequence_axis():
    # Keras' default channels_last Conv2D on (N, 4, L, 1): kernel (4, 5) spans the alphabet (height)
    # and 5 bp of sequence (width); pool (1, 2) halves the sequence. Receptive fields 5 and 6 bp.
    import keras

    import interpkit
    from interpkit import receptive_fields

    inputs = keras.Input((4, 50, 1))
    x = keras.layers.Conv2D(8, (4, 5), name="conv")(inputs)
    x = keras.layers.MaxPooling2D((1, 2), name="pool")(x)
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(x))
    model = interpkit.load(keras.Model(inputs, outputs))
    layers = model.layers()
    rows = {info.name: (info.kernel_size, info.stride, g.receptive_field)
            for info, g in zip(layers, receptive_fields(layers))}
    assert rows["conv"] == (5, 1, 5) and rows["pool"] == (2, 2, 6)
    X = random_one_hot(3, 50)
    np.testing.assert_allclose(model.neuron("conv", 2, X[:, :, :5]), model.activations(X, "conv")[:, 2, 0], atol=1e-5)


def test_per_position_rules_are_checked():
    # An any-length per-position model: a window past the output is an error, not NaN; output= on an
    # (N, T) model is refused.
    import keras

    import interpkit
    from interpkit.errors import InputError

    inputs = keras.Input((None, 4))
    per_position = keras.Model(inputs, keras.layers.Conv1D(2, 3, padding="same")(inputs))
    model = interpkit.load(per_position, output="mean:100:200")
    with pytest.raises(InputError, match=r"output window \(100, 200\) selects no positions"):
        model.predict(random_one_hot(2, 50))
    assert model.predict(random_one_hot(2, 300)).shape == (2, 2)
    flat = keras.Model(inputs, keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(2, 3)(inputs)))
    with pytest.raises(InputError, match="leave output= unset"):
        interpkit.load(flat, output="max@1")
