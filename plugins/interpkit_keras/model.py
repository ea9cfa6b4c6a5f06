"""A Keras 3 or tf_keras model behind :class:`~interpkit.Predictor` and :class:`~interpkit.LayerProbe`.

Every forward pass is one ``tf.function`` per purpose (predictions, gradients, one layer's
activations) around ``model(x, training=False)``, traced once for a batch axis of any size. Measured
per batch (CPU, 2 cores): TAL/GATA, 1 sequence: 0.6 ms, against 2.7 ms for the eager call, 3.7 ms for
``predict_on_batch`` and 39 ms for ``Model.predict`` (its per-call set-up); Xpresso, 128 sequences:
58, 132, 57 and 236 ms. ``training=False`` keeps dropout off and BatchNorm on its moving statistics,
and nothing on the user's model changes.

:meth:`KerasModel.torch_function` serves the model as a PyTorch function: a layer-by-layer
translation with the Keras weights (:mod:`interpkit_keras.to_torch`), built once per model, for
methods that rewrite the backward pass (DeepLIFT).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from interpkit import Capability, InputSpec, LayerInfo, LayerProbe, Predictor
from interpkit.adapt import OutputReduction, auto_batch_size, from_model_layout, to_model_layout
from interpkit.errors import CapabilityError, InputError, InterpkitError
from interpkit.predictor import TorchFunction
from interpkit.probe import WindowPacking, choose_window_packing, receptive_fields, resolve_layer
from interpkit.progress import batch_slices
from interpkit.validation import check_finite_outputs, check_index, check_one_hot, check_scalar

from ._runtime import framework_of, import_framework, quiet_warnings, reason
from .layers import keras_layer_table

__all__ = ["KerasModel"]


def _reduce(tf: Any, y: Any, rule: OutputReduction) -> Any:
    """:meth:`OutputReduction.apply` in TensorFlow, so gradients flow through it."""
    if None not in tuple(y.shape)[1:]:  # known at tracing time: an empty window would give NaN
        rule.check_shape(tuple(y.shape))
    if rule.positions == "middle":
        y = tf.transpose(y, [0, 2, 1])
    if rule.window is not None:
        y = y[:, :, slice(*rule.window)]
    if rule.channels is not None:
        y = tf.gather(y, [c % y.shape[1] for c in rule.channels], axis=1)
    if rule.reduce == "center":
        return y[:, :, (tf.shape(y)[2] - 1) // 2]
    return {"mean": tf.reduce_mean, "max": tf.reduce_max, "sum": tf.reduce_sum}[rule.reduce](y, axis=2)


def _channels_first(tf: Any, y: Any, layout: str) -> Any:
    """A tensor laid out like the model input -> (N, C, L'); (N, C) -> (N, C, 1); other ranks -> (N, -1, 1)."""
    rank = len(y.shape)
    if rank == 2:
        return y[:, :, None]
    if rank == 3:
        return tf.transpose(y, [0, 2, 1]) if layout == "NLC" else y
    if rank == 4 and layout in ("NC1L", "NCL1"):
        if layout == "NCL1":
            y = tf.transpose(y, [0, 1, 3, 2])  # (N, C, L, 1) -> (N, C, 1, L)
        return tf.reshape(y, [tf.shape(y)[0], -1, tf.shape(y)[3]])
    return tf.reshape(y, [tf.shape(y)[0], -1, 1])


class KerasModel(Predictor, LayerProbe):
    """A Keras model as a function of canonical one-hot sequences (N, 4, L), ACGT.

    Built by :func:`interpkit_keras.load.load`, which infers the arguments below from the model.

    Parameters
    ----------
    model : keras.Model or tf_keras.Model
        Built, with a functional graph (``model.inputs``).
    input_spec : InputSpec
        Layout, length, alphabet order and extra inputs of the model.
    output_names : sequence of str
        One per output column.
    reduction : OutputReduction or None
        How per-position (rank-3) outputs become (N, T); None when every output is (N, T).
    sequence_index : int
        Which of ``model.inputs`` takes the sequence.
    extra_values : sequence of ndarray or None
        One per model input: the value broadcast to every sequence, None at ``sequence_index``.
    device : str
        TensorFlow device, "/CPU:0" or "/GPU:0".
    batch_size : int or None
        Default batch size; None chooses from free memory (:func:`interpkit.adapt.auto_batch_size`).
    name : str
        File name or model name.
    """

    backend_name = "keras"

    def __init__(self, model: Any, *, input_spec: InputSpec, output_names: Sequence[str],
                 reduction: OutputReduction | None, sequence_index: int, extra_values: Sequence[np.ndarray | None],
                 device: str, batch_size: int | None, name: str) -> None:
        self.keras_model = model
        self._spec = input_spec
        self._names = tuple(output_names)
        self._reduction = reduction
        self._seq = sequence_index
        self._extra = list(extra_values)
        self._device = device
        self._default_batch = batch_size
        self._name = name
        self._functions: dict[tuple, Callable] = {}
        self._table: tuple[list[LayerInfo], list[Any]] | None = None
        self._untranslatable: list[str] | None = None
        self._translation: Any = None
        self._positions: dict[tuple[str, int], int] = {}  # (layer, input length) -> output positions
        self._layouts: dict[str, WindowPacking] = {}  # layer -> how its single neurons are evaluated

    # -- Predictor ---------------------------------------------------------------
    @property
    def input_spec(self) -> InputSpec:
        return self._spec

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def output_reduction(self) -> OutputReduction | None:
        """The rule reducing per-position outputs to (N, T), or None when the outputs are (N, T)."""
        return self._reduction

    @property
    def name(self) -> str:
        return self._name

    @property
    def framework(self) -> str:
        """"keras" (Keras 3) or "tf_keras" (legacy Keras 2)."""
        return framework_of(self.keras_model).__name__

    @property
    def supported_capabilities(self) -> frozenset[Capability]:
        """Everything, less TORCH_FUNCTION when some layer has no PyTorch translation (:attr:`untranslatable`)."""
        return frozenset(Capability) - ({Capability.TORCH_FUNCTION} if self.untranslatable else set())

    @property
    def untranslatable(self) -> list[str]:
        """The layers :func:`interpkit_keras.to_torch.to_torch` cannot translate, "name (Class)"; empty if none."""
        if self._untranslatable is None:
            from .to_torch import unsupported_layers

            self._untranslatable = unsupported_layers(self.keras_model)
        return list(self._untranslatable)

    def model_inputs(self, X: np.ndarray) -> list[np.ndarray]:
        """The arrays the Keras model receives for canonical X (N, 4, L): one per ``model.inputs``."""
        spec = self._spec
        seq = to_model_layout(X, spec.layout, model_alphabet=spec.model_alphabet, alphabet=spec.alphabet,
                              dtype=spec.dtype)
        return [seq if v is None else np.broadcast_to(v, (len(X), *v.shape)) for v in self._extra]

    def _call(self, xs: Sequence[Any]) -> Any:
        return self.keras_model(xs[0] if len(xs) == 1 else list(xs), training=False)

    def _outputs(self, tf: Any, xs: Sequence[Any]) -> Any:
        parts = [_reduce(tf, y, self._reduction) if len(y.shape) == 3 else y
                 for y in tf.nest.flatten(self._call(xs))]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)

    def _signature(self, tf: Any, n_ints: int) -> list[Any]:
        specs = [tf.TensorSpec((None, *t.shape[1:]), t.dtype) for t in self.keras_model.inputs]
        return specs + [tf.TensorSpec((), tf.int32)] * n_ints

    def _function(self, key: tuple, build: Callable[[Any], Callable], n_args: int = 0) -> Callable:
        """The cached ``tf.function`` for ``key``, traced for any batch size."""
        if key not in self._functions:
            tf = import_framework("tensorflow")
            self._functions[key] = tf.function(build(tf), input_signature=self._signature(tf, n_args),
                                              autograph=False)
        return self._functions[key]

    def _seq_gradient(self, tf: Any, value: Callable[..., Any]) -> Callable:
        """f(*inputs, *ints) = d sum(value(inputs, ints)) / d sequence input."""

        def grad(*args: Any) -> Any:
            xs, ints = list(args[: len(self._extra)]), args[len(self._extra):]
            with tf.GradientTape() as tape:
                tape.watch(xs[self._seq])
                total = tf.reduce_sum(value(xs, *ints))
            g = tape.gradient(total, xs[self._seq])
            return tf.zeros_like(xs[self._seq]) if g is None else g

        return grad

    def _batch_size(self, batch_size: int | None, length: int) -> int:
        if batch_size is None:
            batch_size = self._default_batch
        if batch_size is None:
            elements = sum(int(np.prod([length if d is None else d for d in shape[1:]]))
                           for shape in self._layer_shapes())
            batch_size = auto_batch_size(12 * max(1, elements))  # float32, forward and gradient, headroom
        return check_scalar(batch_size, "batch_size", int, min_val=1)

    def _layer_shapes(self) -> Iterator[tuple]:
        for layer in self.keras_model.layers:
            with contextlib.suppress(AttributeError, ValueError, RuntimeError):
                yield tuple(layer.output.shape)

    def _run(self, fn: Callable, X: np.ndarray, batch_size: int | None, *ints: int) -> np.ndarray:
        """fn over X in batches, inside the model's device; framework errors become InputError."""
        tf = import_framework("tensorflow")
        size = self._batch_size(batch_size, X.shape[2])
        parts = []
        try:
            with quiet_warnings(), tf.device(self._device):
                for sl in batch_slices(len(X), size):
                    parts.append(fn(*self.model_inputs(X[sl]), *(tf.constant(i, tf.int32) for i in ints)).numpy())
        except InterpkitError:
            raise
        except (tf.errors.OpError, ValueError) as exc:  # TensorFlow at run time, Keras at tracing
            need = f"{self._spec.length} bp" if self._spec.length else "a length its layers accept"
            raise InputError(f"model {self._name} failed on sequences of {X.shape[2]} bp ({reason(exc)}); "
                             f"it needs {need}.") from None
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _check(self, X: Any, name: str = "X") -> np.ndarray:
        return check_one_hot(X, name, length=self._spec.length)

    def predict(self, X: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Model outputs for one-hot sequences, in batches, without gradients.

        Parameters
        ----------
        X : ndarray of shape (N, 4, L), float32
            Canonical one-hot sequences (A, C, G, T; all-zero column = N).
        batch_size : int or None
            Sequences per forward pass. Default is None (the model's default, else chosen from free memory).

        Returns
        -------
        y : ndarray of shape (N, T), float32
            In the model's own units (e.g. sigmoid probabilities); per-position outputs reduced by
            :attr:`output_reduction`.

        Raises
        ------
        InputError
            For X that is not one-hot (N, 4, L), has the wrong length, or that the model rejects, or
            when an output is NaN or infinite (the message names the output and the sequences).
        """
        X = self._check(X)
        fn = self._function(("predict",), lambda tf: lambda *xs: self._outputs(tf, xs))
        y = self._run(fn, X, batch_size)
        rule = self._reduction
        if rule is not None and rule.window is not None and np.isnan(y).all(axis=0).any():
            # A window beyond the output (unknown length at tracing time) reduces nothing: say so, not NaN.
            raise InputError(f"output window {rule.window} selects no positions of model {self._name}'s output for "
                             f"{X.shape[2]} bp inputs; choose a window inside the output (--output).")
        return check_finite_outputs(y, self._name, self._names)

    def gradient(self, X: np.ndarray, target: int, *, batch_size: int | None = None) -> np.ndarray:
        """Gradient of one output with respect to the one-hot input, through ``tf.GradientTape``.

        Parameters
        ----------
        X : ndarray of shape (N, 4, L), float32
        target : int
            Output column, 0 <= target < T.
        batch_size : int or None
            Default is None (as :meth:`predict`).

        Returns
        -------
        g : ndarray of shape (N, 4, L), float32
            d y[:, target] / d X in canonical order (the model's layout and alphabet order undone).

        Raises
        ------
        InputError
            For bad X (as :meth:`predict`), a target outside [0, T), or a NaN or infinite gradient.
        """
        X = self._check(X)
        target = check_index(target, "target", len(self._names), labels=self._names)
        fn = self._function(("gradient",), lambda tf: self._seq_gradient(
            tf, lambda xs, t: tf.gather(self._outputs(tf, xs), t, axis=1)), n_args=1)
        return check_finite_outputs(self._canonical(self._run(fn, X, batch_size, target)), self._name, self._names,
                                    target=target)

    @contextlib.contextmanager
    def torch_function(self) -> Iterator[TorchFunction]:
        """The model as a differentiable PyTorch function of canonical one-hot input (see :class:`TorchFunction`).

        ``forward(x)`` takes (rows, 4, L) float32 CPU tensors (A, C, G, T), changes the layout and
        alphabet order by torch indexing, supplies the fixed extra inputs, runs the layer-by-layer
        translation (:func:`interpkit_keras.to_torch.to_torch`, built on first use and kept) and
        reduces and concatenates the outputs as :meth:`predict` does, returning (rows, T). The Keras
        model is not touched, so there is nothing to restore on exit.

        Raises
        ------
        CapabilityError
            If some layer has no translation (named; see :attr:`untranslatable`) or torch is missing.
        """
        if self.untranslatable:
            raise CapabilityError(f"model {self._name} has layers without a PyTorch translation: "
                                  f"{', '.join(self.untranslatable)}; use ism or saliency on this model, or port it "
                                  "to PyTorch.")
        from .to_torch import to_torch

        if self._translation is None:
            self._translation = to_torch(self.keras_model)
        import torch

        module, spec, rule = self._translation, self._spec, self._reduction
        extras = [None if v is None else torch.as_tensor(np.asarray(v, np.float32)) for v in self._extra]

        def forward(x: Any) -> Any:
            seq = to_model_layout(x, spec.layout, model_alphabet=spec.model_alphabet, alphabet=spec.alphabet)
            ys = module(*[seq if v is None else v.expand(len(x), *v.shape) for v in extras])
            parts = [rule.apply(y) if y.dim() == 3 else y for y in (ys if isinstance(ys, list) else [ys])]
            return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

        yield TorchFunction(forward, torch.device("cpu"), torch.float32, "translation")

    def _canonical(self, G: np.ndarray) -> np.ndarray:
        spec = self._spec
        return from_model_layout(G, spec.layout, model_alphabet=spec.model_alphabet, alphabet=spec.alphabet)

    # -- LayerProbe --------------------------------------------------------------
    def _layer_table(self) -> tuple[list[LayerInfo], list[Any]]:
        if self._table is None:
            name = self.keras_model.inputs[self._seq]._keras_history[0].name
            self._table = keras_layer_table(self.keras_model, layout=self._spec.layout, sequence_input=name)
        return self._table

    def layers(self) -> list[LayerInfo]:
        """The layer table (see :func:`interpkit_keras.layers.keras_layer_table`); InputLayers are skipped."""
        return list(self._layer_table()[0])

    def _affine_twin(self, layer: Any) -> Any:
        """A copy of a Conv/Dense layer with ``activation="linear"`` and the same weights, built off-graph.

        It is applied to real tensors only, so the user's model gains no nodes and its layer is not touched.
        """
        twin = type(layer).from_config({**layer.get_config(), "activation": "linear",
                                        "name": f"{layer.name}_pre_activation"})
        twin.build(tuple(layer.input.shape))
        twin.set_weights(layer.get_weights())
        return twin

    def _tensor_function(self, index: int, mode: str, *, neuron: str | None = None) -> Callable:
        """tf.function of one layer's output ("output"), input ("input") or pre-activation ("pre"), as (N, C, L').

        With ``neuron="value"`` it takes ints (channel, first, stop, step) after the inputs and returns
        the (N, per) values ``y[:, channel, first:stop:step]``; with ``neuron="gradient"``, the
        gradient of their sum with respect to the sequence input, in the model's layout.
        """
        layer = self._layer_table()[1][index]

        def build(tf: Any) -> Callable:
            with quiet_warnings():
                tensor = layer.output if mode == "output" else layer.input
                sub = framework_of(self.keras_model).Model(self.keras_model.inputs, tensor)
                after = self._affine_twin(layer) if mode == "pre" else None

            def value(xs: Sequence[Any]) -> Any:
                y = sub(list(xs), training=False)
                return _channels_first(tf, y if after is None else after(y, training=False), self._spec.layout)

            def read(xs: Sequence[Any], c: Any, first: Any, stop: Any, step: Any) -> Any:
                return value(xs)[:, c, first:stop:step]

            if neuron == "gradient":
                return self._seq_gradient(tf, read)
            if neuron == "value":
                return lambda *args: read(args[: len(self._extra)], *args[len(self._extra):])
            return lambda *xs: value(xs)

        return self._function(("tensor", layer.name, mode, neuron), build, n_args=4 if neuron else 0)

    def activations(self, X: np.ndarray, layer: str | int, *, pre_activation: bool = False,
                    batch_size: int | None = None) -> np.ndarray:
        """One layer's output for canonical X: (N, C, L') float32, channels first; (N, C, 1) after global layers.

        Parameters
        ----------
        X : ndarray of shape (N, 4, L), float32
        layer : str or int
            Keras layer name, or index in :meth:`layers`.
        pre_activation : bool
            Conv/Dense layers with a fused activation: the values before it (the layer's affine
            part: a copy of the layer with ``activation="linear"`` and the same weights, applied to
            the layer's input). Activation layers: their input. Other layers: their output.
            Default is False.
        batch_size : int or None
            Default is None (the model's default, else chosen from free memory).

        Raises
        ------
        InputError
            For bad X or an unknown layer.
        """
        index, info = resolve_layer(self.layers(), layer)
        X = self._check(X)
        mode = "output"
        if pre_activation and info.activation is not None:
            mode = "pre"
        elif pre_activation and info.kind == "activation":
            mode = "input"
        return self._run(self._tensor_function(index, mode), X, batch_size)

    def _neuron(self, layer: str | int, channel: Any, W: Any, read: str) -> np.ndarray:
        """Values (M,) (``read="value"``) or gradients (M, 4, R) (``"gradient"``) of one neuron on windows W."""
        layers = self.layers()
        index, info = resolve_layer(layers, layer)
        geom = receptive_fields(layers)[index]
        if geom.is_global:
            raise InputError(f"layer {info.name!r} ({info.kind}) sees the whole input; single neurons exist for "
                             "layers with a receptive-field window (convolutions, pools and the layers between).")
        top = None if info.channels is None else info.channels - 1
        channel = check_scalar(channel, "channel", int, min_val=0, max_val=top)
        W = check_one_hot(W, "W", length=geom.receptive_field)
        if info.name not in self._layouts:  # packed only where that gives the defined values (checked once)
            probe = W[:4]
            self._layouts[info.name] = choose_window_packing(
                lambda p: self._windows(index, info.name, channel, probe, "value", p), geom, self._spec.length,
                layer=info.name, short=False)
        return self._windows(index, info.name, channel, W, read, self._layouts[info.name])

    def _windows(self, index: int, name: str, channel: int, W: np.ndarray, read: str, pack: WindowPacking
                 ) -> np.ndarray:
        """Values (M,) or gradients (M, 4, R) of one neuron on windows W laid out by ``pack``."""
        key = (name, pack.length)
        if key not in self._positions:  # the layer's output length, from one all-N input
            self._positions[key] = self._run(self._tensor_function(index, "output"),
                                             np.zeros((1, 4, pack.length), np.float32), None).shape[2]
        pack.check_positions(self._positions[key], name)
        sel = pack.selection
        out = self._run(self._tensor_function(index, "output", neuron=read), pack.pack(W), None,
                        channel, sel.start, sel.stop, sel.step)
        if read == "gradient":
            return pack.unpack_gradients(self._canonical(out), len(W))
        return pack.unpack_values(out, len(W))

    def neuron(self, layer: str | int, channel: int, W: np.ndarray) -> np.ndarray:
        """Activation of one channel at the output position whose receptive field is window W.

        W (M, 4, R), R = the layer's receptive field in bp, is placed at the first output position
        j0 whose window needs no padding (input offset s0, :meth:`~interpkit.probe.Geometry.first_inside`),
        in an input of the model's length that is otherwise N (all-zero); that position's value
        depends on W only. Further windows go every S bp after it (S = R rounded up to a multiple of
        the layer's jump) and are read at positions j0 + t S / jump, each depending on its own
        window only, so one forward pass serves 1 + (L - s0 - R) // S windows
        (:func:`interpkit.probe.window_packing`). A model without a fixed length runs on one
        window per input of s0 + R bp. Returns (M,) float32, equal to
        ``activations(X, layer)[:, channel, j]`` for the position j whose window is W within X (tested).

        Raises
        ------
        InputError
            For a global layer, a channel out of range, W that is not one-hot (M, 4, R), or a
            receptive field that does not fit in the input.
        """
        return self._neuron(layer, channel, W, "value")

    def neuron_gradient(self, layer: str | int, channel: int, W: np.ndarray) -> np.ndarray:
        """Gradient of :meth:`neuron` with respect to W: (M, 4, R) float32, canonical order.

        Windows are packed as in :meth:`neuron`; the gradient of the sum of an input's values is
        taken with ``tf.GradientTape`` and each window's own columns are read back (the other
        values do not depend on them).

        Raises
        ------
        InputError
            As :meth:`neuron`.
        """
        return self._neuron(layer, channel, W, "gradient")

    def pool_inputs(self, X: np.ndarray, layer: str | int) -> dict[str, np.ndarray]:
        """Inputs (N, C, L') of every max-pool at or below ``layer`` in the graph, in table order."""
        layers = self.layers()
        index, _ = resolve_layer(layers, layer)
        X = self._check(X)
        position = {info.name: k for k, info in enumerate(layers)}
        below, stack = set(), [index]
        while stack:  # walk the graph down from `layer`; no `inputs` means the previous layer of the table
            k = stack.pop()
            if k in below:
                continue
            below.add(k)
            if layers[k].inputs:
                stack += [position[n] for n in layers[k].inputs if n in position]
            elif k > 0:
                stack.append(k - 1)
        return {info.name: self._run(self._tensor_function(k, "input"), X, None)
                for k, info in enumerate(layers) if k in below and info.kind == "maxpool"}
