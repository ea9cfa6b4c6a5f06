"""A PyTorch module behind interpkit's Predictor and LayerProbe interfaces.

Every call runs the module in eval mode on the chosen device and puts it back afterwards
(training flags of every submodule, device), with forward hooks removed in ``finally``.
Predictions run under ``torch.inference_mode`` in batches; gradients come from autograd on
an input tensor in the model's own layout, mapped back to canonical (N, 4, L) order.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from interpkit.adapt import (
    OutputReduction,
    auto_batch_size,
    check_output_names,
    from_model_layout,
    to_model_layout,
)
from interpkit.errors import CapabilityError, InputError, InterpkitError, InterpkitWarning, first_line
from interpkit.predictor import Capability, InputSpec, Predictor, TorchFunction
from interpkit.probe import (
    LayerInfo,
    LayerProbe,
    WindowPacking,
    choose_window_packing,
    receptive_fields,
    resolve_layer,
)
from interpkit.validation import check_finite_outputs, check_index, check_one_hot, check_scalar
from interpkit_torch.layers import Site, describe_site, static_receptive_field, to_ncl
from interpkit_torch.trace import Stop, first_tensor, is_probeable, run_probed

__all__ = ["TorchModel"]

#: Activation bytes per bp assumed for a module whose layers cannot be watched (1,000 float32 channels).
_FALLBACK_BYTES_PER_BP = 4_000
#: Axis of the sequence in each layout.
_LENGTH_AXIS = {"NCL": 2, "NLC": 1, "NC1L": 3, "NCL1": 2}
#: Memory of a gradient pass relative to a forward pass (activations kept, plus their gradients).
_GRADIENT_FACTOR = 3


@dataclass(frozen=True)
class _Structure:
    """What one dry run found: the layer table, the raw output shape and the activation memory."""

    sites: tuple[Site, ...]
    raw_shape: tuple[int, ...]  # raw output shape, batch axis excluded, at probe_length
    output_names: tuple[str, ...]
    bytes_per_bp: float
    probe_length: int


class TorchModel(Predictor, LayerProbe):
    """A PyTorch ``nn.Module`` (or TorchScript module) as an interpkit model.

    Build it with :func:`interpkit_torch.load` (or ``interpkit.load``), which infers the
    layout and length; the constructor only stores its arguments.

    Parameters
    ----------
    module : nn.Module
        The model; never modified (its training flags and device are restored after each call).
    name : str
        File or class name.
    layout : {"NCL", "NLC", "NC1L", "NCL1"}
        Layout of the module's input.
    length : int or None
        Input length in bp, or None for any length.
    alphabet : {"ACGT", "ACGU"}
        Canonical alphabet of the sequences.
    model_alphabet : str or None
        Channel order of the module's input (e.g. "AGCT"), None for ``alphabet``.
    output : OutputReduction or None
        Rule reducing a per-position output (N, C, P) to (N, T); None for (N, T) outputs
        (a per-position output then gets ``OutputReduction()`` and one InterpkitWarning).
    output_names : sequence of str or None
        Output names; None for the module's ``output_names`` attribute or "out0", "out1", ...
    extra_inputs : dict of str to ndarray
        Extra forward() arguments (by keyword), one value broadcast to every sequence.
    device : torch.device
        Where the module runs.
    batch_size : int or None
        Default batch size; None chooses it from available memory.
    length_range : (int, int) or None
        Input lengths that fit the first dense layer, for error messages. Default is None.
    checkpoint : mapping or None
        What the model was loaded from (file, format, sha256; an architecture plugin's
        ``module.checkpoint_info``), shown by ``interpkit info``. Default is None.

    Notes
    -----
    Layer probing (``layers``, ``activations``, ``neuron``, ``pool_inputs``) watches module
    calls with forward hooks; see :mod:`interpkit_torch.layers` for what the layer table can
    and cannot see. TorchScript modules do not support hooks: only a TorchScript
    ``nn.Sequential`` can be probed (child by child); other TorchScript modules give
    predictions and gradients only (``supported_capabilities``).
    """

    backend_name = "torch"

    def __init__(self, module: nn.Module, *, name: str, layout: str, length: int | None, alphabet: str,
                 model_alphabet: str | None, output: OutputReduction | None, output_names: Sequence[str] | None,
                 extra_inputs: dict[str, np.ndarray], device: torch.device, batch_size: int | None,
                 length_range: tuple[int, int] | None = None, checkpoint: Mapping[str, Any] | None = None) -> None:
        self._module = module
        self._name = name
        self._layout = layout
        self._length = length
        self._layouts: dict[str, WindowPacking] = {}  # layer -> how its single neurons are evaluated
        self._alphabet = alphabet
        self._model_alphabet = model_alphabet
        self._output = output
        self._output_names = tuple(output_names) if output_names is not None else None
        self._extra = extra_inputs
        self._device = device
        self._batch_size = batch_size
        self._length_range = length_range
        self._checkpoint = dict(checkpoint or {})
        self._cache: _Structure | None = None

    def __repr__(self) -> str:
        return (f"TorchModel({self._name!r}, layout={self._layout!r}, length={self._length}, "
                f"device={str(self._device)!r})")

    # -- properties ------------------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        """The wrapped module."""
        return self._module

    @property
    def device(self) -> torch.device:
        """The device the module runs on during calls."""
        return self._device

    @property
    def name(self) -> str:
        return self._name

    @cached_property
    def _dtype(self) -> torch.dtype:
        floats = [p.dtype for p in self._module.parameters() if p.is_floating_point()]
        return floats[0] if floats else torch.float32

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(alphabet=self._alphabet, length=self._length, layout=self._layout,
                         model_alphabet=self._model_alphabet,
                         extra_inputs={k: tuple(v.shape) for k, v in self._extra.items()},
                         dtype=str(self._dtype).removeprefix("torch."))

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._structure.output_names

    @property
    def output_reduction(self) -> OutputReduction | None:
        """The rule reducing per-position outputs to (N, T), or None for (N, T) outputs."""
        self._structure  # noqa: B018 - decides the default rule
        return self._output

    @property
    def supported_capabilities(self) -> frozenset[Capability]:
        """All capabilities, except layer probing for TorchScript modules other than nn.Sequential."""
        if is_probeable(self._module):
            return frozenset(Capability)
        return frozenset({Capability.PREDICT, Capability.GRADIENT, Capability.TORCH_FUNCTION})

    # -- running the module ------------------------------------------------------------
    @contextlib.contextmanager
    def _session(self, *, grad: bool = False) -> Iterator[None]:
        """Eval mode on the chosen device; training flags and device restored, even on error."""
        module = self._module
        flags = [(m, m.training) for m in module.modules()]
        devices = {t.device for t in [*module.parameters(), *module.buffers()]}
        home = devices.pop() if len(devices) == 1 else None
        move = home is not None and home != self._device
        context = torch.enable_grad() if grad else torch.inference_mode()
        try:
            module.eval()
            if move:
                module.to(self._device)
            with context:
                yield
        finally:
            if move:
                module.to(home)
            for m, flag in flags:
                m.training = flag

    def _tensor(self, X: np.ndarray) -> torch.Tensor:
        x = to_model_layout(X, self._layout, model_alphabet=self._model_alphabet, alphabet=self._alphabet)
        return torch.from_numpy(x).to(device=self._device, dtype=self._dtype)

    def extra_kwargs(self, n: int) -> dict[str, torch.Tensor]:
        """The fixed extra inputs as keyword tensors for a batch of ``n`` (for methods calling ``module``)."""
        return {k: torch.as_tensor(v, device=self._device, dtype=self._dtype).expand(n, *v.shape)
                for k, v in self._extra.items()}

    def _run(self, x: torch.Tensor, **callbacks: Any) -> Any:
        """The module's raw output; framework failures become an InputError naming the length."""
        kwargs = self.extra_kwargs(len(x))
        try:
            if callbacks:
                return run_probed(self._module, x, kwargs, **callbacks)
            return self._module(x, **kwargs)
        except (Stop, InterpkitError):  # our own signals and messages (InputError is a ValueError)
            raise
        except torch.OutOfMemoryError:
            raise InputError(f"model {self._name} ran out of memory on a batch of {len(x)} sequences; "
                             "pass a smaller batch_size=.") from None
        except (RuntimeError, ValueError, IndexError, TypeError, AssertionError) as exc:
            length = x.shape[_LENGTH_AXIS[self._layout]]
            message = first_line(exc)
            if self._length is None:
                fits = (f" (its first dense layer fits {self._length_range[0]}-{self._length_range[1]} bp)"
                        if self._length_range else "")
                raise InputError(f"model {self._name} failed on input of length {length} bp: {message}; pass "
                                 f"length= the input length it was built for{fits}.") from None
            raise InputError(f"model {self._name} failed on a batch of shape {tuple(x.shape)} ({self._layout} "
                             f"layout, {length} bp): {message}; check layout= and length=.") from None

    @staticmethod
    def _as_3d(y: Any, name: str) -> torch.Tensor:
        """The raw output as (N, T) or (N, C, P): (N,) -> (N, 1); (N, C, P, 1)/(N, C, 1, P) -> (N, C, P)."""
        if not isinstance(y, torch.Tensor):
            raise InputError(f"model {name} returned {type(y).__name__}, not one tensor; wrap it in an nn.Module "
                             "whose forward returns one tensor of shape (N, T) or (N, C, P).")
        if y.ndim == 1:
            return y[:, None]
        if y.ndim == 4 and 1 in y.shape[2:]:
            return y.squeeze(3 if y.shape[3] == 1 else 2)
        if y.ndim not in (2, 3):
            raise InputError(f"model {name} returned shape {tuple(y.shape)}; expected (N, T) or (N, C, P).")
        return y

    def reduce_output(self, y: Any) -> torch.Tensor:
        """(N, T) from the module's raw output, by :attr:`output_reduction` in torch ops (gradients flow).

        For methods that call :attr:`module` themselves (e.g. fast ISM).

        Raises
        ------
        InputError
            If the output is not one tensor of shape (N,), (N, T) or (N, C, P).
        """
        y = self._as_3d(y, self._name)
        return y if y.ndim == 2 else self._output.apply(y)

    # -- the dry run -----------------------------------------------------------------
    def _probe_length(self) -> int:
        if self._length is not None:
            return self._length
        if self._length_range is not None:
            return self._length_range[0]
        return static_receptive_field(self._module, self._layout) + 255

    @property
    def _structure(self) -> _Structure:
        return self._structure_at(None)

    def _structure_at(self, hint: int | None) -> _Structure:
        """The dry run's findings, cached; when the model fails at the probe length, retried at ``hint`` (bp)."""
        if self._cache is None:
            try:
                self._cache = self._dry_run(self._probe_length())
            except InputError:
                if hint is None or hint == self._probe_length():
                    raise
                self._cache = self._dry_run(hint)
        return self._cache

    def _dry_run(self, length: int) -> _Structure:
        """One forward pass on two all-N sequences: layer table, output shape and names, memory."""
        x = self._tensor(np.zeros((2, 4, length), dtype=np.float32))
        calls: list[tuple[str, nn.Module, Any, Any]] = []
        inputs: dict[str, Any] = {}

        def before(name: str, module: nn.Module, args: tuple) -> None:
            t = first_tensor(args)
            inputs[name] = None if t is None else tuple(t.shape)

        def after(name: str, module: nn.Module, output: Any) -> None:
            t = first_tensor(output)
            if t is not None:
                calls.append((name, module, inputs[name], tuple(t.shape)))

        probe = is_probeable(self._module)
        with self._session():
            y = self._run(x, before=before, after=after) if probe else self._run(x)
        module_names = {id(m): n for n, m in self._module.named_modules()}
        sites, previous = [], None
        for name, module, in_shape, out_shape in calls:
            site = describe_site(name, module_names.get(id(module), name), module, in_shape, out_shape,
                                 self._layout, previous)
            sites.append(site)
            previous = (site.orient, out_shape)
        raw = self._as_3d(y, self._name)
        n_outputs = self._check_output_rule(tuple(raw.shape), length)
        total = sum(math.prod(shape) for *_, shape in calls) + x.numel()
        bytes_per_bp = total * x.element_size() / (2 * length) if probe else _FALLBACK_BYTES_PER_BP
        return _Structure(tuple(sites), tuple(raw.shape[1:]), self._names(n_outputs), bytes_per_bp, length)

    def _check_output_rule(self, shape: tuple[int, ...], length: int) -> int:
        """Number of outputs T; sets the default rule (with a warning) for per-position outputs."""
        if len(shape) == 2:
            if self._output is not None:
                raise InputError(f"output= reduces per-position outputs, but model {self._name} returns shape "
                                 f"(N, {shape[1]}); leave output= unset.")
            return shape[1]
        if self._output is None:
            self._output = OutputReduction()
            warnings.warn(
                f"model {self._name} returns per-position outputs of shape (N, {shape[1]}, {shape[2]}) at "
                f"{length} bp; reducing them to (N, {shape[1]}) by the mean over all positions of "
                "every channel (OutputReduction()). Choose the rule with output=OutputReduction(...) or --output "
                "(e.g. 'max:4000:6000@1,2').", InterpkitWarning, stacklevel=4)
        self._output.check_shape(shape)
        channels = self._output.channels
        return shape[1 if self._output.positions == "last" else 2] if channels is None else len(channels)

    def _names(self, n_outputs: int) -> tuple[str, ...]:
        names = self._output_names
        if names is None:
            own = getattr(self._module, "output_names", None)
            channels = self._output.channels if self._output is not None else None
            if isinstance(own, (list, tuple)) and channels is not None and all(-len(own) <= c < len(own)
                                                                                for c in channels):
                own = [own[c] for c in channels]  # the module names its raw channels; keep the selected ones
            names = tuple(own) if isinstance(own, (list, tuple)) and len(own) == n_outputs else None
        if names is None:
            return tuple(f"out{i}" for i in range(n_outputs))
        return check_output_names(names, n_outputs, self._name)

    # -- batching ----------------------------------------------------------------------
    def _batches(self, n: int, length: int, batch_size: int | None, factor: int = 1) -> list[slice]:
        size = batch_size if batch_size is not None else self._batch_size
        if size is not None:
            size = check_scalar(size, "batch_size", int, min_val=1)
        else:
            need = int(self._structure.bytes_per_bp * length * factor) + 1
            if self._device.type == "cuda":
                free = torch.cuda.mem_get_info(self._device)[0]
                size = max(1, min(4096, int(free * 0.1) // need))
            else:
                size = auto_batch_size(need)
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    # -- Predictor -------------------------------------------------------------------------
    def _check(self, X: Any) -> np.ndarray:
        """Validated one-hot X; makes sure the dry run has happened (at X's length if the default fails)."""
        X = check_one_hot(X, "X", length=self._length)
        self._structure_at(X.shape[2])
        return X

    def predict(self, X: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Predictions, (N, 4, L) float32 one-hot -> (N, T) float32, in the module's own units.

        Raises
        ------
        InputError
            For input that is not one-hot (N, 4, L) of the model's length, when the module
            fails on it (the message names the length), or when an output is NaN or infinite
            (the message names the output and the sequences).
        """
        X = self._check(X)
        out = np.empty((len(X), len(self.output_names)), dtype=np.float32)
        with self._session():
            for sl in self._batches(len(X), X.shape[2], batch_size):
                out[sl] = self.reduce_output(self._run(self._tensor(X[sl]))).float().cpu().numpy()
        return check_finite_outputs(out, self._name, self.output_names)

    def _input_gradient(self, x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        if not value.requires_grad:
            raise InputError(f"model {self._name}'s output does not depend on its input through autograd "
                             "(does forward() use torch.no_grad() or .detach()?); gradients are not available.")
        (grad,) = torch.autograd.grad(value.sum(), x, allow_unused=True)
        return torch.zeros_like(x) if grad is None else grad

    def _canonical(self, grad: torch.Tensor) -> np.ndarray:
        return from_model_layout(grad.float().cpu().numpy(), self._layout, model_alphabet=self._model_alphabet,
                                 alphabet=self._alphabet)

    def gradient(self, X: np.ndarray, target: int, *, batch_size: int | None = None) -> np.ndarray:
        """d output[target] / d input by autograd, (N, 4, L) float32 in canonical alphabet order.

        The output reduction is applied in torch ops, so the gradient is that of the
        reduced output (e.g. of the mean acceptor probability over the window).

        Raises
        ------
        InputError
            For bad input, an out-of-range target, or a NaN or infinite gradient.
        """
        X = self._check(X)
        target = check_index(target, "target", len(self.output_names), labels=self.output_names)
        out = np.empty(X.shape, dtype=np.float32)
        with self._session(grad=True):
            for sl in self._batches(len(X), X.shape[2], batch_size, _GRADIENT_FACTOR):
                x = self._tensor(X[sl]).requires_grad_(True)
                value = self.reduce_output(self._run(x))[:, target]
                out[sl] = self._canonical(self._input_gradient(x, value))
        return check_finite_outputs(out, self._name, self.output_names, target=target)

    @contextlib.contextmanager
    def torch_function(self) -> Iterator[TorchFunction]:
        """The module as a differentiable function of canonical one-hot input (see :class:`TorchFunction`).

        Inside the block the module is in eval mode on the chosen device and its parameters need no
        gradient (so backward passes compute input gradients only); all of it is restored on exit,
        even on error. ``forward`` maps (rows, 4, L) canonical tensors to the reduced (rows, T)
        output, with the layout and alphabet order changed by torch indexing.
        """
        flags = [(p, p.requires_grad) for p in self._module.parameters()]
        spec = self.input_spec

        def forward(x: torch.Tensor) -> torch.Tensor:
            x = to_model_layout(x, spec.layout, model_alphabet=spec.model_alphabet, alphabet=spec.alphabet)
            return self.reduce_output(self._run(x))

        with self._session(grad=True):
            try:
                for p, _ in flags:
                    p.requires_grad_(False)
                yield TorchFunction(forward, self._device, self._dtype, "module",
                                    traceable=not any(isinstance(m, torch.jit.ScriptModule)
                                                      for m in self._module.modules()))
            finally:
                for p, flag in flags:
                    p.requires_grad_(flag)

    # -- LayerProbe --------------------------------------------------------------------------
    def _sites(self) -> tuple[Site, ...]:
        if not is_probeable(self._module):
            raise CapabilityError(
                f"model {self._name} is a TorchScript module other than nn.Sequential; ScriptModules do not support "
                "forward hooks, so its layers cannot be probed (predictions and gradients work). Load the original "
                "nn.Module to probe layers.")
        return self._structure.sites

    def layers(self) -> list[LayerInfo]:
        """The layer table: one row per module call in execution order (see :mod:`interpkit_torch.layers`).

        Raises
        ------
        CapabilityError
            For TorchScript modules other than nn.Sequential.
        InputError
            If the dry run fails (length unknown and the probe length does not fit).
        """
        return [site.info for site in self._sites()]

    def _resolve(self, layer: str | int) -> tuple[int, Site]:
        sites = self._sites()
        index, _ = resolve_layer([s.info for s in sites], layer)
        return index, sites[index]

    def _capture(self, x: torch.Tensor, wanted: dict[str, tuple[Site, bool]], stop: str,
                 *, keep_graph: bool = False) -> dict[str, torch.Tensor]:
        """Outputs (or inputs, flag True) of the wanted rows as (N, C, L'); the forward pass ends after ``stop``."""
        found: dict[str, torch.Tensor] = {}

        def keep(name: str, value: Any, site: Site) -> None:
            t = first_tensor(value)
            if t is None:
                raise InputError(f"layer {name!r} of model {self._name} gives no tensor to read.")
            t = to_ncl(t, site.orient)
            if len(t) != len(x):
                raise InputError(f"layer {name!r} of model {self._name} has batch size {len(t)} for {len(x)} "
                                 "sequences (the model reshapes the batch inside, e.g. for reverse-complement "
                                 "averaging); probe a model without that step.")
            found[name] = t if keep_graph else t.detach().to(torch.float32, copy=True)

        def before(name: str, module: nn.Module, args: tuple) -> None:
            if name in wanted and wanted[name][1]:
                keep(name, args, wanted[name][0])

        def after(name: str, module: nn.Module, output: Any) -> None:
            if name in wanted and not wanted[name][1]:
                keep(name, output, wanted[name][0])
            if name == stop:
                raise Stop

        try:
            self._run(x, before=before, after=after)
        except Stop:
            pass
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise InputError(f"layer(s) {missing} of model {self._name} did not run on this input.")
        return found

    def activations(self, X: np.ndarray, layer: str | int, *, pre_activation: bool = False,
                    batch_size: int | None = None) -> np.ndarray:
        """Output of one layer, (N, 4, L) one-hot -> (N, C, L') float32 (dense layers: (N, C, 1)).

        Parameters
        ----------
        pre_activation : bool
            For an activation module, return its input (the values before it); other layers
            are returned as they are (PyTorch has no fused activations). Default is False.

        Raises
        ------
        InputError
            For an unknown layer or bad input.
        """
        X = self._check(X)
        _, site = self._resolve(layer)
        wanted = {site.info.name: (site, pre_activation and site.info.kind == "activation")}
        parts = []
        with self._session():
            for sl in self._batches(len(X), X.shape[2], batch_size):
                parts.append(self._capture(self._tensor(X[sl]), wanted, site.info.name)[site.info.name].cpu().numpy())
        return np.concatenate(parts).astype(np.float32, copy=False)

    def pool_inputs(self, X: np.ndarray, layer: str | int) -> dict[str, np.ndarray]:
        """Feature maps entering each max-pool at or below ``layer``, name -> (N, C, L') float32, deepest last.

        Raises
        ------
        InputError
            For an unknown layer or bad input.
        """
        X = self._check(X)
        index, site = self._resolve(layer)
        pools = [s for s in self._structure.sites[: index + 1] if s.info.kind == "maxpool"]
        wanted = {s.info.name: (s, True) for s in pools}
        if not pools:
            return {}
        parts: dict[str, list[np.ndarray]] = {s.info.name: [] for s in pools}
        with self._session():
            for sl in self._batches(len(X), X.shape[2], None):
                found = self._capture(self._tensor(X[sl]), wanted, site.info.name)
                for name, value in found.items():
                    parts[name].append(value.cpu().numpy())
        return {name: np.concatenate(values) for name, values in parts.items()}

    def _neuron(self, layer: str | int, channel: int, W: np.ndarray, *, grad: bool) -> np.ndarray:
        """Value (M,) or gradient (M, 4, R) of one neuron on windows W; see :meth:`neuron`."""
        index, site = self._resolve(layer)
        geom = receptive_fields([s.info for s in self._structure.sites])[index]
        if geom.is_global:
            raise InputError(f"layer {site.info.name!r} sees the whole input (receptive field 'all'); single neurons "
                             "exist for layers with a local receptive field (convolutions, pools, and what acts "
                             "on them position by position).")
        channel = check_index(channel, "channel", site.info.channels)
        W = check_one_hot(W, "W", length=geom.receptive_field)
        name = site.info.name
        if name not in self._layouts:  # the cheapest layout that gives the defined values, checked once
            probe = W[:4]
            self._layouts[name] = choose_window_packing(
                lambda pack: self._windows(site, channel, probe, grad=False, pack=pack), geom, self._length,
                layer=name)
        return self._windows(site, channel, W, grad=grad, pack=self._layouts[name])

    def _windows(self, site: Site, channel: int, W: np.ndarray, *, grad: bool, pack: WindowPacking) -> np.ndarray:
        """Value (M,) or gradient (M, 4, R) of ``channel`` of ``site`` on windows W laid out by ``pack``."""
        name = site.info.name
        X = pack.pack(W)
        parts = []
        with self._session(grad=grad):
            for sl in self._batches(len(X), pack.length, None, _GRADIENT_FACTOR if grad else 1):
                x = self._tensor(X[sl]).requires_grad_(grad)
                A = self._capture(x, {name: (site, False)}, name, keep_graph=grad)[name]
                pack.check_positions(A.shape[2], name)
                value = A[:, channel, pack.selection]  # (rows, per)
                parts.append(self._canonical(self._input_gradient(x, value)) if grad
                             else value.float().cpu().numpy())
        if grad:
            return pack.unpack_gradients(np.concatenate(parts), len(W))
        return pack.unpack_values(np.concatenate(parts), len(W))

    def neuron(self, layer: str | int, channel: int, W: np.ndarray) -> np.ndarray:
        """One neuron as a function of its receptive-field window, (M, 4, R) -> (M,) float32.

        The value is the activation of ``channel`` at output position ``j0 = ceil(-start / jump)``
        of ``layer``, the first position whose window lies inside the input (no padding
        involved); its window starts at input offset ``s0 = start + j0 * jump`` (0 unless the
        padding is not a multiple of the jump). Without a fixed model length the module runs
        on W itself (after s0 all-N columns); with one, W is embedded at offset s0 of an
        all-N (zero) input of the model's length. Two cheaper layouts, each used only where
        it gives these very values (checked once per layer on a few windows,
        :func:`interpkit.probe.choose_window_packing`): W alone, when the module run up to the
        layer accepts the short input, and several windows per input, every S bp after s0
        (S = R rounded up to a multiple of the jump), read at positions j0 + t S / jump: each
        depends on its own window only, so one forward pass serves 1 + (L - s0 - R) // S
        windows (:func:`interpkit.probe.window_packing`). The forward pass stops at the layer,
        so the layers above it never run. Equal to ``activations(X, layer)[:, channel, j]`` for
        the position j whose window is W within X (tested).

        Raises
        ------
        InputError
            For a global layer, a channel out of range, W not (M, 4, R) one-hot with R the
            layer's receptive field, or a receptive field that does not fit in the input.
        """
        return self._neuron(layer, channel, W, grad=False)

    def neuron_gradient(self, layer: str | int, channel: int, W: np.ndarray) -> np.ndarray:
        """Gradient of :meth:`neuron` with respect to the window, (M, 4, R) float32, by autograd.

        For packed windows, the gradient of the sum of an input's values, each window's own
        columns read back (the other values do not depend on them).

        Raises
        ------
        InputError
            As :meth:`neuron`, or if the model's output does not depend on its input through autograd.
        """
        return self._neuron(layer, channel, W, grad=True)
