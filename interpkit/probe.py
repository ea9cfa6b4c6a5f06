"""The ``LayerProbe`` interface and receptive-field algebra.

A layer table lists a model's layers with their geometry. From it,
:func:`receptive_fields` computes for every layer output its receptive field (bp),
its jump (the product of strides below it, bp between adjacent output positions)
and its start (the input position, possibly negative inside padding, of the first
base seen by output position 0). Output position ``j`` of a layer sees input
positions ``start + j * jump`` to ``start + j * jump + receptive_field - 1``.

Recurrence for a convolution or pool with kernel k, stride s, dilation d and left
padding p on top of an input with geometry (r, j, start) (Araujo et al., Distill
2019, "Computing receptive fields of convolutional neural networks"):

    k_eff = d * (k - 1) + 1
    r'    = r + (k_eff - 1) * j
    j'    = j * s
    start'= start - p * j
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from interpkit.errors import CapabilityError, InputError
from interpkit.tables import Table

__all__ = [
    "INPUT",
    "LAYER_KINDS",
    "Geometry",
    "LayerInfo",
    "LayerProbe",
    "WindowPacking",
    "choose_window_packing",
    "layer_table",
    "receptive_fields",
    "resolve_layer",
    "same_padding",
    "window_packing",
]

#: Kinds whose output position j depends on a window of the input (use kernel/stride/...).
LOCAL_KINDS = ("conv", "maxpool", "avgpool")
#: Kinds whose output mixes every position: geometry becomes "whole input".
GLOBAL_KINDS = ("dense", "flatten", "global_pool", "recurrent", "attention")
#: Kinds that act position by position (or merge aligned branches) and keep geometry.
POINTWISE_KINDS = ("activation", "norm", "dropout", "add", "multiply", "concat", "identity")
#: A layer whose effect on positions is not known (cropping, upsampling, custom code): the
#: geometry of it and everything above it is unknown, reported like a global layer.
UNKNOWN_KINDS = ("unknown",)
LAYER_KINDS = LOCAL_KINDS + GLOBAL_KINDS + POINTWISE_KINDS + UNKNOWN_KINDS
#: How many layers an unknown-layer message lists.
_LISTED = 12
#: Name that ``LayerInfo.inputs`` uses for the model's one-hot input (for branches starting there).
INPUT = "<input>"


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a model, in the model's own naming, with its 1-D geometry.

    Attributes
    ----------
    name : str
        The framework's own layer name (e.g. "conv1", "sequential.0").
    kind : str
        One of :data:`LAYER_KINDS`: "conv", "maxpool", "avgpool" are local;
        "dense", "flatten", "global_pool", "recurrent", "attention" see the whole
        input; "activation", "norm", "dropout", "add", "multiply", "concat", "identity"
        keep positions; "unknown" (cropping, upsampling, custom layers) makes the
        geometry above it unknown rather than silently wrong.
    kernel_size : int
        Kernel (or pool) size along the sequence, bp of its input. Default is 1.
    stride : int
        Default is 1.
    dilation : int
        Default is 1.
    padding : int
        Zero padding added on the left of the sequence axis (for "same" padding the
        backend gives (k_eff - 1) // 2). Default is 0.
    channels : int or None
        Output channels (filters, units). Default is None (unknown).
    inputs : tuple of str
        Names of the layers feeding this one, :data:`INPUT` for the model input; empty
        means the previous layer of the table (or the model input for the first
        layer). Default is ().
    activation : str or None
        Activation fused into the layer (e.g. Keras ``Conv1D(activation="relu")``).
        Default is None.
    """

    name: str
    kind: str
    kernel_size: int = 1
    stride: int = 1
    dilation: int = 1
    padding: int = 0
    channels: int | None = None
    inputs: tuple[str, ...] = ()
    activation: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise InputError(f"LayerInfo {self.name!r}: kind {self.kind!r} is not one of {', '.join(LAYER_KINDS)}.")
        for attr, low in (("kernel_size", 1), ("stride", 1), ("dilation", 1), ("padding", 0)):
            value = getattr(self, attr)
            if not isinstance(value, (int, np.integer)) or value < low:
                raise InputError(f"LayerInfo {self.name!r}: {attr} == {value!r}, must be an int >= {low}.")
        object.__setattr__(self, "inputs", tuple(self.inputs))

    @property
    def pool_size(self) -> int | None:
        """The pool size for "maxpool"/"avgpool" layers (= kernel_size), else None."""
        return self.kernel_size if self.kind in ("maxpool", "avgpool") else None


