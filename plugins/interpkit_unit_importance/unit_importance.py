"""The ``unit_importance`` verb: ExplaiNN's unit PPMs, final weights and unit importance, on any backend."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from interpkit.activation_motifs import (
    best_matches,
    counts_to_ppms,
    motif_database,
    strand_rows,
    window_counts,
)
from interpkit.errors import CapabilityError, InputError
from interpkit.motifs import Motif
from interpkit.predictor import Capability, Predictor, capabilities_of
from interpkit.tables import Table
from interpkit.validation import check_one_hot, check_scalar
from interpkit_unit_importance.result import UnitImportanceResult
from interpkit_unit_importance.units import (
    OutputFit,
    find_unit_layers,
    fit_output_layer,
    outputs_and_predictions,
    scan,
)

__all__ = ["TOMTOM_THRESH", "unit_importance"]

#: q-value up to which Tomtom matches are kept in the full table (MEME Tomtom's default ``-thresh``).
TOMTOM_THRESH = 0.5


def _fit(model: Predictor, Z: np.ndarray, P: np.ndarray, *, layer: str, units: int, length: int,
         batch_size: int | None, random_state: int) -> tuple[OutputFit, int]:
    """Fit the output layer on the rows; when they leave weights unidentified (dead units, fewer rows than
    2 (U + 1)), add uniform random sequences, which the model's weights do not depend on."""
    fit = fit_output_layer(Z, P, unit_layer=layer)
    if fit.rows >= 2 * (units + 1) and fit.identifiable.all() and not np.isnan(fit.bias).any():
        return fit, 0
    extra = max(256, 2 * (units + 1))
    rng = np.random.default_rng(random_state)
    R = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(extra, length))].transpose(0, 2, 1).copy()
    Ze, Pe = outputs_and_predictions(model, R, layer, units, batch_size=batch_size)
    return fit_output_layer(np.concatenate([Z, Ze]), np.concatenate([P, Pe]), unit_layer=layer), extra


