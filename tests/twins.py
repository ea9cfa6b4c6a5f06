"""Cross-backend twins: one small Basset-like network in PyTorch, exported to ONNX, rebuilt in Keras.

The three copies share every weight, so predictions, activations and every method's output
must agree across backends (the oracle of DESIGN.md). Frameworks are imported inside the
builders; each builder returns the framework's own model object.

Architecture (input 100 bp, NCL in torch/ONNX, NLC in Keras):
conv1 7 bp x 8 -> bn1 -> relu1 -> pool1 3/3 -> conv2 5 bp x 6 ("same") -> bn2 -> relu2 -> pool2 2/2
-> flatten (channel-major, as torch) -> fc1 16 -> relu3 -> fc2 3 outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LENGTH = 100
#: (kind, kernel, stride, receptive field, jump) of the conv/pool stack, hand-computed:
#: conv7: 7, j1; pool3: 7 + 2 = 9, j3; conv5: 9 + 4*3 = 21, j3; pool2: 21 + 1*3 = 24, j6.
GEOMETRY = [("conv", 7, 1, 7, 1), ("maxpool", 3, 3, 9, 3), ("conv", 5, 1, 21, 3), ("maxpool", 2, 2, 24, 6)]


def torch_twin(seed: int = 0):
    """The PyTorch network with seeded random weights and non-trivial BatchNorm statistics, in eval mode."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential()
    for name, module in [
        ("conv1", nn.Conv1d(4, 8, 7)), ("bn1", nn.BatchNorm1d(8)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool1d(3)),
        ("conv2", nn.Conv1d(8, 6, 5, padding=2)), ("bn2", nn.BatchNorm1d(6)), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool1d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(6 * 15, 16)), ("relu3", nn.ReLU()), ("fc2", nn.Linear(16, 3)),
    ]:
        model.add_module(name, module)
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return model.eval()


def onnx_twin(model, path: Path, *, batch: int | None = None) -> Path:
    """Export the torch twin to ONNX (dynamic batch axis unless ``batch`` fixes it)."""
    import torch

    example = torch.zeros(batch or 2, 4, LENGTH)
    dynamic = None if batch else {"x": {0: "batch"}, "y": {0: "batch"}}
    # PRESERVE keeps BatchNorm as its own node (eval export would fold it into the conv before it).
    torch.onnx.export(model, (example,), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes=dynamic, opset_version=17, dynamo=False,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    return path


def keras_twin(model):
    """Rebuild the torch twin in Keras 3 (NLC input) with the same weights."""
    import keras

    t = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    inputs = keras.Input((LENGTH, 4), name="x")
    x = keras.layers.Conv1D(8, 7, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(epsilon=1e-5, name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling1D(3, name="pool1")(x)
    x = keras.layers.Conv1D(6, 5, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(epsilon=1e-5, name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.MaxPooling1D(2, name="pool2")(x)
    x = keras.layers.Permute((2, 1), name="to_channels_first")(x)  # flatten channel-major, as torch does
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(16, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(3, name="fc2")(x)
    km = keras.Model(inputs, outputs, name="twin")
    for conv in ("conv1", "conv2"):
        km.get_layer(conv).set_weights([t[f"{conv}.weight"].transpose(2, 1, 0), t[f"{conv}.bias"]])
    for bn in ("bn1", "bn2"):
        km.get_layer(bn).set_weights([t[f"{bn}.weight"], t[f"{bn}.bias"], t[f"{bn}.running_mean"],
                                      t[f"{bn}.running_var"]])
    for fc in ("fc1", "fc2"):
        km.get_layer(fc).set_weights([t[f"{fc}.weight"].T, t[f"{fc}.bias"]])
    return km


def raw_predictions(model, km, onnx_path: Path, X: np.ndarray) -> dict[str, np.ndarray]:
    """Each framework's own forward pass on canonical one-hot X (N, 4, L): the twins' ground truth."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        y_torch = model(torch.from_numpy(X)).numpy()
    y_keras = np.asarray(km(X.transpose(0, 2, 1), training=False))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    y_onnx = session.run(None, {"x": X})[0]
    return {"torch": y_torch, "keras": y_keras, "onnx": y_onnx}


def demo_to_torch(km):
    """A NeuronMotif demo (Keras Sequential of Conv1D, BatchNormalization, Activation, MaxPooling1D, Flatten)
    rebuilt as a PyTorch nn.Sequential with the same weights (NCL input), layer names kept."""
    import torch
    from torch import nn

    model = nn.Sequential()
    channels = 4
    for layer in km.layers:
        kind = type(layer).__name__
        weights = [np.asarray(w) for w in layer.get_weights()]
        if kind == "Conv1D":
            module = nn.Conv1d(channels, layer.filters, layer.kernel_size[0])
            module.weight.data = torch.from_numpy(weights[0].transpose(2, 1, 0).copy())
            module.bias.data = torch.from_numpy(weights[1].copy())
            channels = layer.filters
        elif kind == "BatchNormalization":
            module = nn.BatchNorm1d(channels, eps=layer.epsilon)
            for name, value in zip(("weight", "bias", "running_mean", "running_var"), weights):
                getattr(module, name).data = torch.from_numpy(value.copy())
        elif kind == "Activation":
            module = {"relu": nn.ReLU(), "sigmoid": nn.Sigmoid()}[layer.get_config()["activation"]]
        elif kind == "MaxPooling1D":
            module = nn.MaxPool1d(layer.pool_size[0])
        elif kind == "Flatten":
            module = nn.Flatten()
        else:
            continue
        model.add_module(layer.name, module)
    return model.eval()


def check_packed_neuron(model, layer: str, R: int, per: int, reference_gradient, *, atol: float = 1e-6) -> None:
    """Check ``model.neuron``/``neuron_gradient`` on windows packed ``per`` to an input against each window
    alone in an all-N LENGTH-bp input: the activation at its output position, and
    ``reference_gradient(X, position)`` -> (M, 4, LENGTH), the framework's own gradient of that activation."""
    from interpkit.probe import receptive_fields, window_packing
    from interpkit.testing import random_one_hot

    index = [info.name for info in model.layers()].index(layer)
    pack = window_packing(receptive_fields(model.layers())[index], LENGTH)
    assert (pack.receptive_field, pack.per) == (R, per), layer
    W = random_one_hot(2 * per + 3, R, random_state=R)  # the last input partly filled
    X = np.zeros((len(W), 4, LENGTH), np.float32)
    X[:, :, pack.begin:pack.begin + R] = W
    np.testing.assert_allclose(model.neuron(layer, 2, W), model.activations(X, layer)[:, 2, pack.position],
                               rtol=1e-5, atol=atol, err_msg=layer)
    grad = reference_gradient(X, pack.position)
    np.testing.assert_allclose(model.neuron_gradient(layer, 2, W), grad[:, :, pack.begin:pack.begin + R],
                               rtol=1e-5, atol=atol, err_msg=layer)
