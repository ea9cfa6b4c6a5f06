"""ExplaiNN's unit-level quantities, read through the Predictor and LayerProbe interfaces only.

Novakovsky, Fornes, Saraswat, Mostafavi & Wasserman (2023), "ExplaiNN: interpretable and transparent neural
networks for genomics", Genome Biol. 24:154 (Methods, "Model interpretation"; Figs 1-3), and the reference
code (wassermanlab/ExplaiNN ``explainn/interpretation/interpretation.py``):

- the unit activation maps (N, U, L'): each unit's convolution, batch norm and exponential activation;
- the unit outputs (N, U): each unit's scalar, the input of the final linear layer;
- the final layer's weights (T, U) and bias (T,), recovered here from predictions and unit outputs by least
  squares (exact because that layer is linear), so no framework access is needed;
- per unit, the activation threshold (half its maximum over all sequences and positions), its sites (the
  (sequence, position) pairs above it) and the PPM of the windows at those sites.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from interpkit.errors import InputError
from interpkit.predictor import Predictor
from interpkit.probe import Geometry, LayerInfo, receptive_fields, resolve_layer
from interpkit.progress import batch_slices

__all__ = ["FIT_TOLERANCE", "OutputFit", "Scan", "UnitLayers", "find_unit_layers", "fit_output_layer",
           "outputs_and_predictions", "scan", "unit_counts"]

#: Largest relative residual of the least-squares fit of the predictions on the unit outputs that still
#: counts as "the output layer is linear in them" (float32 models fit to about 1e-7).
FIT_TOLERANCE = 1e-4
#: Relative singular value below which a direction of the fit's design matrix counts as unidentified.
_RANK_TOLERANCE = 1e-6
#: Layers that keep positions and may sit between the first convolution and its pooling.
_CHAIN = ("norm", "activation", "dropout", "identity")
#: Bytes of activation maps held at once during the scan.
_SCAN_BYTES = 64 * 2**20


@dataclass(frozen=True)
class UnitLayers:
    """The two layers the method reads.

    Attributes
    ----------
    activation : str
        Layer whose output is the unit activation maps (N, U, L').
    unit : str
        Layer whose output is the unit outputs (N, U) (or (N, U, 1)), the input of the output layer.
    units : int or None
        U from the layer table (None when the backend does not report channels).
    geometry : Geometry
        Receptive field (bp), jump (bp) and start of the activation layer's positions.
    """

    activation: str
    unit: str
    units: int | None
    geometry: Geometry


def _lookup(layers: Sequence[LayerInfo], value: str | int, option: str) -> tuple[int, LayerInfo]:
    names = [info.name for info in layers]
    if isinstance(value, str) and value not in names and value.strip().isdigit():
        value = int(value)  # the command line gives layer-table indices as text
    try:
        return resolve_layer(layers, value)
    except InputError as exc:
        raise InputError(f"{option} == {value!r}: {exc}") from None


def _default_activation(layers: Sequence[LayerInfo]) -> int:
    """The end of the first convolution's conv/norm/activation chain: the last norm or activation layer (or the
    convolution itself) before the first layer that is not position-wise (pooling, flatten, ...)."""
    first = next((i for i, info in enumerate(layers) if info.kind == "conv"), None)
    if first is None:
        raise InputError("the model's layer table has no convolution, so the unit activation layer cannot be "
                         "found; pass activation_layer= (--activation-layer) naming the layer whose output is "
                         "the units' activation maps (N, U, L'). `interpkit info MODEL` lists the layers.")
    chosen = i = first
    while i + 1 < len(layers) and layers[i + 1].kind in _CHAIN and layers[i + 1].inputs in ((), (layers[i].name,)):
        i += 1
        if layers[i].kind in ("norm", "activation"):
            chosen = i
    return chosen


def _default_unit(layers: Sequence[LayerInfo]) -> int:
    """The layer feeding the last dense layer."""
    dense = [i for i, info in enumerate(layers) if info.kind == "dense"]
    if not dense or dense[-1] == 0 and not layers[dense[-1]].inputs:
        raise InputError("the model's layer table has no dense layer fed by another layer, so the unit-output "
                         "layer cannot be found; pass unit_layer= (--unit-layer) naming the layer whose output "
                         "(N, U) feeds the linear output layer. `interpkit info MODEL` lists the layers.")
    last = layers[dense[-1]]
    if not last.inputs:
        return dense[-1] - 1
    if len(last.inputs) != 1:
        raise InputError(f"the last dense layer {last.name!r} has {len(last.inputs)} inputs; pass unit_layer= "
                         "(--unit-layer) naming the layer whose output (N, U) feeds the linear output layer.")
    return _lookup(layers, last.inputs[0], "unit_layer")[0]


def find_unit_layers(layers: Sequence[LayerInfo], *, activation_layer: str | int | None = None,
                     unit_layer: str | int | None = None) -> UnitLayers:
    """The unit activation and unit-output layers, given or detected from the layer table.

    Parameters
    ----------
    layers : sequence of LayerInfo
        The model's layer table (:meth:`~interpkit.probe.LayerProbe.layers`).
    activation_layer : str, int or None
        Name or layer-table index; None detects it: the last normalisation or activation after the first
        convolution, before the first pooling, flatten or other layer that is not position-wise (for
        interpkit's PyTorch ExplaiNN "linears.2", the exponential; for its ONNX export
        "/linears/linears.2/Exp"; a convolution with a fused activation is its own end). Default is None.
    unit_layer : str, int or None
        Name or index; None takes the input of the last dense layer (ExplaiNN: "linears.13", the flatten
        before ``final``). Default is None.

    Returns
    -------
    UnitLayers

    Raises
    ------
    InputError
        If a named layer does not exist, detection finds no convolution or no dense layer, the activation
        layer has no positions (it sees the whole input), or the table gives the two layers different
        channel counts (the message names the option to pass).
    """
    i = (_lookup(layers, activation_layer, "activation_layer")[0] if activation_layer is not None
         else _default_activation(layers))
    j = _lookup(layers, unit_layer, "unit_layer")[0] if unit_layer is not None else _default_unit(layers)
    act, unit = layers[i], layers[j]
    geometry = receptive_fields(layers)[i]
    if geometry.is_global:
        raise InputError(f"activation_layer {act.name!r} ({act.kind}) sees the whole input: its outputs have no "
                         "positions, so they have no sites; pass activation_layer= (--activation-layer) naming a "
                         "layer before the first pooling or flatten (ExplaiNN: the activation after the first "
                         "convolution).")
    if act.channels is not None and unit.channels is not None and act.channels != unit.channels:
        raise InputError(f"unit_layer {unit.name!r} has {unit.channels} channels but activation_layer {act.name!r} "
                         f"has {act.channels} units; the unit outputs must hold one value per unit. Pass "
                         f"unit_layer= (--unit-layer) naming the (N, {act.channels}) layer that feeds the output "
                         "layer, or activation_layer= (--activation-layer) for the unit activation maps.")
    if i == j:
        raise InputError(f"activation_layer and unit_layer are the same layer {act.name!r}; the unit outputs "
                         "come after the activation maps (pass unit_layer= / --unit-layer).")
    return UnitLayers(act.name, unit.name, act.channels, geometry)


@dataclass(frozen=True)
class Scan:
    """What one pass over the sequence rows gives (R rows, U units, T outputs).

    Attributes
    ----------
    thresholds : ndarray of shape (U,), float32
        Half of each unit's largest activation over all rows and positions (activation units).
    row_max : ndarray of shape (R, U), float32
        Each row's largest activation per unit; row r belongs to unit u's sequence set S_u when
        ``row_max[r, u] > thresholds[u]``.
    site_row, site_unit, site_position : ndarray of shape (M,), int64
        The (row, unit, activation-map position) triples whose activation exceeds the unit's threshold,
        ordered by unit, then row, then position.
    unit_outputs : ndarray of shape (R, U), float32
    predictions : ndarray of shape (R, T), float32
    positions : int
        L', positions of the activation maps.
    """

    thresholds: np.ndarray
    row_max: np.ndarray
    site_row: np.ndarray
    site_unit: np.ndarray
    site_position: np.ndarray
    unit_outputs: np.ndarray
    predictions: np.ndarray
    positions: int


def _unit_values(Z: np.ndarray, units: int, layer: str) -> np.ndarray:
    """(n, U, 1) or (n, U) activations of the unit-output layer -> (n, U)."""
    if Z.ndim == 3 and Z.shape[2] == 1:
        Z = Z[:, :, 0]
    if Z.ndim != 2 or Z.shape[1] != units:
        raise InputError(f"unit_layer {layer!r} gives activations of shape {Z.shape[1:]} per sequence, not ({units},) "
                         f"or ({units}, 1): one value per unit of the activation layer. Pass unit_layer= "
                         f"(--unit-layer) naming the (N, {units}) layer that feeds the output layer.")
    return Z


def outputs_and_predictions(model: Predictor, X: np.ndarray, layer: str, units: int, *,
                            batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit outputs (N, U) float32 and predictions (N, T) float32 of one-hot X (N, 4, L).

    Raises
    ------
    InputError
        If ``layer`` does not give one value per unit.
    """
    Z = _unit_values(np.asarray(model.activations(X, layer, batch_size=batch_size), dtype=np.float32), units, layer)
    return Z, np.asarray(model.predict(X, batch_size=batch_size), dtype=np.float32)


