"""``OnnxModel``: an ONNX graph behind Predictor and LayerProbe.

Predictions and activations come from onnxruntime; intermediate tensors are exposed
by cutting the graph at them (one session per set of requested tensors, cached), not
by re-implementing the model. Gradients come from the torch translation of the same
graph (:mod:`interpkit_onnx.to_torch`) where every op on the way has one.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from interpkit import Capability, InputSpec, LayerInfo, LayerProbe, Predictor
from interpkit.adapt import OutputReduction, auto_batch_size, from_model_layout, to_model_layout
from interpkit.errors import CapabilityError, InputError, first_line
from interpkit.predictor import TorchFunction
from interpkit.probe import WindowPacking, choose_window_packing, receptive_fields, resolve_layer
from interpkit.validation import check_finite_outputs, check_index, check_one_hot, check_scalar

from .graph import data_tensors, extract, node_names
from .layers import Axes, LayerGraph, build_layers, to_ncl_order
from .session import make_session

__all__ = ["OnnxModel"]

#: Sequence lengths tried, in turn, to probe a model that accepts any length (bp).
PROBE_LENGTHS = (1000, 25000)
#: Sequences in the probe run; a size no other axis is likely to have, so that the batch axis can be found.
PROBE_BATCH = 7
#: Sessions kept per model (the prediction session and recent sets of intermediate tensors).
MAX_SESSIONS = 8


def to_ncl(array: Any, axes: Axes) -> Any:
    """A tensor (numpy or torch) in the (N, C, L') form of ``activations``; L' = 1 without positions."""
    order = to_ncl_order(axes, array.ndim)
    permute = array.permute if hasattr(array, "permute") else array.transpose
    length = array.shape[axes.pos] if axes.pos is not None and axes.pos < array.ndim else 1
    return permute(*order).reshape(array.shape[0], -1, length)


class OnnxModel(Predictor, LayerProbe):
    """A model read from an ONNX graph, run with onnxruntime.

    Build it with :func:`interpkit_onnx.load.load` (``interpkit.load("model.onnx")``);
    the constructor only stores what the loader worked out.

    Attributes
    ----------
    model_proto : onnx.ModelProto
        The graph as run: a private copy of the user's model with a symbolic batch axis.
    device : {"cpu", "cuda"}
        Where onnxruntime (and the torch translation, for gradients) runs.
    batch_chunk : int or None
        The batch size the file fixed, when reshapes bake it into the graph: every run
        then goes in chunks of exactly this many sequences, the last one padded with
        all-N sequences; ``batch_size`` is ignored. None when the batch axis is free.

    Notes
    -----
    Capabilities: PREDICT, LAYERS, NEURON and POOL_INPUTS always; GRADIENT (and
    ``neuron_gradient``) only when torch is installed and every op on the way to the
    output has a torch translation (see :attr:`gradient_problem`).
    """

    backend_name = "onnx"

    def __init__(
        self,
        model: onnx.ModelProto,
        *,
        name: str,
        input_name: str,
        spec: InputSpec,
        output_tensor: str,
        output_names: Sequence[str],
        reduction: OutputReduction | None,
        extra_values: Mapping[str, np.ndarray],
        device: str,
        threads: int,
        custom_op_libraries: Sequence[str] = (),
        batch_chunk: int | None = None,
        batch_size: int | None = None,
        gradient_problem: str | None = None,
        sessions: Mapping[tuple[str, ...], Any] | None = None,
        probe_length: int = PROBE_LENGTHS[0],
    ) -> None:
        self.model_proto = model
        self._name = name
        self._input = input_name
        self._spec = spec
        self._layouts: dict[str, WindowPacking] = {}  # layer -> how its single neurons are evaluated
        self._output = output_tensor
        self._names = tuple(output_names)
        self._reduction = reduction
        self._extras = dict(extra_values)
        self.device = device
        self.threads = threads
        self._libraries = tuple(custom_op_libraries)
        self.batch_chunk = batch_chunk
        self._batch_size = batch_size
        self.gradient_problem = gradient_problem
        self._sessions: OrderedDict[tuple[str, ...], Any] = OrderedDict(sessions or {})
        self._graph: LayerGraph | None = None
        self._shapes: dict[str, tuple[int, ...]] | None = None
        self._values: dict[str, np.ndarray] = {}
        self._torch: Any = None
        self._probe_length = probe_length

    # -- Predictor -----------------------------------------------------------------
    @property
    def input_spec(self) -> InputSpec:
        return self._spec

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def name(self) -> str:
        return self._name

    @property
    def output_reduction(self) -> OutputReduction | None:
        """How a per-position output becomes (N, T); None for (N, T) outputs."""
        return self._reduction

    @property
    def supported_capabilities(self) -> frozenset[Capability]:
        """Everything, less GRADIENT and TORCH_FUNCTION when :attr:`gradient_problem` says why not."""
        torch_based = {Capability.GRADIENT, Capability.TORCH_FUNCTION}
        return frozenset(Capability) - (torch_based if self.gradient_problem else set())

    @property
    def providers(self) -> list[str]:
        """onnxruntime's execution providers for predictions, e.g. ["CPUExecutionProvider"]."""
        return self._session((self._output,)).get_providers()

    def __repr__(self) -> str:
        return f"OnnxModel({self._name!r}, layout={self._spec.layout}, length={self._spec.length}, " \
               f"outputs={len(self._names)}, device={self.device!r})"

    def _session(self, tensors: tuple[str, ...]) -> Any:
        """The cached session computing ``tensors``; the oldest of :data:`MAX_SESSIONS` goes first."""
        if tensors not in self._sessions:
            try:
                self._sessions[tensors] = make_session(extract(self.model_proto, tensors), device=self.device,
                                                       threads=self.threads, custom_op_libraries=self._libraries)
            except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
                raise InputError(f"onnxruntime cannot run {self._name}: {first_line(exc)}") from None
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        self._sessions.move_to_end(tensors)
        return self._sessions[tensors]

    def _check(self, X: Any, name: str = "X", length: int | None = None) -> np.ndarray:
        return check_one_hot(X, name, length=length or self._spec.length)

    def _bytes_per_sequence(self, length: int) -> int:
        """Memory one sequence of ``length`` bp may need in a forward pass.

        The sum of all its tensors when a probe run has measured them (an upper bound:
        onnxruntime reuses buffers), else 256 values per input value, the size of a first
        convolution with a few hundred filters (Basset, DeepSEA). The probe is not run
        just for this: predictions should not pay for a second session.
        """
        itemsize = np.dtype(self._spec.dtype).itemsize
        if self._shapes is None or len(self._shapes) < 2:
            return 256 * 4 * length * itemsize
        values = sum(math.prod(s) for s in self._shapes.values()) / (self.batch_chunk or PROBE_BATCH)
        return int(values * length / self._probe_length * itemsize) + 1

    def _chunks(self, n: int, length: int, batch_size: int | None, factor: int = 1) -> list[slice]:
        if self.batch_chunk:
            size = self.batch_chunk
        elif batch_size is not None:
            size = check_scalar(batch_size, "batch_size", int, min_val=1)
        else:
            size = self._batch_size or auto_batch_size(factor * self._bytes_per_sequence(length))
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def _feeds(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Inputs for one batch of canonical one-hot X: the sequences in the model's layout, alphabet
        order and dtype (padded with all-N sequences to ``batch_chunk``), and the extra inputs."""
        spec = self._spec
        xm = to_model_layout(X, spec.layout, model_alphabet=spec.model_alphabet, alphabet=spec.alphabet,
                             dtype=spec.dtype)
        if self.batch_chunk and len(xm) < self.batch_chunk:
            xm = np.concatenate([xm, np.zeros((self.batch_chunk - len(xm), *xm.shape[1:]), xm.dtype)])
        feeds = {self._input: xm}
        for name, value in self._extras.items():
            feeds[name] = np.ascontiguousarray(np.broadcast_to(value, (len(xm), *value.shape)))
        return feeds

    def _run(self, tensors: Sequence[str], X: np.ndarray, batch_size: int | None) -> list[np.ndarray]:
        """Tensors (graph outputs or intermediate) for checked one-hot X (N, 4, L), batch by batch."""
        wanted = tuple(dict.fromkeys(t for t in tensors if t != self._input))
        session = self._session(wanted) if wanted else None
        batch_axes = [self._batch_axis(t) for t in tensors]
        parts: list[list[np.ndarray]] = []
        for sl in self._chunks(len(X), X.shape[2], batch_size):
            feeds = self._feeds(X[sl])
            try:
                values = dict(zip(wanted, session.run(list(wanted), feeds))) if wanted else {}
            except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
                need = f"; the model needs {self._spec.length} bp" if self._spec.length else \
                    "; the sequences may be too short or of a length the model cannot take"
                raise InputError(f"{self._name} failed on sequences of {X.shape[2]} bp: {first_line(exc)}"
                                 f"{need}.") from None
            values[self._input] = feeds[self._input]
            n = sl.stop - sl.start
            parts.append([np.moveaxis(values[t], axis, 0)[:n] for t, axis in zip(tensors, batch_axes)])
        return [np.concatenate([p[i] for p in parts]) for i in range(len(tensors))]

    def _to_nt(self, y: Any) -> Any:
        """Raw output (numpy or torch) -> (N, T), with the declared output reduction."""
        while y.ndim > 3 and 1 in y.shape[1:]:
            y = y.squeeze(1 + list(y.shape[1:]).index(1))
        if y.ndim == 1:
            return y[:, None]
        if y.ndim == 2:
            return y
        return self._reduction.apply(y)

    def predict(self, X: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Predictions (N, T) float32 for one-hot X (N, 4, L); see :class:`interpkit.Predictor`.

        Raises
        ------
        InputError
            For invalid X (wrong shape, length or values), when onnxruntime rejects
            the input (the message gives the length the model needs), or when an output is
            NaN or infinite (the message names the output and the sequences).
        """
        (y,) = self._run([self._output], self._check(X), batch_size)
        return check_finite_outputs(np.asarray(self._to_nt(y), dtype=np.float32), self._name, self._names)

    # -- gradients -------------------------------------------------------------------
    @property
    def torch_module(self) -> Any:
        """The torch translation of :attr:`model_proto` (built on first use).

        Raises
        ------
        CapabilityError
            If the model has no gradients (:attr:`gradient_problem`).
        """
        if self.gradient_problem:
            raise CapabilityError(f"{self._name} has no gradients: {self.gradient_problem}; use a method that "
                                  "needs only predictions (e.g. ISM).")
        if self._torch is None:
            import torch

            from .to_torch import to_torch

            target = "cuda" if self.device == "cuda" and torch.cuda.is_available() else "cpu"
            self._torch = to_torch(self.model_proto).to(target)
        return self._torch

    @contextlib.contextmanager
    def torch_function(self) -> Iterator[TorchFunction]:
        """The torch translation of the graph as a function of canonical one-hot input (see :class:`TorchFunction`).

        ``forward`` maps (rows, 4, L) canonical tensors to the reduced (rows, T) output, extra inputs
        supplied; ``source`` is "translation" (every op is checked against onnxruntime in the tests).

        Raises
        ------
        CapabilityError
            If the graph uses an op without a torch translation (as :attr:`torch_module`).
        """
        import torch

        module = self.torch_module
        device = next(iter(module.buffers()), torch.empty(0)).device
        spec = self._spec

        def forward(x: Any) -> Any:
            rows, fixed = len(x), self.batch_chunk
            if fixed and rows % fixed:  # a fixed-batch export: pad with all-N rows to a whole number of batches
                x = torch.cat([x, x.new_zeros(fixed - rows % fixed, *x.shape[1:])])
            feeds = {self._input: to_model_layout(x, spec.layout, model_alphabet=spec.model_alphabet,
                                                  alphabet=spec.alphabet)}
            for name, value in self._extras.items():
                feeds[name] = torch.as_tensor(value, device=device).expand(len(x), *value.shape)
            (y,) = module.run(feeds, [self._output], batch=fixed)
            return self._to_nt(y)[:rows]

        yield TorchFunction(forward, device, getattr(torch, spec.dtype), "translation")

    def _grad(self, X: np.ndarray, tensor: str, select: Any, batch_size: int | None) -> np.ndarray:
        """d sum(select(tensor)) / d X for checked one-hot X, batch by batch, canonical (N, 4, L) float32."""
        import torch

        module = self.torch_module
        device = next(module.buffers()).device
        grads = []
        for sl in self._chunks(len(X), X.shape[2], batch_size, factor=3):
            feeds = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in self._feeds(X[sl]).items()}
            x = feeds[self._input].requires_grad_(True)
            (value,) = module.run(feeds, [tensor])
            select(value)[: sl.stop - sl.start].sum().backward()
            G = x.grad[: sl.stop - sl.start].detach().cpu().numpy()
            grads.append(from_model_layout(G, self._spec.layout, model_alphabet=self._spec.model_alphabet,
                                           alphabet=self._spec.alphabet))
        return np.concatenate(grads)

    def gradient(self, X: np.ndarray, target: int, *, batch_size: int | None = None) -> np.ndarray:
        """d y[:, target] / d X (N, 4, L) float32, through the torch translation of the graph.

        Raises
        ------
        CapabilityError
            If the graph uses an op without a torch translation, or torch is missing;
            the message names the ops.
        InputError
            For invalid X, a target outside [0, T - 1], or a NaN or infinite gradient.
        """
        _ = self.torch_module
        target = check_index(target, "target", len(self._names), labels=self._names)
        G = self._grad(self._check(X), self._output, lambda y: self._to_nt(y)[:, target], batch_size)
        return check_finite_outputs(G, self._name, self._names, target=target)

    # -- LayerProbe ------------------------------------------------------------------
    def _probe(self) -> tuple[dict[str, tuple[int, ...]], dict[str, np.ndarray]]:
        """One run on all-N sequences: the shape of every data-path tensor, and the values of the
        small computed tensors those nodes read (pads, axes, target shapes built from Shape ops)."""
        if self._shapes is None:
            graph = self.model_proto.graph
            data = data_tensors(graph, self._input)
            fixed = {t.name for t in graph.initializer} | {v.name for v in graph.input}
            params = {t for n in graph.node if any(i in data for i in n.input) for t in n.input[1:]
                      if t and t not in data and t not in fixed}
            tensors = sorted((data | params) - {self._input})
            length = self._probe_length
            feeds = self._feeds(np.zeros((self.batch_chunk or PROBE_BATCH, 4, length), np.float32))
            try:
                session = make_session(extract(self.model_proto, tensors), device="cpu", threads=self.threads,
                                       custom_op_libraries=self._libraries)
                results = dict(zip(tensors, session.run(tensors, feeds)))
            except Exception:  # noqa: BLE001 - shapes stay unknown; reshapes and slices then count as unknown
                results = {}
            self._shapes = {t: v.shape for t, v in results.items() if t in data}
            self._shapes[self._input] = feeds[self._input].shape
            self._values = {t: v for t, v in results.items() if t in params and v.size <= 64}
        return self._shapes, self._values

    def _layer_graph(self) -> LayerGraph:
        if self._graph is None:
            graph = self.model_proto.graph
            shapes, values = self._probe()
            self._graph = build_layers(self.model_proto, node_names(graph), self._input, self._spec.layout,
                                       shapes, values, batch=self.batch_chunk or PROBE_BATCH)
        return self._graph

    def layers(self) -> list[LayerInfo]:
        """One LayerInfo per node on the sequence's data path, named by the node names.

        See :mod:`interpkit_onnx.layers` for how ops map to kinds and geometry.
        """
        return list(self._layer_graph().layers)

    def _resolve(self, layer: str | int) -> tuple[int, LayerInfo, LayerGraph]:
        graph = self._layer_graph()
        index, info = resolve_layer(graph.layers, layer)
        return index, info, graph

    def activations(
        self, X: np.ndarray, layer: str | int, *, pre_activation: bool = False, batch_size: int | None = None
    ) -> np.ndarray:
        """Output of one layer (N, C, L') float32; dense and flattened layers give (N, C, 1).

        ``pre_activation=True`` gives an activation node's input (ONNX has no fused
        activations, so other layers return their output either way).

        Raises
        ------
        InputError
            For an unknown layer or invalid X.
        """
        _, info, graph = self._resolve(layer)
        tensor = graph.pre_activation.get(info.name, graph.output[info.name]) if pre_activation \
            else graph.output[info.name]
        (A,) = self._run([tensor], self._check(X), batch_size)
        return self._ncl(A, tensor)

    def _batch_axis(self, tensor: str) -> int:
        """The axis of ``tensor`` that holds the sequences (0 but for e.g. an LSTM's (L, D, N, H) output).

        Found in the probe run of :data:`PROBE_BATCH` sequences; assumed 0 where shapes are unknown.

        Raises
        ------
        InputError
            If no axis, or several, have the probe's batch size.
        """
        if tensor in (self._input, self._output):
            return 0
        shape = self._probe()[0].get(tensor)
        batch = self.batch_chunk or PROBE_BATCH
        if shape is None or (shape and shape[0] == batch):
            return 0
        hits = [i for i, d in enumerate(shape) if d == batch]
        if len(hits) != 1:
            raise InputError(f"tensor {tensor!r} has shape {shape} for {batch} probe sequences: no single axis "
                             "holds the sequences, so its values cannot be returned per sequence. Pick another layer.")
        return hits[0]

    def _ncl(self, array: np.ndarray, tensor: str) -> np.ndarray:
        """A tensor with the sequences on axis 0 (as :meth:`_run` returns it) as (N, C, L') float32."""
        axes = self._layer_graph().axes.get(tensor, Axes(None, None, None)) if self._batch_axis(tensor) == 0 \
            else Axes(None, None, None)  # moved batch axis: channel and position axes no longer known
        return np.asarray(to_ncl(array, axes), dtype=np.float32)

    def _window_input(self, layer: str | int, channel: int, W: Any) -> tuple[str, int, WindowPacking, np.ndarray]:
        """(layer name, channel, window packing, checked W) for neuron windows W."""
        index, info, graph = self._resolve(layer)
        geom = receptive_fields(graph.layers)[index]
        if geom.is_global:
            raise InputError(f"layer {info.name!r} ({info.kind}) sees the whole input; single neurons exist only "
                             "for layers with a receptive-field window (convolutions, pools and layers above them).")
        channel = check_index(channel, "channel", info.channels)
        W = check_one_hot(W, "W", length=geom.receptive_field)
        if info.name not in self._layouts:  # packed only where that gives the defined values (checked once)
            probe = W[:4]
            self._layouts[info.name] = choose_window_packing(
                lambda p: self._neuron_values(info.name, channel, probe, p), geom, self._spec.length, layer=info.name,
                short=False)
        return info.name, channel, self._layouts[info.name], W

    def _neuron_values(self, name: str, channel: int, W: np.ndarray, pack: WindowPacking) -> np.ndarray:
        """Values (M,) of one neuron on windows W laid out by ``pack``."""
        tensor = self._layer_graph().output[name]
        (A,) = self._run([tensor], pack.pack(W), None)
        A = self._ncl(A, tensor)
        pack.check_positions(A.shape[2], name)
        return pack.unpack_values(A[:, channel, pack.selection], len(W))

    def neuron(self, layer: str | int, channel: int, W: np.ndarray) -> np.ndarray:
        """Activation (M,) float32 of one channel at the output position whose window is W (M, 4, R).

        W is placed in an all-N input at the first output position j0 whose window lies wholly
        inside it (input offset s0, :meth:`~interpkit.probe.Geometry.first_inside`); bases outside
        a window do not reach that position. Further windows go every S bp after it (S = R rounded
        up to a multiple of the layer's jump) and are read at positions j0 + t S / jump, each
        depending on its own window only, so one run serves 1 + (L - s0 - R) // S windows
        (:func:`interpkit.probe.window_packing`); a model without a fixed length runs on one window
        per input of s0 + R bp. Equal to ``activations(X, layer)[:, channel, j]`` for the position j
        whose window is W within X (tested).

        Raises
        ------
        InputError
            For a global layer, a channel out of range, W not of length R, or a receptive field
            that does not fit in the input.
        """
        name, channel, pack, W = self._window_input(layer, channel, W)
        return self._neuron_values(name, channel, W, pack)

    def neuron_gradient(self, layer: str | int, channel: int, W: np.ndarray) -> np.ndarray:
        """Gradient (M, 4, R) float32 of :meth:`neuron` with respect to W, through the torch translation.

        Windows are packed as in :meth:`neuron`; the gradient of the sum of an input's values is
        taken and each window's own columns are read back (the other values do not depend on them).

        Raises
        ------
        CapabilityError
            Without GRADIENT.
        InputError
            As :meth:`neuron`.
        """
        _ = self.torch_module
        name, channel, pack, W = self._window_input(layer, channel, W)
        tensor, axes = self._layer_graph().output[name], self._layer_graph().axes  # local layers: batch first

        def select(a: Any) -> Any:
            A = to_ncl(a, axes[tensor])
            pack.check_positions(A.shape[2], name)
            return A[:, channel, pack.selection]

        return pack.unpack_gradients(self._grad(pack.pack(W), tensor, select, None), len(W))

    def pool_inputs(self, X: np.ndarray, layer: str | int) -> dict[str, np.ndarray]:
        """{max-pool layer name: its input (N, C, L') float32} for max-pools at or below ``layer``, deepest last.

        Raises
        ------
        InputError
            For an unknown layer or invalid X.
        """
        _, info, graph = self._resolve(layer)
        pools = [p.name for p in graph.layers if p.name in graph.pool_input and p.name in graph.below[info.name]]
        tensors = [graph.pool_input[p] for p in pools]
        if not pools:
            return {}
        arrays = self._run(tensors, self._check(X), None)
        return {p: self._ncl(a, t) for p, t, a in zip(pools, tensors, arrays)}

