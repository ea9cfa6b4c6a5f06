"""The ``filter_motifs`` verb: activation-based PPMs of a convolutional layer's filters, annotated by Tomtom."""

from __future__ import annotations

import os

import numpy as np

from interpkit.activation_motifs import (
    best_matches,
    counts_to_ppms,
    find_activation_layer,
    find_sites,
    motif_database,
    strand_rows,
    window_counts,
)
from interpkit.errors import CapabilityError, InputError
from interpkit.motifs import Motif, information_content
from interpkit.predictor import Capability, Predictor, capabilities_of
from interpkit.tables import Table
from interpkit.validation import check_one_hot, check_scalar
from interpkit_filter_motifs.result import FilterMotifsResult

__all__ = ["TOMTOM_THRESH", "filter_motifs"]

#: q-value up to which Tomtom matches are kept in the full table (MEME Tomtom's default ``-thresh``).
TOMTOM_THRESH = 0.5
#: Filters listed by name in a warning before "... (k more)".
_LISTED = 20


def filter_motifs(
    model: Predictor,
    X: np.ndarray,
    *,
    layer: str | int | None = None,
    threshold: float = 0.5,
    both_strands: bool = True,
    motif_db: str | os.PathLike | None = "jaspar",
    jaspar_release: str = "JASPAR2020",
    q_threshold: float = 0.05,
    top: int = 10,
    batch_size: int | None = None,
    verbose: bool = False,
) -> FilterMotifsResult:
    """The motifs a convolutional layer's filters learned: PPMs of the windows that activate them, and their JASPAR matches.

    The standard filter interpretation (Kelley et al. 2016 Basset; Koo & Eddy 2019; Novakovsky et al.
    2023 ExplaiNN). For each channel (filter) c of the layer, with A[r, c, j] its activation at position j
    of row r:

    1. threshold_c = ``threshold`` x max over rows r and positions j of A[r, c, j];
    2. sites_c = every (r, j) with A[r, c, j] > threshold_c (strict);
    3. PFM_c = the sum of the one-hot windows the sites see: position j covers input columns
       start + j x jump .. start + j x jump + F - 1 (the layer's receptive field F, jump and start from
       :func:`interpkit.probe.receptive_fields`; columns in padding count as N);
       PPM_c[:, i] = PFM_c[:, i] / sum_b PFM_c[b, i] (a column without any base, and a filter without
       sites, stay uniform at 0.25);
    4. information content of PPM_c in bits (uniform background), summed over its F columns;
    5. Tomtom (memelite) of every filter with a site against the motif database; a filter's best match
       (smallest q-value) annotates it when its q-value is below ``q_threshold``.

    Parameters
    ----------
    model : Predictor with LayerProbe
        Any model whose backend lists its layers (torch, onnx, keras).
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences (e.g. peaks or test-set sequences); the model's input length.
    layer : str, int or None
        Layer whose channels are the filters, by name or layer-table index (``interpkit info MODEL``); it
        must keep positions (before any flatten or global pooling). Default is None: the end of the first
        convolution's conv/norm/activation chain, before its pooling (e.g. Basset's first ReLU, ExplaiNN's
        exponential, a Keras ``Conv1D`` with a fused activation itself).
    threshold : float
        Fraction of each filter's maximum activation that a site must exceed, in [0, 1]. Default is 0.5
        (Basset, Koo & Eddy, ExplaiNN).
    both_strands : bool
        Scan each sequence and its reverse complement (2N rows, forward first): maxima, thresholds, sites
        and PPMs cover both strands. RNA models (input alphabet ACGU) have one strand: this is then
        False. Default is True.
    motif_db : "jaspar", path, "none" or None
        Target motifs for Tomtom: "jaspar" (pyjaspar's ``jaspar_release``, CORE vertebrates, offline), a
        MEME file, or "none"/None for no annotation. Default is "jaspar".
    jaspar_release : str
        JASPAR release for ``motif_db="jaspar"`` (see :func:`interpkit.jaspar.jaspar_releases`). Default is
        "JASPAR2020".
    q_threshold : float
        A filter is annotated with its best match when its Tomtom q-value is below this. Default is 0.05.
    top : int
        Filters whose logos the report draws, annotated ones first (by q-value), then by information
        content. Default is 10.
    batch_size : int or None
        Sequences per forward pass; None lets the backend choose. Default is None.
    verbose : bool
        Progress bar over the rows. Default is False.

    Returns
    -------
    FilterMotifsResult
        Arrays (C filters, F = the layer's receptive field in bp):

        - ``ppms``: (C, 4, F), float64; ``counts``: (C, 4, F), float64, the PFMs (base counts);
        - ``max_activation``: (C,), float32, each filter's largest activation (activation units);
        - ``thresholds``: (C,), float32, ``threshold`` x ``max_activation``;
        - ``n_sites``: (C,), int64, windows in each PPM;
        - ``information_content``: (C,), float64, bits summed over the PPM's columns (0 without sites).

        Tables: ``filters`` (filter, motif, n_sites, max_activation, threshold, consensus,
        information_content, match_id, match_name, q_value; one row per filter), ``tomtom`` (every
        match with q <= 0.5, MEME Tomtom's columns). Motifs: ``filter<c>`` (0-based) for each filter with
        at least one site, its PPM, nsites, named by its best match.

    Raises
    ------
    InputError
        For X that is not one-hot of the model's length, an option out of range, or a ``layer`` that does
        not exist or has no positions (the message names ``layer``), or a model without a convolution when
        ``layer`` is unset.
    InputTypeError
        For options of the wrong type.
    MissingFileError
        If ``motif_db`` is a path that does not exist.
    CapabilityError
        If the model cannot list its layers or give activations.

    Notes
    -----
    Sources: Kelley, Snoek & Rinn (2016) Genome Res. 26:990, Methods "Filter motifs" (windows of the
    first-layer filters where the activation exceeds half the filter's maximum over all sequences,
    Tomtom against CIS-BP); Koo & Eddy (2019) PLoS Comput. Biol. 15:e1007560 (the same rule, Tomtom
    against JASPAR, for the "representation learning" analysis); Novakovsky et al. (2023) Genome Biol.
    24:154 (ExplaiNN's unit PPMs, the same windows as :func:`unit_importance`'s). Differences: Basset
    scans one strand and counts each sequence's windows, we scan both strands by default (as ExplaiNN's
    ``--rev-complement``); the windows follow the layer's geometry (padding counts as N); Tomtom is
    memelite's (see :func:`interpkit.tomtom.tomtom`), not MEME's binary.
    """
    missing = {Capability.PREDICT, Capability.LAYERS} - capabilities_of(model)
    if missing:
        raise CapabilityError(f"filter_motifs needs {', '.join(sorted(map(str, missing)))}, which model "
                              f"{getattr(model, 'name', type(model).__name__)} does not provide; load it with a "
                              "backend that lists its layers (torch, onnx, keras).")
    X = check_one_hot(X, "X", length=model.input_spec.length)
    if len(X) == 0:
        raise InputError("X holds no sequences; give at least one (N >= 1).")
    check_scalar(threshold, "threshold", (int, float), min_val=0, max_val=1)
    check_scalar(both_strands, "both_strands", bool)
    check_scalar(q_threshold, "q_threshold", (int, float), min_val=0, max_val=1)
    check_scalar(top, "top", int, min_val=1)
    check_scalar(jaspar_release, "jaspar_release", str)
    check_scalar(verbose, "verbose", bool)
    if batch_size is not None:
        check_scalar(batch_size, "batch_size", int, min_val=1)
    alphabet = model.input_spec.alphabet
    both_strands = both_strands and alphabet == "ACGT"  # RNA has no reverse strand
    database, database_name = motif_database(motif_db, jaspar_release)  # before the work: a bad path costs nothing
    scanned = find_activation_layer(model.layers(), layer, option="layer")

    rows = strand_rows(X, both_strands=both_strands)
    sites = find_sites(model, rows, scanned.name, channels=scanned.channels, fraction=float(threshold),
                       batch_size=batch_size, verbose=verbose, desc="filter_motifs", option="layer")
    C = len(sites.thresholds)
    counts = window_counts(rows, sites.site_row, sites.site_channel, sites.site_position, scanned.geometry, C)
    ppms = counts_to_ppms(counts)
    n_sites = sites.n_sites
    info = np.array([float(information_content(p).sum()) if k else 0.0 for p, k in zip(ppms, n_sites)])

    ids = [f"filter{c}" for c in range(C)]
    found = [c for c in range(C) if n_sites[c]]
    from interpkit.tomtom import COLUMNS

    hits = Table(COLUMNS)
    if database and found:
        from interpkit.tomtom import tomtom

        target_alphabet = database[0].alphabet  # A, C, G, T/U rows are the same: compare in the targets' letters
        queries = [Motif(ids[c], ppms[c], alphabet=target_alphabet, nsites=int(n_sites[c])) for c in found]
        hits = tomtom(queries, database, thresh=TOMTOM_THRESH)
    best = best_matches(hits, q_threshold)
    motifs = tuple(Motif(ids[c], ppms[c], name=best.get(ids[c], ("", ""))[1], alphabet=alphabet,
                         nsites=int(n_sites[c])) for c in found)
    by_id = {m.id: m for m in motifs}
    matched = {t for t, _, _ in best.values()}
    targets = {m.id: m for m in database or () if m.id in matched}

    filter_rows = []
    for c in range(C):
        match = best.get(ids[c], ("", "", None))
        filter_rows.append((c, ids[c] if n_sites[c] else "", int(n_sites[c]), float(sites.max_activation[c]),
                            float(sites.thresholds[c]), by_id[ids[c]].consensus() if n_sites[c] else "",
                            round(float(info[c]), 4), *match))
    columns = ("filter", "motif", "n_sites", "max_activation", "threshold", "consensus", "information_content",
               "match_id", "match_name", "q_value")
    tables = {"filters": Table(columns, tuple(filter_rows)), "tomtom": hits}
    arrays = {"ppms": ppms, "counts": counts, "max_activation": sites.max_activation,
              "thresholds": sites.thresholds, "n_sites": n_sites, "information_content": info}
    warnings = []
    silent = np.flatnonzero(n_sites == 0)
    if len(silent):
        shown = ", ".join(ids[c] for c in silent[:_LISTED])
        more = f", ... ({len(silent) - _LISTED} more)" if len(silent) > _LISTED else ""
        warnings.append(f"{len(silent)} of {C} filter(s) have no site (no activation above {threshold:g} x their "
                        f"maximum, e.g. a maximum <= 0): {shown}{more}; their PPMs stay uniform (0.25) and they "
                        "have no motif.")
    params = {"layer": scanned.name, "threshold": float(threshold), "both_strands": both_strands,
              "motif_db": database_name, "jaspar_release": jaspar_release, "q_threshold": q_threshold, "top": top,
              "batch_size": batch_size, "verbose": verbose}
    geometry = scanned.geometry
    provenance = {"layer": {"name": scanned.name, "index": scanned.index, "kind": scanned.kind,
                            "receptive_field": geometry.receptive_field, "jump": geometry.jump,
                            "start": geometry.start, "positions": sites.positions},
                  "rows": len(rows), "targets": len(database or ())}
    return FilterMotifsResult("filter_motifs", arrays=arrays, tables=tables, motifs=motifs, params=params,
                              provenance=provenance, warnings=tuple(warnings), layer=scanned.name,
                              receptive_field=int(geometry.receptive_field), targets=targets)