def scan(model: Predictor, rows: np.ndarray, layers: UnitLayers, *, batch_size: int | None = None,
         verbose: bool = False) -> Scan:
    """Thresholds, sequence sets, sites, unit outputs and predictions in one pass over the rows.

    The activation maps are read in chunks of at most 64 MiB. A site of the final threshold is above the
    threshold of the maximum seen so far (the maximum only grows), so candidates above the running
    threshold are kept and pruned as it rises; the result equals thresholding all maps at once.

    Parameters
    ----------
    model : Predictor with LayerProbe
    rows : ndarray of shape (R, 4, L), float32
        One-hot rows (the sequences, and their reverse complements when both strands are used).
    layers : UnitLayers
    batch_size : int or None
        Passed to the backend. Default is None.
    verbose : bool
        Progress bar. Default is False.

    Returns
    -------
    Scan

    Raises
    ------
    InputError
        If the activation layer's output is not (N, C, L') with C the table's channel count, or the unit
        layer's is not one value per unit.
    """
    probe = np.asarray(model.activations(rows[:1], layers.activation, batch_size=batch_size))
    if probe.ndim != 3 or layers.units is not None and probe.shape[1] != layers.units:
        raise InputError(f"activation_layer {layers.activation!r} gives activations of shape {probe.shape[1:]} per "
                         f"sequence, not (U, L') with U = {layers.units}; pass activation_layer= "
                         "(--activation-layer) naming the unit activation maps.")
    units, positions = int(probe.shape[1]), int(probe.shape[2])
    chunk = int(min(1024, max(1, _SCAN_BYTES // (4 * units * positions))))
    n = len(rows)
    running = np.full(units, -np.inf, dtype=np.float32)
    row_max = np.empty((n, units), dtype=np.float32)
    Z = np.empty((n, units), dtype=np.float32)
    predictions: list[np.ndarray] = []
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for sl in batch_slices(n, chunk, verbose=verbose, desc="unit_importance", unit="seq"):
        A = np.asarray(model.activations(rows[sl], layers.activation, batch_size=batch_size), dtype=np.float32)
        if A.shape[1:] != (units, positions):
            raise InputError(f"activation_layer {layers.activation!r} gave shape {A.shape[1:]} on some sequences and "
                             f"{(units, positions)} on others; give sequences of one length.")
        row_max[sl] = A.max(axis=2)
        running = np.maximum(running, row_max[sl].max(axis=0))
        r, u, p = np.nonzero(A > 0.5 * running[None, :, None])
        kept.append((r + sl.start, u, p, A[r, u, p]))
        if len(kept) > 1:  # prune the earlier candidates under the risen threshold
            keep = [np.concatenate(parts) for parts in zip(*kept)]
            mask = keep[3] > 0.5 * running[keep[1]]
            kept = [tuple(part[mask] for part in keep)]
        Z[sl], P = outputs_and_predictions(model, rows[sl], layers.unit, units, batch_size=batch_size)
        predictions.append(P)
    thresholds = (0.5 * running).astype(np.float32)
    r, u, p, _ = (np.concatenate(parts) for parts in zip(*kept))
    order = np.lexsort((p, r, u))
    return Scan(thresholds, row_max, r[order].astype(np.int64), u[order].astype(np.int64),
                p[order].astype(np.int64), Z, np.concatenate(predictions), positions)


def unit_counts(rows: np.ndarray, site_row: np.ndarray, site_unit: np.ndarray, site_position: np.ndarray,
                geometry: Geometry, units: int) -> np.ndarray:
    """Per unit, the sum of the one-hot windows at its sites (a PFM of counts).

    Activation-map position j of a layer with receptive field R, jump J and start s sees input columns
    s + j J .. s + j J + R - 1; columns outside the sequence (padding) count as N (all zero).

    Parameters
    ----------
    rows : ndarray of shape (R_rows, 4, L), float32
    site_row, site_unit, site_position : ndarray of shape (M,), int64
        As :class:`Scan` holds them (sorted by unit).
    geometry : Geometry
        Of the activation layer (local).
    units : int

    Returns
    -------
    counts : ndarray of shape (U, 4, R), float64
        Base counts per unit and window column; ``counts[u].sum(axis=0)`` is at most the unit's number of
        sites (less where windows hold N or padding).
    """
    width = int(geometry.receptive_field)
    counts = np.zeros((units, 4, width), dtype=np.float64)
    if not len(site_row):
        return counts
    begin = geometry.start + site_position * geometry.jump
    left = int(max(0, -begin.min()))
    right = int(max(0, (begin + width).max() - rows.shape[2]))
    padded = np.pad(rows, ((0, 0), (0, 0), (left, right))) if left or right else rows
    columns = np.arange(width)
    bounds = np.searchsorted(site_unit, np.arange(units + 1))
    for u in np.flatnonzero(np.diff(bounds)):
        for start in range(bounds[u], bounds[u + 1], 65536):
            stop = min(start + 65536, bounds[u + 1])
            cols = (begin[start:stop] + left)[:, None] + columns
            windows = padded[site_row[start:stop, None], :, cols]  # (m, R, 4)
            counts[u] += windows.sum(axis=0, dtype=np.float64).T
    return counts


@dataclass(frozen=True)
class OutputFit:
    """The output layer recovered from predictions and unit outputs.

    Attributes
    ----------
    weights : ndarray of shape (T, U), float64
        NaN for units whose weight the rows cannot identify (zero or collinear outputs).
    bias : ndarray of shape (T,), float64
        NaN when unidentifiable (a unit with a constant non-zero output).
    identifiable : ndarray of shape (U,), bool
    residual : float
        Largest |prediction - fit| over rows and outputs, relative to that output's scale
        (max |prediction|, at least its range).
    rows : int
        Rows used.
    """

    weights: np.ndarray
    bias: np.ndarray
    identifiable: np.ndarray
    residual: float
    rows: int


def fit_output_layer(Z: np.ndarray, P: np.ndarray, *, unit_layer: str = "the unit layer",
                     tolerance: float = FIT_TOLERANCE) -> OutputFit:
    """Weights and bias of the linear output layer, by least squares of the predictions on the unit outputs.

    ExplaiNN's output is ``P = Z W^T + b`` (its ``final`` layer). Solving ``[Z, 1] [W^T; b] = P`` recovers W
    and b to float precision wherever the rows identify them; directions of ``[Z, 1]`` with relative singular
    value below 1e-6 (after scaling the columns to unit norm) are not identified, and the units (and bias)
    with a component in them are NaN. The minimum-norm solution must reproduce the predictions.

    Parameters
    ----------
    Z : ndarray of shape (R, U)
        Unit outputs.
    P : ndarray of shape (R, T)
        Predictions of the same rows.
    unit_layer : str
        Named in the error message. Default is "the unit layer".
    tolerance : float
        Largest relative residual accepted. Default is :data:`FIT_TOLERANCE` (1e-4).

    Returns
    -------
    OutputFit

    Raises
    ------
    InputError
        If the relative residual exceeds ``tolerance``: the outputs are not a linear function of the layer.
    """
    D = np.column_stack([np.asarray(Z, dtype=np.float64), np.ones(len(Z))])
    P = np.asarray(P, dtype=np.float64)
    norms = np.linalg.norm(D, axis=0)
    scale = np.where(norms > 0, norms, 1.0)
    Dn = D / scale
    _, s, Vt = np.linalg.svd(Dn, full_matrices=len(Dn) < Dn.shape[1])  # full only when wide (small then)
    rank = int(np.sum(s > _RANK_TOLERANCE * s[0])) if len(s) and s[0] > 0 else 0
    null = Vt[rank:]
    free = np.abs(null).max(axis=0) > 1e-6 if len(null) else np.zeros(D.shape[1], dtype=bool)
    coef = np.linalg.lstsq(Dn, P, rcond=_RANK_TOLERANCE)[0] / scale[:, None]
    fitted = D @ coef
    spread = np.maximum(np.abs(P).max(axis=0), np.ptp(P, axis=0))
    residual = float((np.abs(P - fitted).max(axis=0) / np.maximum(spread, 1e-30)).max())
    if residual > tolerance:
        raise InputError(f"the outputs are not a linear function of layer {unit_layer!r}: a least-squares fit of "
                         f"the predictions on its values leaves a relative residual of {residual:.2g} (> "
                         f"{tolerance:g}). The method needs the layer that feeds the model's last linear layer and "
                         "outputs without a final nonlinearity (logits, not probabilities); pass unit_layer= "
                         "(--unit-layer) naming that layer.")
    weights = coef[:-1].T.copy()
    weights[:, free[:-1]] = np.nan
    bias = np.where(free[-1], np.nan, coef[-1])
    return OutputFit(weights, bias, ~free[:-1], residual, len(D))
