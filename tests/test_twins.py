"""Cross-backend twins (tests/twins.py): the same network in PyTorch, ONNX and Keras agrees everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import twins

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
