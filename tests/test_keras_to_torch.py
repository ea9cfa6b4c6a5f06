"""The Keras -> PyTorch translation (interpkit_keras.to_torch) and KerasModel.torch_function.

Oracles: each framework's own forward pass (``model(x, training=False)`` of Keras 3 and tf_keras, on random
weights and inputs, BatchNorm with non-trivial moving statistics), the PyTorch twin of tests/twins.py that the
Keras twin was built from, and interpkit's predict on the real checkpoints of ../shared/checkpoints.
"""

from __future__ import annotations

import numpy as np
import pytest

import interpkit
from interpkit import Capability, CapabilityError, InterpkitWarning, capabilities_of
from interpkit.sequences import one_hot_encode, read_fasta
from interpkit.testing import random_one_hot

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
tk = pytest.importorskip("interpkit_keras.to_torch")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

L = keras.layers
TOL = 1e-5


def _inputs(shapes, seed=0, scale=1.5):
    rng = np.random.default_rng(seed)
    return [(scale * rng.normal(size=(3, *s))).astype(np.float32) for s in shapes]


def _max_diff(km, shapes, seed=0, scale=1.5):
    """max |to_torch(km)(x) - km(x, training=False)| over all outputs, on random normal inputs; relative to the
    largest |output| where that exceeds 1."""
    xs = _inputs(shapes, seed, scale)
    expected = km(xs[0] if len(xs) == 1 else xs, training=False)
    expected = [np.asarray(e) for e in (expected if isinstance(expected, (list, tuple)) else [expected])]
    with torch.no_grad():
        got = tk.to_torch(km)(*[torch.from_numpy(x) for x in xs])
    got = [g.numpy() for g in (got if isinstance(got, list) else [got])]
    assert [g.shape for g in got] == [e.shape for e in expected]
    return max(float(np.abs(g - e).max() / max(1.0, np.abs(e).max())) for g, e in zip(got, expected))


