"""The layer table of a Keras model: kinds, 1-D geometry along the sequence axis, and graph inputs.

Works on Keras 3 and tf_keras models alike (both expose ``model.layers``, ``get_config()`` and
``layer.input`` tensors whose ``_keras_history[0]`` is the layer that produced them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interpkit.errors import InputError
from interpkit.probe import INPUT, LayerInfo, same_padding

__all__ = ["keras_layer_table", "seq_axis", "tensor_channels"]

_KINDS = {
    **dict.fromkeys(("Conv1D", "Conv2D", "Convolution1D", "Convolution2D", "SeparableConv1D", "SeparableConv2D",
                     "DepthwiseConv1D", "DepthwiseConv2D"), "conv"),
    **dict.fromkeys(("MaxPooling1D", "MaxPooling2D", "MaxPool1D", "MaxPool2D"), "maxpool"),
    **dict.fromkeys(("AveragePooling1D", "AveragePooling2D", "AvgPool1D", "AvgPool2D"), "avgpool"),
    **dict.fromkeys(("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
                     "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalAvgPool1D", "GlobalAvgPool2D"), "global_pool"),
    **dict.fromkeys(("BatchNormalization", "LayerNormalization", "GroupNormalization"), "norm"),
    **dict.fromkeys(("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU"), "activation"),
    **dict.fromkeys(("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
                     "AlphaDropout"), "dropout"),
    # element-wise merges of aligned branches keep the geometry: all counted as "add"
    **dict.fromkeys(("Add", "Subtract", "Average", "Maximum", "Minimum"), "add"),
    "Multiply": "multiply",
    "Concatenate": "concat",
    "Dense": "dense",
    "Flatten": "flatten",
    **dict.fromkeys(("LSTM", "GRU", "SimpleRNN", "Bidirectional", "RNN"), "recurrent"),
    "MultiHeadAttention": "attention",
}


def seq_axis(layout: str, rank: int) -> int:
    """Axis of the sequence positions in a tensor of ``rank`` laid out like the model input."""
    if rank == 3:
        return 1 if layout == "NLC" else 2
    return 3 if layout == "NC1L" else 2  # NC1L (N, C, 1, L); NCL1 (N, C, L, 1)


def tensor_channels(shape: Sequence[int | None], layout: str) -> int | None:
    """C of the (N, C, L') view of a tensor of ``shape`` (see ``model._channels_first``)."""
    dims = list(shape)
    if len(dims) == 2:
        return dims[1]
    if len(dims) == 3:
        return dims[2] if layout == "NLC" else dims[1]
    if len(dims) == 4 and layout in ("NC1L", "NCL1"):
        other = dims[2] if layout == "NC1L" else dims[3]
        return None if dims[1] is None or other is None else dims[1] * other
    return None


def _pick(value: Any, layout: str, data_format: str | None) -> int:
    """The sequence-axis entry of a Keras size tuple ((k,) for 1-D, (kh, kw) for 2-D layers).

    For a 2-D layer the tuple follows its spatial axes: (2, 3) of (N, C, H, W) with
    "channels_first", (1, 2) of (N, H, W, C) with "channels_last" (Keras' default); the entry
    taken is the one of the tensor axis holding the sequence (2 for NCL1, 3 for NC1L).
    """
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(values) == 1:
        return int(values[0])
    spatial = (2, 3) if data_format == "channels_first" else (1, 2)
    axis = seq_axis(layout, 4)
    if axis not in spatial:
        raise InputError(f"a 2-D Keras layer with data_format={data_format!r} on a {layout} input has the sequence "
                         "on its channel axis; interpkit cannot read its geometry (use Conv1D, or (N, 4, L, 1) input).")
    return int(values[spatial.index(axis)])


def _left_padding(padding: str, k_eff: int, stride: int, length: int | None) -> int:
    """Zero padding left of the sequence, as TensorFlow adds it ("causal": all of it on the left)."""
    if padding == "causal":
        return k_eff - 1
    return same_padding(k_eff, stride, length) if padding == "same" else 0


def _shape(layer: Any, attr: str) -> tuple[int | None, ...]:
    try:
        return tuple(getattr(layer, attr).shape)
    except (AttributeError, ValueError, RuntimeError):  # several tensors, shared or unbuilt layers
        return ()


def _inputs(layer: Any) -> list[Any]:
    try:
        tensors = layer.input
    except (AttributeError, ValueError, RuntimeError):  # shared layers, unbuilt layers
        return []
    tensors = tensors if isinstance(tensors, (list, tuple)) else [tensors]
    return [t._keras_history[0] for t in tensors if hasattr(t, "_keras_history")]


def _info(layer: Any, layout: str, inputs: tuple[str, ...]) -> LayerInfo:
    name, cls, config = layer.name, type(layer).__name__, layer.get_config()
    kind = _KINDS.get(cls, "unknown")
    in_shape = _shape(layer, "input")
    if kind == "dense" and len(in_shape) > 2:  # Dense on (N, L, C) acts on each position: a 1-bp convolution
        kind = "conv"
    fused = getattr(getattr(layer, "activation", None), "__name__", None) if kind in ("conv", "dense") else None
    geometry: dict[str, int] = {}
    if kind in ("conv", "maxpool", "avgpool") and cls != "Dense":
        size = config["kernel_size"] if kind == "conv" else config["pool_size"]
        fmt = config.get("data_format")
        k, s = _pick(size, layout, fmt), _pick(config.get("strides") or size, layout, fmt)
        d = _pick(config.get("dilation_rate", 1), layout, fmt)
        length = in_shape[seq_axis(layout, len(in_shape))] if len(in_shape) in (3, 4) else None
        p = _left_padding(config.get("padding", "valid"), d * (k - 1) + 1, s, length)
        geometry = {"kernel_size": k, "stride": s, "dilation": d, "padding": p}
    channels = tensor_channels(_shape(layer, "output"), layout)
    return LayerInfo(name, kind, **geometry, channels=channels, inputs=inputs,
                     activation=None if fused in (None, "linear") else fused)


def keras_layer_table(model: Any, *, layout: str, sequence_input: str) -> tuple[list[LayerInfo], list[Any]]:
    """Layer table of a Keras 3 or tf_keras model in ``model.layers`` order.

    Parameters
    ----------
    model : keras.Model or tf_keras.Model
    layout : {"NCL", "NLC", "NC1L", "NCL1"}
        The model's input layout; tensors inside the model are assumed to share it, and the
        sequence axis of 2-D kernels is the last for "NC1L", the first for "NCL1".
    sequence_input : str
        Name of the InputLayer that takes the one-hot sequence; other InputLayers (extra inputs
        such as Xpresso's half-life features) carry no positions and are left out of ``inputs``.

    Returns
    -------
    (list of LayerInfo, list of keras layers)
        InputLayers are skipped. Kinds: Conv1D/Conv2D (and separable/depthwise) "conv" with
        kernel, stride, dilation and left padding ("valid" 0, "same" (k_eff - 1) // 2 or TensorFlow's
        exact left share for strides > 1 when the length is known, "causal" k_eff - 1);
        Max/AveragePooling "maxpool"/"avgpool"; Global*Pooling "global_pool"; normalisations
        "norm"; Activation/ReLU/... "activation"; Dropout/noise "dropout"; Dense "dense" (a 1-bp
        "conv" on per-position input); Flatten "flatten"; Add/Subtract/Average/Maximum/Minimum
        "add"; Multiply "multiply"; Concatenate "concat"; RNNs "recurrent"; MultiHeadAttention
        "attention"; everything else (Lambda, Reshape, Permute, cropping, nested models) "unknown".
        Activations fused into Conv/Dense layers are in ``LayerInfo.activation``; ``inputs`` lists
        the producing layers from the functional graph, :data:`~interpkit.probe.INPUT` for the
        sequence input.
    """
    infos: list[LayerInfo] = []
    layers: list[Any] = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        names = []
        for producer in _inputs(layer):
            if type(producer).__name__ != "InputLayer":
                names.append(producer.name)
            elif producer.name == sequence_input:
                names.append(INPUT)
        infos.append(_info(layer, layout, tuple(names)))
        layers.append(layer)
    return infos, layers
