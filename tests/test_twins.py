"""Cross-backend twins (tests/twins.py): the same network in PyTorch, ONNX and Keras agrees everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import twins

from interpkit import receptive_fields
from interpkit.testing import random_one_hot


@pytest.fixture(scope="module")
def twin_models(tmp_path_factory):
    model = twins.torch_twin()
    path = twins.onnx_twin(model, tmp_path_factory.mktemp("twins") / "twin.onnx")
    return model, twins.keras_twin(model), path


def test_frameworks_agree_on_raw_predictions(twin_models):
    # The builders themselves: each framework's own forward pass on the same one-hot batch.
    X = random_one_hot(9, twins.LENGTH, random_state=1)
    ys = twins.raw_predictions(*twin_models, X)
    assert ys["torch"].shape == (9, 3) and np.abs(ys["torch"]).max() > 0.01
    for name in ("keras", "onnx"):
        np.testing.assert_allclose(ys[name], ys["torch"], atol=1e-5, err_msg=name)


@pytest.fixture(scope="module")
def backends(twin_models):
    import interpkit

    model, keras_model, path = twin_models
    return {"torch": interpkit.load(model), "keras": interpkit.load(keras_model), "onnx": interpkit.load(path)}


def _conv_pool_rows(model):
    return [(info.name, info.kind, info.kernel_size, info.stride, geom.receptive_field, geom.jump)
            for info, geom in zip(model.layers(), receptive_fields(model.layers()))
            if info.kind in ("conv", "maxpool")]


def test_backends_agree_on_predictions_and_gradients(backends):
    X = random_one_hot(9, twins.LENGTH, random_state=2)
    y = {name: m.predict(X) for name, m in backends.items()}
    g = {name: m.gradient(X, 1) for name, m in backends.items()}
    for name in ("keras", "onnx"):
        assert np.abs(y[name] - y["torch"]).max() <= 1e-4, name
        assert np.abs(g[name] - g["torch"]).max() <= 1e-4 * max(1.0, np.abs(g["torch"]).max()), name
    assert backends["onnx"].input_spec.layout == "NCL" and backends["keras"].input_spec.layout == "NLC"


def test_backends_have_the_same_layer_geometry(backends):
    # The hand-computed geometry of the conv/pool stack (tests/twins.py), on every backend.
    expected = list(twins.GEOMETRY)
    for name, model in backends.items():
        rows = _conv_pool_rows(model)
        assert [(kind, k, s, rf, j) for _, kind, k, s, rf, j in rows] == expected, name


def test_backends_agree_on_activations_at_every_conv_and_pool(backends):
    X = random_one_hot(5, twins.LENGTH, random_state=3)
    per_backend = {name: [m.activations(X, row[0]) for row in _conv_pool_rows(m)] for name, m in backends.items()}
    for name in ("keras", "onnx"):
        for i, (a, b) in enumerate(zip(per_backend[name], per_backend["torch"])):
            assert a.shape == b.shape, (name, i)
            assert np.abs(a - b).max() <= 1e-4, (name, i)