def _seq(shape, *layers):
    """A Keras 3 functional chain of ``layers`` on one input of ``shape``."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def _random_bn(layer, rng=None):
    rng = rng or np.random.default_rng(1)
    shapes = [w.shape for w in layer.get_weights()]
    n = len(shapes)
    values = [rng.uniform(0.5, 1.5, s) if i in (0, n - 1) else rng.uniform(-0.5, 0.5, s) for i, s in enumerate(shapes)]
    layer.set_weights(values)  # gamma / variance in [0.5, 1.5], beta / mean in [-0.5, 0.5]


# -- every layer kind, Keras 3 --------------------------------------------------------------------------------
CASES = {
    "conv1d_valid": lambda: (_seq((30, 4), L.Conv1D(5, 7)), [(30, 4)]),
    "conv1d_same_even_kernel": lambda: (_seq((30, 4), L.Conv1D(5, 4, padding="same")), [(30, 4)]),
    "conv1d_same_stride": lambda: (_seq((31, 4), L.Conv1D(5, 4, strides=3, padding="same")), [(31, 4)]),
    "conv1d_same_dilated": lambda: (_seq((30, 4), L.Conv1D(5, 3, dilation_rate=3, padding="same")), [(30, 4)]),
    "conv1d_causal": lambda: (_seq((30, 4), L.Conv1D(5, 3, dilation_rate=2, padding="causal")), [(30, 4)]),
    "conv1d_strided_valid": lambda: (_seq((30, 4), L.Conv1D(5, 5, strides=2, use_bias=False)), [(30, 4)]),
    "conv1d_groups_relu": lambda: (_seq((30, 4), L.Conv1D(6, 3, groups=2, activation="relu")), [(30, 4)]),
    "conv1d_channels_first": lambda: (_seq((4, 30), L.Conv1D(5, 4, padding="same", data_format="channels_first")),
                                      [(4, 30)]),
    "conv2d_same_stride": lambda: (_seq((9, 10, 3), L.Conv2D(4, (3, 2), strides=(2, 3), padding="same")),
                                   [(9, 10, 3)]),
    "conv2d_channels_first": lambda: (_seq((4, 1, 30), L.Conv2D(5, (1, 5), dilation_rate=(1, 2),
                                                                data_format="channels_first", activation="tanh")),
                                      [(4, 1, 30)]),
    "dense_rank2": lambda: (_seq((12,), L.Dense(5, activation="sigmoid")), [(12,)]),
    "dense_rank3": lambda: (_seq((7, 4), L.Dense(5, activation="elu", use_bias=False)), [(7, 4)]),
    "layernorm_last": lambda: (_seq((9, 6), L.LayerNormalization()), [(9, 6)]),
    "layernorm_two_axes": lambda: (_seq((9, 6), L.LayerNormalization(axis=(-2, -1), center=False)), [(9, 6)]),
    "relu_full": lambda: (_seq((20,), L.ReLU(max_value=2.5, negative_slope=0.1, threshold=0.5)), [(20,)]),
    "relu6_slope": lambda: (_seq((20,), L.ReLU(max_value=6.0, negative_slope=0.2)), [(20,)]),
    "relu_threshold": lambda: (_seq((20,), L.ReLU(threshold=0.3)), [(20,)]),
    "relu_clip_threshold": lambda: (_seq((20,), L.ReLU(max_value=1.0, threshold=0.3)), [(20,)]),
    "relu_leaky": lambda: (_seq((20,), L.ReLU(negative_slope=0.2)), [(20,)]),
    "leaky_relu_layer": lambda: (_seq((20,), L.LeakyReLU(0.1)), [(20,)]),
    "elu_layer": lambda: (_seq((20,), L.ELU(0.7)), [(20,)]),
    "softmax_axis1": lambda: (_seq((6, 5), L.Softmax(axis=1)), [(6, 5)]),
    "softmax_two_axes": lambda: (_seq((6, 5), L.Softmax(axis=[1, 2])), [(6, 5)]),
    "maxpool1d_valid": lambda: (_seq((31, 3), L.MaxPooling1D(3)), [(31, 3)]),
    "maxpool1d_same": lambda: (_seq((31, 3), L.MaxPooling1D(4, strides=3, padding="same")), [(31, 3)]),
    "maxpool2d_same": lambda: (_seq((7, 9, 3), L.MaxPooling2D((2, 3), padding="same")), [(7, 9, 3)]),
    "maxpool1d_channels_first": lambda: (_seq((3, 31), L.MaxPooling1D(2, data_format="channels_first")),
                                         [(3, 31)]),
    "avgpool1d_valid": lambda: (_seq((31, 3), L.AveragePooling1D(4, strides=2)), [(31, 3)]),
    "avgpool1d_same": lambda: (_seq((31, 3), L.AveragePooling1D(4, strides=3, padding="same")), [(31, 3)]),
    "avgpool2d_same": lambda: (_seq((7, 9, 3), L.AveragePooling2D(3, strides=2, padding="same")), [(7, 9, 3)]),
    "global_pools": lambda: (_seq((20, 3), L.GlobalMaxPooling1D(keepdims=True), L.Flatten()), [(20, 3)]),
    "global_avg1d_channels_first": lambda: (_seq((3, 20), L.GlobalAveragePooling1D(data_format="channels_first")),
                                            [(3, 20)]),
    "global_max2d": lambda: (_seq((5, 6, 3), L.GlobalMaxPooling2D()), [(5, 6, 3)]),
    "global_avg2d_keepdims": lambda: (_seq((5, 6, 3), L.GlobalAveragePooling2D(keepdims=True)), [(5, 6, 3)]),
    "flatten_reshape_permute": lambda: (_seq((6, 4), L.Permute((2, 1)), L.Flatten(), L.Reshape((3, -1)), L.Dense(2)),
                                        [(6, 4)]),
    "flatten_channels_first": lambda: (_seq((3, 5, 2), L.Flatten(data_format="channels_first")), [(3, 5, 2)]),
    "repeat_vector": lambda: (_seq((5,), L.RepeatVector(3)), [(5,)]),
    "padding_cropping_1d": lambda: (_seq((10, 3), L.ZeroPadding1D((2, 3)), L.Cropping1D((1, 4)),
                                         L.UpSampling1D(3)), [(10, 3)]),
    "padding_cropping_2d": lambda: (_seq((6, 7, 2), L.ZeroPadding2D(((1, 2), (0, 3))),
                                         L.Cropping2D(((2, 0), (1, 1)))), [(6, 7, 2)]),
    "padding_cropping_2d_channels_first": lambda: (
        _seq((2, 6, 7), L.ZeroPadding2D(((1, 2), (0, 3)), data_format="channels_first"),
             L.Cropping2D(((2, 0), (1, 1)), data_format="channels_first")), [(2, 6, 7)]),
    "dropouts": lambda: (_seq((20, 4), L.Dropout(0.5), L.SpatialDropout1D(0.5), L.GaussianNoise(1.0),
                              L.GaussianDropout(0.5), L.AlphaDropout(0.5), L.ActivityRegularization(0.1),
                              L.Identity()), [(20, 4)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layer_equals_keras(case):
    km, shapes = CASES[case]()
    assert tk.unsupported_layers(km) == []
    assert _max_diff(km, shapes) <= TOL


def test_batchnorm_with_moving_statistics():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 30))  # channels first: BN on axis 1, then two BNs without center / scale
    x = L.Conv1D(6, 5, data_format="channels_first")(inputs)
    x = L.BatchNormalization(axis=1, epsilon=1e-2, name="bn1")(x)
    x = L.Permute((2, 1))(x)
    x = L.BatchNormalization(center=False, name="bn2")(x)
    x = L.BatchNormalization(scale=False, name="bn3")(x)
    km = keras.Model(inputs, x)
    for name in ("bn1", "bn2", "bn3"):
        _random_bn(km.get_layer(name))
    assert _max_diff(km, [(4, 30)]) <= TOL


@pytest.mark.parametrize("name", sorted(tk._ACTIVATIONS["keras"]))
def test_activations_by_name_keras3(name):
    km = _seq((5, 8), L.Dense(6, activation=name))
    assert _max_diff(km, [(5, 8)], scale=3.0) <= TOL


def test_prelu_with_and_without_shared_axes():
    for shared in (None, [1]):
        km = _seq((9, 4), L.Conv1D(5, 3), L.PReLU(shared_axes=shared, name="prelu"))
        prelu = km.get_layer("prelu")
        prelu.set_weights([np.random.default_rng(2).uniform(0.05, 0.5, prelu.get_weights()[0].shape)])
        assert _max_diff(km, [(9, 4)]) <= TOL


def test_functional_graph_with_merges_shared_layer_and_two_outputs():
    keras.utils.set_random_seed(3)
    a, b = keras.Input((20, 4), name="a"), keras.Input((20, 4), name="b")
    conv = L.Conv1D(5, 3, padding="same", name="shared_conv")
    ca, cb = conv(a), conv(b)  # one layer called twice
    merged = [L.Add()([ca, cb]), L.Subtract()([ca, cb]), L.Multiply()([ca, cb]), L.Average()([ca, cb, ca]),
              L.Maximum()([ca, cb]), L.Minimum()([ca, cb])]
    x = L.Concatenate(axis=-1)(merged)
    wide = L.Add()([L.GlobalMaxPooling1D()(x), L.Dense(30)(L.Flatten()(ca))])
    out2 = L.Add()([x, L.Dense(30)(L.GlobalAveragePooling1D()(cb))])  # rank 3 + rank 2: aligned at axis 1
    km = keras.Model([a, b], [L.Dense(2)(wide), out2])
    assert _max_diff(km, [(20, 4), (20, 4)]) <= TOL


def test_nested_models():
    keras.utils.set_random_seed(4)
    inner = keras.Sequential([keras.Input((18, 5)), L.Conv1D(3, 3, activation="relu"), L.MaxPooling1D(2)],
                             name="inner_seq")
    x_in = keras.Input((20, 4))
    body_in = keras.Input((20, 4))
    body = keras.Model(body_in, inner(L.Conv1D(5, 3)(body_in)), name="body")
    km = keras.Model(x_in, L.Dense(2)(L.Flatten()(body(x_in))))
    assert _max_diff(km, [(20, 4)]) <= TOL


def test_keras_twin_equals_its_torch_twin():
    import twins

    net = twins.torch_twin(seed=5)
    km = twins.keras_twin(net)
    X = random_one_hot(6, twins.LENGTH, random_state=5)
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
        got = tk.to_torch(km)(torch.from_numpy(X.transpose(0, 2, 1).copy())).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


def test_translation_is_plain_torch_calls():
    """Nonlinearities are torch calls a TorchFunctionMode sees; buffers only, no parameters, nothing in place."""
    from torch.overrides import TorchFunctionMode

    km = _seq((31, 4), L.Conv1D(5, 4, padding="same", activation="relu"), L.MaxPooling1D(3, padding="same"),
              L.Conv1D(3, 3), L.Activation("sigmoid"), L.GlobalMaxPooling1D())
    module = tk.to_torch(km)
    names = []

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            names.append(getattr(func, "__name__", ""))
            return func(*args, **(kwargs or {}))

    x = torch.from_numpy(_inputs([(31, 4)])[0]).requires_grad_(True)
    with Record():
        module(x).sum().backward()
    assert {"relu", "max_pool1d", "sigmoid", "amax", "pad"} <= set(names)
    assert not [n for n in names if n.endswith("_") and not n.startswith("_")]
    assert list(module.parameters()) == [] and len(list(module.buffers())) == 4
    assert x.grad is not None and not module.training


# -- tf_keras (legacy Keras 2) ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tf_keras():
    return pytest.importorskip("tf_keras")


def test_tf_keras_sequential(tf_keras):
    T = tf_keras.layers
    tf_keras.utils.set_random_seed(6)
    km = tf_keras.Sequential([
        T.Conv1D(6, 5, padding="same", input_shape=(30, 4)), T.BatchNormalization(name="bn"),
        T.LeakyReLU(0.2), T.MaxPooling1D(2, padding="same"), T.Conv1D(4, 3, activation="hard_sigmoid"),
        T.ThresholdedReLU(0.4), T.AveragePooling1D(3, padding="same"), T.Flatten(), T.Dropout(0.5),
        T.Dense(8), T.ReLU(max_value=1.5, threshold=0.1), T.Dense(2, activation="softmax"),
    ])
    _random_bn(km.get_layer("bn"))
    assert _max_diff(km, [(30, 4)]) <= TOL


@pytest.mark.parametrize("name", sorted(tk._ACTIVATIONS["tf_keras"]))
def test_activations_by_name_tf_keras(tf_keras, name):
    tf_keras.utils.set_random_seed(7)
    inputs = tf_keras.Input((5, 8))
    km = tf_keras.Model(inputs, tf_keras.layers.Dense(6, activation=name)(inputs))
    assert _max_diff(km, [(5, 8)], scale=3.0) <= TOL


# -- refusals and capabilities ---------------------------------------------------------------------------------
def _lambda_model():
    inputs = keras.Input((20, 4))
    x = L.Conv1D(3, 5, name="conv")(inputs)
    x = L.Lambda(lambda t: 2.0 * t, name="double")(x)
    return keras.Model(inputs, L.GlobalMaxPooling1D(name="gmax")(x))


class _MyConv(keras.layers.Conv1D):
    """A subclass may change ``call``: refused, not translated as a Conv1D."""


def test_unsupported_layers_are_named():
    km = _lambda_model()
    assert tk.unsupported_layers(km) == ["double (Lambda)"]
    with pytest.raises(CapabilityError, match=r"double \(Lambda\).*use ism or saliency"):
        tk.to_torch(km)
    inputs = keras.Input((20, 4))
    custom = keras.Model(inputs, L.Dense(2, activation=lambda t: t * 2.0, name="fc")(_MyConv(3, 5, name="mine")(inputs)))
    assert tk.unsupported_layers(custom) == ["mine (_MyConv)", "fc (Dense: activation '<lambda>')"]


def test_capability_follows_the_translation():
    keras.utils.set_random_seed(8)
    inputs = keras.Input((20, 4))
    good = interpkit.load(keras.Model(inputs, L.Dense(2)(L.GlobalMaxPooling1D()(L.Conv1D(3, 5)(inputs)))))
    bad = interpkit.load(_lambda_model())
    assert Capability.TORCH_FUNCTION in capabilities_of(good)
    assert Capability.TORCH_FUNCTION not in capabilities_of(bad) and Capability.GRADIENT in capabilities_of(bad)
    assert bad.untranslatable == ["double (Lambda)"]
    with pytest.raises(CapabilityError, match="double"), bad.torch_function():
        pass


# -- torch_function on interpkit models ------------------------------------------------------------------------
def _through_torch_function(model, X):
    with model.torch_function() as tf:
        assert (tf.source, tf.device, tf.dtype) == ("translation", torch.device("cpu"), torch.float32)
        with torch.no_grad():
            return tf.forward(torch.from_numpy(X)).numpy()


def test_torch_function_reduces_per_position_outputs_and_reorders_the_alphabet():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None, 4))
    km = keras.Model(inputs, L.Conv1D(3, 5, padding="same", activation="softplus", name="track")(inputs))
    model = interpkit.load(km, output="sum:10:-5@2,0", alphabet="AGCT")
    X = random_one_hot(4, 40, random_state=8)
    y = _through_torch_function(model, X)
    assert y.shape == (4, 2)
    np.testing.assert_allclose(y, model.predict(X), rtol=1e-5, atol=1e-5)
    x = torch.from_numpy(X).requires_grad_(True)  # gradients reach the canonical input
    with model.torch_function() as tf:
        tf.forward(x)[:, 1].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), model.gradient(X, 1), rtol=1e-4, atol=1e-5)


def _assert_close_to_predict(model, X):
    """Max |torch_function - predict|, checked <= 1e-4 of the output scale; returned for the report."""
    y, expected = _through_torch_function(model, X), model.predict(X)
    diff = float(np.abs(y - expected).max())
    assert y.shape == expected.shape and diff <= 1e-4 * float(np.abs(expected).max())
    return diff


def test_tal_gata_checkpoint(shared):
    import tal_gata as tg

    model = interpkit.load(shared / tg.KERAS_JSON)
    assert model.framework == "tf_keras" and model.untranslatable == []
    X = tg.load_simdata(shared / tg.SIMDATA).X[:64]
    print("tal_gata max diff", _assert_close_to_predict(model, X))


def test_xpresso_checkpoint_with_its_extra_input(shared):
    _, (chrom,) = read_fasta(shared / "data/genome/test_grch37_chr10_0-110kb.fa")
    X = one_hot_encode([chrom[s: s + 10_500].ljust(10_500, "N") for s in (60_000, 80_000, 100_000)])
    path = shared / "checkpoints/xpresso/human_trainepoch.11-0.426.h5"
    with pytest.warns(InterpkitWarning, match="halflife"):
        default = interpkit.load(path)
    halflife = np.array([0.5, -1.0, 0.2, 1.5, 0.0, -0.3], dtype=np.float32)
    model = interpkit.load(path, extra_inputs={"halflife": halflife})
    for m in (default, model):
        print("xpresso max diff", _assert_close_to_predict(m, X))


def test_optimus_checkpoint(shared):
    model = interpkit.load(shared / "checkpoints/optimus5prime/retrained_evolution_model.hdf5")
    assert model.framework == "tf_keras"
    print("optimus max diff", _assert_close_to_predict(model, random_one_hot(64, 54, random_state=2)))


@pytest.mark.parametrize("demo", ["demo1", "demo2"])
def test_neuronmotif_demos(shared, demo):
    model = interpkit.load(shared / f"checkpoints/neuronmotif_demos/{demo}/weight.hdf5")
    length = model.input_spec.length
    print(f"{demo} max diff", _assert_close_to_predict(model, random_one_hot(64, length, random_state=3)))