def unit_importance(
    model: Predictor,
    X: np.ndarray,
    *,
    activation_layer: str | int | None = None,
    unit_layer: str | int | None = None,
    both_strands: bool = True,
    motif_db: str | os.PathLike | None = "jaspar",
    jaspar_release: str = "JASPAR2020",
    q_threshold: float = 0.05,
    top: int = 10,
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = False,
    names: Sequence[str] | None = None,
) -> UnitImportanceResult:
    """ExplaiNN's interpretation of its units: PPMs, JASPAR annotation, final weights and unit importance.

    An ExplaiNN model (Novakovsky et al. 2023) is U independent units, each a convolutional filter and a
    small per-unit network giving one scalar (its *unit output*), and a linear layer mapping the U unit
    outputs to the T outputs. For each unit u this computes what the paper and its reference code do:

    1. its activation maps A[:, u, :] (the first convolution, batch norm and exponential activation);
    2. its threshold, half its largest activation over all rows and positions, and its *sites*, the (row,
       position) pairs with A > threshold (strict); the rows with a site form its sequence set S_u;
    3. its PPM: the one-hot windows of its receptive field at its sites, summed, each column divided by its
       total (N bases and padding count for nothing); a unit without sites keeps the uniform 0.25 PPM;
    4. its best Tomtom match in a motif database (JASPAR2020 CORE vertebrates by default, as the
       reference's ``JASPAR2020_CORE_vertebrates_non-redundant`` file, which holds the same 746 motifs);
    5. its final-layer weights W[:, u], recovered by least squares of the predictions on the unit outputs
       (the layer is linear, so the fit is exact; no framework access is needed);
    6. its importance for output c on each row of S_u: unit output x W[c, u] (in the model's output units,
       e.g. logits), the contribution of the unit to that output, and the median over S_u.

    Everything is read through the Predictor and LayerProbe interfaces, so the same ExplaiNN loaded from
    PyTorch, its ONNX export or Keras gives the same result. Any U and T are supported (the reference code's
    ``get_median_unit_importance`` hard-codes 100 units and 50 outputs).

    Parameters
    ----------
    model : Predictor with LayerProbe
        An ExplaiNN-like model (layers capability): outputs linear in the unit outputs.
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (e.g. well-predicted peaks); the reference selects them before this step.
    activation_layer : str, int or None
        Layer of the unit activation maps (N, U, L'), by name or layer-table index. Default is None: the
        last normalisation or activation after the first convolution, before its pooling (PyTorch ExplaiNN
        "linears.2", the exponential; ONNX export "/linears/linears.2/Exp").
    unit_layer : str, int or None
        Layer of the unit outputs (N, U), the input of the output layer. Default is None: the layer feeding
        the last dense layer (PyTorch ExplaiNN "linears.13"; ONNX export "/linears/linears.13/Flatten").
    both_strands : bool
        Use each sequence and its reverse complement (2N rows, forward first), as the reference's
        ``interpret.py`` does for models trained with ``--rev-complement``: thresholds, sites, PPMs, S_u
        and importance distributions then cover both strands. RNA models (input alphabet ACGU) have
        one strand: this is then False. Default is True.
    motif_db : "jaspar", path, "none" or None
        Target motifs for Tomtom: "jaspar" (pyjaspar's ``jaspar_release``, CORE vertebrates, offline), a
        MEME file, or "none"/None for no annotation. Default is "jaspar".
    jaspar_release : str
        JASPAR release for ``motif_db="jaspar"`` (see :func:`interpkit.jaspar.jaspar_releases`). Default is
        "JASPAR2020" (the reference's).
    q_threshold : float
        A unit is annotated with its best match when its Tomtom q-value is below this (the reference's
        rule). Default is 0.05.
    top : int
        Units per output drawn in the report's box plots (by median importance). Default is 10.
    batch_size : int or None
        Sequences per forward pass; None lets the backend choose. Default is None.
    random_state : int
        Seed of the random sequences added to the output-layer fit when the rows leave weights unidentified.
        Default is 0.
    verbose : bool
        Progress bar over the rows. Default is False.
    names : sequence of str or None
        Sequence names for the tables. Default is None ("seq0", "seq1", ...).

    Returns
    -------
    UnitImportanceResult
        Arrays (R = N rows, or 2N with ``both_strands``: forward rows then their reverse complements;
        F = the activation layer's receptive field in bp; M = sum over units of |S_u|):

        - ``thresholds``: (U,), float32, half each unit's largest activation (activation units);
        - ``n_sites``: (U,), int64, windows in each PPM; ``n_sequences``: (U,), int64, |S_u|;
        - ``counts``: (U, 4, F), float64, base counts of the windows; ``ppms``: (U, 4, F), float64;
        - ``unit_outputs``: (R, U), float32; ``predictions``: (R, T), float32 (the model's output units);
        - ``row_max_activation``: (R, U), float32 (row r is in S_u when it exceeds ``thresholds[u]``);
        - ``row_sequence``: (R,), int64, the sequence of each row; ``row_strand``: (R,), int8, +1 / -1;
        - ``final_weights``: (T, U), float64, NaN where unidentified; ``final_bias``: (T,), float64;
        - ``weights_identified``: (U,), bool;
        - ``importance``: (M, T), float64, unit output x weight; ``importance_unit``, ``importance_row``:
          (M,), int64, the unit and row of each value (by unit, then row);
        - ``median_importance``: (U, T), float64, NaN for units without sequences.

        Tables: ``units`` (unit, motif, n_sites, n_sequences, threshold, consensus, best match id, name and
        q-value, weight and median importance per output), ``median_importance`` (units sorted by the last
        output's median, descending, as the reference's ``importances.tsv``), ``importance`` (one row per
        value: unit, sequence, strand, unit output, one column per output; the reference's
        ``importances.tsv.gz``), ``tomtom`` (every match with q <= 0.5, MEME Tomtom's columns). Motifs:
        ``unit<u>`` (0-based, the reference's ``filter<u>``), PPM, nsites, named by the best match.

    Raises
    ------
    InputError
        For X that is not one-hot of the model's length, an option out of range, a layer that does not exist
        or cannot be the unit activation or unit-output layer (the message names
        ``activation_layer``/``unit_layer``), or outputs that are not a linear function of the unit outputs.
    InputTypeError
        For options of the wrong type.
    MissingFileError
        If ``motif_db`` is a path that does not exist.
    CapabilityError
        If the model cannot list its layers or give activations.

    Notes
    -----
    Source: Novakovsky et al. (2023) Genome Biol. 24:154, Methods ("Model interpretation": unit PPMs from
    the 19-mers activating a unit above 50% of its maximum, Tomtom against JASPAR, unit importance as unit
    output x final weight over the sequences activating the unit; Figs 2-3); reference code
    wassermanlab/ExplaiNN ``get_pwms_explainn``, ``get_specific_unit_importance``, ``scripts/interpret.py``.
    Differences: activations are compared in float32 (the reference casts them to float16); the weights
    are recovered by least squares rather than read from ``model.final``; the windows follow the layer's
    geometry (padding counts as N); PPM columns without any base are uniform (the reference's writer drops
    them); Tomtom is memelite's (see :func:`interpkit.tomtom.tomtom`), not MEME's binary.
    """
    missing = {Capability.PREDICT, Capability.LAYERS} - capabilities_of(model)
    if missing:
        raise CapabilityError(f"unit_importance needs {', '.join(sorted(map(str, missing)))}, which model "
                              f"{getattr(model, 'name', type(model).__name__)} does not provide; load it with a "
                              "backend that lists its layers (torch, onnx, keras).")
    X = check_one_hot(X, "X", length=model.input_spec.length)
    if len(X) == 0:
        raise InputError("X holds no sequences; give at least one (N >= 1).")
    check_scalar(both_strands, "both_strands", bool)
    both_strands = both_strands and model.input_spec.alphabet == "ACGT"  # RNA has no reverse strand
    check_scalar(q_threshold, "q_threshold", (int, float), min_val=0, max_val=1)
    check_scalar(top, "top", int, min_val=1)
    check_scalar(random_state, "random_state", int, min_val=0)
    check_scalar(jaspar_release, "jaspar_release", str)
    if batch_size is not None:
        check_scalar(batch_size, "batch_size", int, min_val=1)
    names = tuple(names) if names is not None else tuple(f"seq{i}" for i in range(len(X)))
    if len(names) != len(X):
        raise InputError(f"names has {len(names)} entries for {len(X)} sequences; give one name per sequence.")
    database, database_name = motif_database(motif_db, jaspar_release)  # before the work: a bad path costs nothing
    layers = find_unit_layers(model.layers(), activation_layer=activation_layer, unit_layer=unit_layer)
    n = len(X)
    rows = strand_rows(X, both_strands=both_strands)
    sc = scan(model, rows, layers, batch_size=batch_size, verbose=verbose)
    units = sc.unit_outputs.shape[1]
    fit, added = _fit(model, sc.unit_outputs, sc.predictions, layer=layers.unit, units=units, length=X.shape[2],
                      batch_size=batch_size, random_state=random_state)
    W = fit.weights

    counts = window_counts(rows, sc.site_row, sc.site_unit, sc.site_position, layers.geometry, units)
    n_sites = np.bincount(sc.site_unit, minlength=units).astype(np.int64)
    ppms = counts_to_ppms(counts)

    active = sc.row_max > sc.thresholds[None, :]
    imp_unit, imp_row = np.nonzero(active.T)  # by unit, then row
    values = sc.unit_outputs[imp_row, imp_unit].astype(np.float64)[:, None] * W[:, imp_unit].T
    n_sequences = active.sum(axis=0).astype(np.int64)
    bounds = np.concatenate([[0], np.cumsum(n_sequences)])
    T = W.shape[0]
    medians = np.full((units, T), np.nan)
    for u in np.flatnonzero(n_sequences):
        medians[u] = np.median(values[bounds[u]:bounds[u + 1]], axis=0)

    ids = [f"unit{u}" for u in range(units)]
    queries = [Motif(ids[u], ppms[u], nsites=int(n_sites[u])) for u in range(units) if n_sites[u]]
    if database and queries:
        from interpkit.tomtom import tomtom

        hits = tomtom(queries, database, thresh=TOMTOM_THRESH)
    else:
        from interpkit.tomtom import COLUMNS

        hits = Table(COLUMNS)
    best = best_matches(hits, q_threshold)
    motifs = tuple(Motif(ids[u], ppms[u], name=best.get(ids[u], ("", ""))[1], nsites=int(n_sites[u]))
                   for u in range(units))

    outputs = tuple(model.output_names)
    row_sequence = np.arange(len(rows), dtype=np.int64) % n
    row_strand = np.where(np.arange(len(rows)) < n, 1, -1).astype(np.int8)
    unit_rows = []
    for u in range(units):
        match = best.get(ids[u], ("", "", None))
        unit_rows.append((u, ids[u], int(n_sites[u]), int(n_sequences[u]), float(sc.thresholds[u]),
                          motifs[u].consensus(), match[0], match[1], match[2], *W[:, u].tolist(),
                          *medians[u].tolist()))
    unit_columns = ("unit", "motif", "n_sites", "n_sequences", "threshold", "consensus", "match_id", "match_name",
                    "q_value", *(f"weight_{o}" for o in outputs), *(f"median_importance_{o}" for o in outputs))
    order = sorted(range(units), key=lambda u: (bool(np.isnan(medians[u, -1])), -np.nan_to_num(medians[u, -1])))
    median_rows = [(u, ids[u], best.get(ids[u], ("", ""))[1], *medians[u].tolist()) for u in order]
    strand_text = np.where(row_strand[imp_row] > 0, "+", "-")
    long_rows = [(int(u), names[int(row_sequence[r])], str(s), float(z), *v)
                 for u, r, s, z, v in zip(imp_unit, imp_row, strand_text,
                                          sc.unit_outputs[imp_row, imp_unit].tolist(), values.tolist())]
    tables = {
        "units": Table(unit_columns, tuple(unit_rows)),
        "median_importance": Table(("unit", "motif", "match_name", *outputs), tuple(median_rows)),
        "importance": Table(("unit", "sequence", "strand", "unit_output", *outputs), tuple(long_rows)),
        "tomtom": hits,
    }
    arrays = {
        "thresholds": sc.thresholds, "n_sites": n_sites, "n_sequences": n_sequences,
        "counts": counts, "ppms": ppms,
        "unit_outputs": sc.unit_outputs, "predictions": sc.predictions, "row_max_activation": sc.row_max,
        "row_sequence": row_sequence, "row_strand": row_strand,
        "final_weights": W, "final_bias": fit.bias, "weights_identified": fit.identifiable,
        "importance": values, "importance_unit": imp_unit.astype(np.int64), "importance_row": imp_row.astype(np.int64),
        "median_importance": medians,
    }
    warnings = []
    silent = np.flatnonzero(n_sites == 0)
    if len(silent):
        warnings.append(f"{len(silent)} unit(s) have no site (no activation above half their maximum): "
                        f"{_listing(silent)}; their PPMs stay uniform (0.25) and they have no importance.")
    unknown = np.flatnonzero(~fit.identifiable)
    if len(unknown):
        warnings.append(f"the final weights of {len(unknown)} unit(s) cannot be recovered (their outputs are zero "
                        f"or collinear on every sequence tried, including {added} random ones): {_listing(unknown)}; "
                        "their weights and importances are NaN.")
    if np.isnan(fit.bias).any():
        warnings.append("the output bias cannot be recovered (a unit's output is constant); final_bias is NaN.")
    params = {"activation_layer": layers.activation, "unit_layer": layers.unit, "both_strands": both_strands,
              "motif_db": database_name, "jaspar_release": jaspar_release, "q_threshold": q_threshold, "top": top,
              "batch_size": batch_size, "random_state": random_state, "verbose": verbose}
    provenance = {"output_names": list(outputs),
                  "fit": {"rows": fit.rows, "random_rows": added, "relative_residual": fit.residual}}
    return UnitImportanceResult("unit_importance", arrays=arrays, tables=tables, motifs=motifs, params=params,
                                provenance=provenance, sequence_names=names, warnings=tuple(warnings),
                                activation_layer=layers.activation, unit_layer=layers.unit,
                                output_names=outputs, receptive_field=int(layers.geometry.receptive_field))


def _listing(units: np.ndarray, limit: int = 20) -> str:
    shown = ", ".join(f"unit{u}" for u in units[:limit])
    return shown + (f", ... ({len(units) - limit} more)" if len(units) > limit else "")
