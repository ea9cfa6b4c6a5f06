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

from interpkit.activation_motifs import find_activation_layer, find_sites, lookup_layer
from interpkit.errors import InputError
from interpkit.predictor import Predictor
from interpkit.probe import Geometry, LayerInfo

__all__ = ["FIT_TOLERANCE", "OutputFit", "Scan", "UnitLayers", "find_unit_layers", "fit_output_layer",
           "outputs_and_predictions", "scan"]

#: Largest relative residual of the least-squares fit of the predictions on the unit outputs that still
#: counts as "the output layer is linear in them" (float32 models fit to about 1e-7).
FIT_TOLERANCE = 1e-4
#: Relative singular value below which a direction of the fit's design matrix counts as unidentified.
_RANK_TOLERANCE = 1e-6


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
    return lookup_layer(layers, last.inputs[0], "unit_layer")[0]


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
    act = find_activation_layer(layers, activation_layer, option="activation_layer")
    j = lookup_layer(layers, unit_layer, "unit_layer")[0] if unit_layer is not None else _default_unit(layers)
    unit = layers[j]
    if act.channels is not None and unit.channels is not None and act.channels != unit.channels:
        raise InputError(f"unit_layer {unit.name!r} has {unit.channels} channels but activation_layer {act.name!r} "
                         f"has {act.channels} units; the unit outputs must hold one value per unit. Pass "
                         f"unit_layer= (--unit-layer) naming the (N, {act.channels}) layer that feeds the output "
                         "layer, or activation_layer= (--activation-layer) for the unit activation maps.")
    if act.index == j:
        raise InputError(f"activation_layer and unit_layer are the same layer {act.name!r}; the unit outputs "
                         "come after the activation maps (pass unit_layer= / --unit-layer).")
    return UnitLayers(act.name, unit.name, act.channels, act.geometry)


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
    outputs: list[np.ndarray] = []
    predictions: list[np.ndarray] = []

    def read_units(sl: slice, A: np.ndarray) -> None:  # the unit outputs of the same rows, in the same pass
        Z, P = outputs_and_predictions(model, rows[sl], layers.unit, A.shape[1], batch_size=batch_size)
        outputs.append(Z)
        predictions.append(P)

    sites = find_sites(model, rows, layers.activation, channels=layers.units, fraction=0.5, batch_size=batch_size,
                       verbose=verbose, desc="unit_importance", option="activation_layer", on_chunk=read_units)
    return Scan(sites.thresholds, sites.row_max, sites.site_row, sites.site_channel, sites.site_position,
                np.concatenate(outputs), np.concatenate(predictions), sites.positions)


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