@dataclass(frozen=True)
class Geometry:
    """Where a layer's output positions sit in input coordinates (all in bp).

    ``receptive_field``, ``jump`` and ``start`` are None after a layer that mixes
    every position (dense, flatten, global pool): its receptive field is the whole input.
    """

    receptive_field: int | None
    jump: int | None
    start: int | None

    @property
    def is_global(self) -> bool:
        """True when each output sees the whole input."""
        return self.receptive_field is None

    def first_inside(self) -> tuple[int, int]:
        """(position, begin): the first output position whose window has no padding, and where it begins.

        position = max(0, ceil(-start / jump)); begin = start + position * jump >= 0, so the
        window [begin, begin + receptive_field) lies inside the input when it is long enough.
        Backends evaluate single neurons there (:meth:`LayerProbe.neuron`).

        Raises
        ------
        InputError
            For a global layer (no window).
        """
        self._require_window()
        position = max(0, -(self.start // self.jump))
        return position, self.start + position * self.jump

    def _require_window(self) -> None:
        if self.is_global:
            raise InputError("a global layer's outputs see the whole input; there is no window.")

    def window(self, position: int) -> tuple[int, int]:
        """Half-open input interval [begin, end) seen by output ``position``.

        Raises
        ------
        InputError
            For a global layer (no window).
        """
        self._require_window()
        begin = self.start + position * self.jump
        return begin, begin + self.receptive_field


@dataclass(frozen=True)
class WindowPacking:
    """Where a layer's receptive-field windows go in model inputs, several windows per input.

    Output position ``position + t * step`` of the layer sees exactly input columns
    ``begin + t * spacing`` to ``begin + t * spacing + receptive_field - 1`` (``step =
    spacing / jump``), and nothing else; so windows placed ``spacing`` bp apart in one
    all-N input are each read, untouched by the others, at their own output position,
    and one forward pass evaluates ``per`` windows. For gradients, the gradient of the
    sum of the ``per`` read values, restricted to window t's columns, is window t's own
    gradient (the other values do not depend on those columns). Built by
    :func:`window_packing`; used by the backends' :meth:`LayerProbe.neuron` and
    :meth:`LayerProbe.neuron_gradient`.

    Window i goes to input row ``i // per``, slot ``i % per``; the last row is padded with
    all-N windows.

    Attributes
    ----------
    receptive_field : int
        R, the window length in bp.
    jump : int
        bp between adjacent output positions of the layer.
    position : int
        j0, the first output position whose window needs no padding
        (:meth:`Geometry.first_inside`).
    begin : int
        Input offset (bp, 0-based) of window 0, the window of ``position``.
    spacing : int
        S, bp between the starts of consecutive windows: R rounded up to a multiple of the
        jump.
    per : int
        Windows per input, ``1 + (length - begin - R) // S`` (>= 1).
    length : int
        Model input length in bp.
    """

    receptive_field: int
    jump: int
    position: int
    begin: int
    spacing: int
    per: int
    length: int

    @property
    def step(self) -> int:
        """Output positions between consecutive windows, ``spacing // jump``."""
        return self.spacing // self.jump

    @property
    def positions(self) -> np.ndarray:
        """Output positions read, ``position + t * step`` for t = 0 .. per - 1: ndarray of shape (per,), int64."""
        return self.position + self.step * np.arange(self.per, dtype=np.int64)

    @property
    def selection(self) -> slice:
        """:attr:`positions` as a slice of the layer's position axis (works on numpy, torch and TF tensors)."""
        return slice(self.position, self.position + (self.per - 1) * self.step + 1, self.step)

    @property
    def columns(self) -> np.ndarray:
        """Input columns of the packed windows, slot-major: ndarray of shape (per * R,), int64."""
        starts = self.begin + self.spacing * np.arange(self.per, dtype=np.int64)
        return (starts[:, None] + np.arange(self.receptive_field)).ravel()

    def rows(self, count: int) -> int:
        """Inputs needed for ``count`` windows, ``ceil(count / per)``."""
        return -(-count // self.per)

    def pack(self, W: np.ndarray) -> np.ndarray:
        """Windows into model inputs, all-N (zero) elsewhere.

        Parameters
        ----------
        W : ndarray of shape (M, 4, R)
            One-hot windows, canonical order (checked by the caller).

        Returns
        -------
        X : ndarray of shape (ceil(M / per), 4, length), float32

        Raises
        ------
        InputError
            If W is not (M, 4, R).
        """
        W = np.asarray(W, dtype=np.float32)
        R, per = self.receptive_field, self.per
        if W.ndim != 3 or W.shape[1:] != (4, R):
            raise InputError(f"W has shape {W.shape} but must have shape (M, 4, {R}) (one window per row).")
        rows = self.rows(len(W))
        slots = np.zeros((rows * per, 4, R), dtype=np.float32)
        slots[:len(W)] = W
        X = np.zeros((rows, 4, self.length), dtype=np.float32)
        X[:, :, self.columns] = slots.reshape(rows, per, 4, R).transpose(0, 2, 1, 3).reshape(rows, 4, per * R)
        return X

    def unpack_values(self, values: np.ndarray, count: int) -> np.ndarray:
        """Values read at :attr:`positions`, (rows, per) -> (count,) float32, in window order.

        Raises
        ------
        InputError
            If ``values`` is not (ceil(count / per), per).
        """
        values = np.asarray(values, dtype=np.float32)
        self._check_rows(values.shape, (self.rows(count), self.per), "values")
        return values.reshape(-1)[:count].copy()

    def unpack_gradients(self, G: np.ndarray, count: int) -> np.ndarray:
        """Input gradients, (rows, 4, length) -> each window's own columns, (count, 4, R) float32.

        Raises
        ------
        InputError
            If ``G`` is not (ceil(count / per), 4, length).
        """
        G = np.asarray(G, dtype=np.float32)
        rows, R = self.rows(count), self.receptive_field
        self._check_rows(G.shape, (rows, 4, self.length), "G")
        G = G[:, :, self.columns].reshape(rows, 4, self.per, R).transpose(0, 2, 1, 3)
        return np.ascontiguousarray(G.reshape(rows * self.per, 4, R)[:count])

    @staticmethod
    def _check_rows(found: tuple, expected: tuple, name: str) -> None:
        if tuple(found) != expected:
            raise InputError(f"{name} has shape {tuple(found)} but must have shape {expected} (packed rows).")

    def check_positions(self, available: int, layer: str) -> None:
        """Check that the layer's output has every position read (it ends at ``available``).

        Raises
        ------
        InputError
            If ``positions[-1] >= available``: the layer table's geometry does not match the
            model, so neurons cannot be trusted.
        """
        last = self.position + (self.per - 1) * self.step
        if last >= available:
            raise InputError(f"layer {layer!r} has {available} positions at {self.length} bp, fewer than its "
                             f"geometry implies ({last + 1}); its receptive field is not reliable (see the "
                             "layer-table limitations).")


def window_packing(geometry: Geometry, length: int | None, *, layer: str = "this layer", packed: bool = True
                   ) -> WindowPacking:
    """How to evaluate one layer's neurons on many windows with few forward passes.

    Window 0 starts at ``begin`` (:meth:`Geometry.first_inside`); window t at ``begin + t * S``
    with S = ceil(R / jump) * jump, the receptive field R rounded up to a multiple of the jump,
    so window t is exactly the receptive field of output position ``j0 + t * S / jump``. As many
    windows as fit in the input are packed: ``per = 1 + (length - begin - R) // S``.

    Parameters
    ----------
    geometry : Geometry
        The layer's geometry (local, not global).
    length : int or None
        Model input length in bp; None for a model that takes any length, which then runs
        on one window per input of ``begin + R`` bp.
    layer : str
        Layer name for error messages. Default is "this layer".
    packed : bool
        False puts one window per input (``per`` = 1), the definition the others are checked
        against (:func:`choose_window_packing`). Default is True.

    Returns
    -------
    WindowPacking

    Raises
    ------
    InputError
        For a global layer, a length below 1, or a window that does not fit in ``length`` bp.

    Examples
    --------
    Basset's first convolution (R = 19, jump 1, start 0) in its 600-bp input packs
    1 + (600 - 19) // 19 = 31 windows per input, at offsets 0, 19, 38, ...
    """
    position, begin = geometry.first_inside()
    R, jump = geometry.receptive_field, geometry.jump
    if length is None:
        length = begin + R
    if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 1:
        raise InputError(f"length == {length!r}, must be an int >= 1 (bp) or None.")
    if begin + R > length:
        raise InputError(f"layer {layer!r}: its receptive field ({R} bp at offset {begin}) does not fit in the "
                         f"model's {length}-bp input, so its neurons cannot be evaluated on windows.")
    spacing = -(-R // jump) * jump
    per = 1 + (int(length) - begin - R) // spacing if packed else 1
    return WindowPacking(R, jump, position, begin, spacing, per, int(length))


def choose_window_packing(evaluate: Callable[[WindowPacking], np.ndarray], geometry: Geometry, length: int | None,
                          *, layer: str = "this layer", short: bool = True) -> WindowPacking:
    """The cheapest window layout that gives a layer's neurons their defined values, checked on the model.

    A neuron's value is defined on one window at ``begin`` of an all-N input of the model's length.
    Two cheaper layouts give the same values for a translation-equivariant stack: the window alone
    (``begin + R`` bp, when the model runs on shorter inputs: a deep neuron then costs one output
    position) and several windows packed per input (:func:`window_packing`). A model can break
    that (a position-dependent term, a length check), so each is used only if ``evaluate`` gives
    the definition's values with it (``numpy.allclose``, rtol 1e-5, atol 1e-6); a layout that
    raises :class:`~interpkit.errors.InputError` is skipped.

    Parameters
    ----------
    evaluate : callable (WindowPacking) -> ndarray
        The backend's values of a few fixed probe windows under a layout.
    geometry : Geometry
        The layer's geometry.
    length : int or None
        The model's input length (None: any length; the window alone is then the definition).
    layer : str
        Layer name for error messages. Default is "this layer".
    short : bool
        Whether to try the window alone (backends whose graphs have a fixed length pass False).
        Default is True.

    Returns
    -------
    WindowPacking
        The window alone, else the packed layout, else one window per full-length input.

    Raises
    ------
    InputError
        As :func:`window_packing`, or what ``evaluate`` raises on the definition's layout.
    """
    single = window_packing(geometry, length, layer=layer, packed=False)
    if length is None:
        return single
    candidates = [window_packing(geometry, None, layer=layer)] if short else []
    packed = window_packing(geometry, length, layer=layer)
    if packed.per > 1:
        candidates.append(packed)
    if not candidates:
        return single
    reference = evaluate(single)
    for layout in candidates:
        try:
            values = evaluate(layout)
        except InputError:
            continue
        if np.allclose(values, reference, rtol=1e-5, atol=1e-6):
            return layout
    return single


_INPUT = Geometry(receptive_field=1, jump=1, start=0)
_GLOBAL = Geometry(None, None, None)


def _merge(name: str, parents: list[Geometry]) -> Geometry:
    if any(g.is_global for g in parents):
        return _GLOBAL
    jumps = {g.jump for g in parents}
    if len(jumps) > 1:
        raise InputError(f"layer {name!r} merges inputs with different jumps {sorted(jumps)}; cannot align them.")
    start = min(g.start for g in parents)
    end = max(g.start + g.receptive_field for g in parents)
    return Geometry(end - start, parents[0].jump, start)


def receptive_fields(layers: Sequence[LayerInfo]) -> list[Geometry]:
    """Receptive field, jump and start of every layer's output.

    Parameters
    ----------
    layers : sequence of LayerInfo
        In execution order. A layer with ``inputs`` merges those layers' outputs
        (residual additions, concatenations): the merged window spans all of them.

    Returns
    -------
    list of Geometry
        One per layer, same order.

    Raises
    ------
    InputError
        If a layer name repeats, a layer names an unknown input, or merges inputs with
        different jumps.

    Examples
    --------
    Basset's stack conv19-pool3-conv11-pool4-conv7-pool4 (no padding): receptive
    fields 19, 21, 51, 60, 132, 168 bp with jumps 1, 3, 3, 12, 12, 48.
    """
    out: dict[str, Geometry] = {INPUT: _INPUT}
    result: list[Geometry] = []
    previous = _INPUT
    for layer in layers:
        if layer.name in out:
            raise InputError(f"layer name {layer.name!r} appears twice in the layer table; names must be unique.")
        if layer.inputs:
            missing = [n for n in layer.inputs if n not in out]
            if missing:
                raise InputError(f"layer {layer.name!r} takes input from unknown layer(s) {missing}.")
            parent = _merge(layer.name, [out[n] for n in layer.inputs])
        else:
            parent = previous
        if layer.kind in GLOBAL_KINDS + UNKNOWN_KINDS or parent.is_global:
            geom = _GLOBAL
        elif layer.kind in LOCAL_KINDS:
            k_eff = layer.dilation * (layer.kernel_size - 1) + 1
            geom = Geometry(
                parent.receptive_field + (k_eff - 1) * parent.jump,
                parent.jump * layer.stride,
                parent.start - layer.padding * parent.jump,
            )
        else:
            geom = parent
        out[layer.name] = geom
        result.append(geom)
        previous = geom
    return result


def same_padding(k_eff: int, stride: int = 1, length: int | None = None, *, lower: bool = False) -> int:
    """Left zero padding of a "same" convolution or pool, in bp.

    The total padding is ``max((ceil(L / s) - 1) * s + k_eff - L, 0)``, split with the
    extra base on the right (TensorFlow/Keras "same", ONNX ``SAME_UPPER``) or, with
    ``lower``, on the left (ONNX ``SAME_LOWER``). With stride 1 the total is k_eff - 1
    whatever L; with a larger stride and unknown L, (k_eff - 1) // 2 is returned (exact
    only for some lengths).

    Parameters
    ----------
    k_eff : int
        Effective kernel, dilation * (kernel - 1) + 1, in bp.
    stride : int
        Default is 1.
    length : int or None
        Input length in bp, when known. Default is None.
    lower : bool
        Put the odd base of padding on the left. Default is False.

    Returns
    -------
    int
    """
    if length is None or stride == 1:
        total = k_eff - 1
    else:
        total = max((-(-length // stride) - 1) * stride + k_eff - length, 0)
    return total - total // 2 if lower else total // 2


def resolve_layer(layers: Sequence[LayerInfo], layer: str | int) -> tuple[int, LayerInfo]:
    """Find a layer by name or by index in the layer table.

    Parameters
    ----------
    layers : sequence of LayerInfo
        The layer table, in execution order.
    layer : str or int
        The framework's layer name, or a 0-based index into ``layers``.

    Returns
    -------
    (index, LayerInfo)

    Raises
    ------
    InputError
        If no layer matches; the message suggests close names.
    """
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not 0 <= layer < len(layers):
            raise InputError(f"layer index {layer} is out of range; the model has {len(layers)} layers (0-based).")
        return int(layer), layers[layer]
    names = [info.name for info in layers]
    if layer in names:
        return names.index(layer), layers[names.index(layer)]
    close = difflib.get_close_matches(str(layer), names, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(f"{info.name} ({info.kind})" for info in layers[:_LISTED])
    more = f", ... ({len(layers)} in all; `interpkit info MODEL` lists them)" if len(layers) > _LISTED else ""
    raise InputError(f"no layer named {layer!r}.{hint} The layers, by name or 0-based index: {shown}{more}.")


def layer_table(layers: Sequence[LayerInfo]) -> Table:
    """The layer table with geometry, as printed by ``interpkit info``.

    Parameters
    ----------
    layers : sequence of LayerInfo
        In execution order.

    Returns
    -------
    Table
        Columns: index, name, kind, kernel_size, stride, dilation, padding, pool_size,
        channels, receptive_field (bp; "all" when global or unknown), jump (bp), start (bp).

    Raises
    ------
    InputError
        As :func:`receptive_fields`.
    """
    geoms = receptive_fields(layers)
    rows = []
    for i, (info, geom) in enumerate(zip(layers, geoms)):
        rows.append((
            i, info.name, info.kind, info.kernel_size, info.stride, info.dilation, info.padding,
            info.pool_size, info.channels,
            "all" if geom.is_global else geom.receptive_field,
            "" if geom.is_global else geom.jump,
            "" if geom.is_global else geom.start,
        ))
    columns = ("index", "name", "kind", "kernel_size", "stride", "dilation", "padding", "pool_size",
               "channels", "receptive_field", "jump", "start")
    return Table(columns, tuple(rows))


class LayerProbe:
    """Access to a model's layers: the layer table, activations, single neurons.

    Backends mix this into their model class next to :class:`~interpkit.predictor.Predictor`
    and override what they can; :func:`interpkit.predictor.capabilities_of` reports
    the overridden parts as capabilities (LAYERS, NEURON, POOL_INPUTS). Layers are
    named by the framework's own names; an int index into :meth:`layers` also works.
    """

    def layers(self) -> Sequence[LayerInfo]:
        """The layer table in execution order.

        Raises
        ------
        CapabilityError
            If the backend cannot list layers.
        """
        raise CapabilityError(f"{type(self).__name__} cannot list its layers (no LAYERS capability).")

    def activations(
        self, X: np.ndarray, layer: str | int, *, pre_activation: bool = False, batch_size: int | None = None
    ) -> np.ndarray:
        """Output of one layer for one-hot input.

        Parameters
        ----------
        X : ndarray of shape (N, 4, L), float32
        layer : str or int
            Layer name or index in :meth:`layers`.
        pre_activation : bool
            For a layer with a fused activation, return the values before it.
            Default is False.
        batch_size : int or None
            Default is None (backend's choice).

        Returns
        -------
        A : ndarray of shape (N, C, L'), float32
            Channels first; L' = 1 for dense layers.

        Raises
        ------
        CapabilityError
            If the backend cannot expose activations.
        InputError
            If ``layer`` does not exist.
        """
        raise CapabilityError(f"{type(self).__name__} cannot expose activations (no LAYERS capability).")

    def neuron(self, layer: str | int, channel: int, W: np.ndarray) -> np.ndarray:
        """One convolutional neuron as a function of its receptive-field window.

        Parameters
        ----------
        layer : str or int
        channel : int
        W : ndarray of shape (M, 4, R), float32
            One-hot windows, R = the layer's receptive field in bp.

        Returns
        -------
        values : ndarray of shape (M,), float32
            The neuron's activation at the output position whose window is W
            (no padding involved).

        Raises
        ------
        CapabilityError
            If the backend has no NEURON capability.
        """
        raise CapabilityError(f"{type(self).__name__} cannot evaluate single neurons (no NEURON capability).")

    def neuron_gradient(self, layer: str | int, channel: int, W: np.ndarray) -> np.ndarray:
        """Gradient of :meth:`neuron` with respect to the window, shape (M, 4, R), float32.

        Raises
        ------
        CapabilityError
            If the backend has no gradients for single neurons.
        """
        raise CapabilityError(f"{type(self).__name__} has no neuron gradients.")

    def pool_inputs(self, X: np.ndarray, layer: str | int) -> dict[str, np.ndarray]:
        """Feature maps entering each max-pool at or below ``layer``.

        Returns
        -------
        dict of str to ndarray of shape (N, C, L'), float32
            Max-pool layer name -> its input, deepest last.

        Raises
        ------
        CapabilityError
            If the backend has no POOL_INPUTS capability.
        """
        raise CapabilityError(f"{type(self).__name__} cannot expose max-pool inputs (no POOL_INPUTS capability).")
