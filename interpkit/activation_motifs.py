"""Motifs from activations: where a layer's channels fire, and the PPMs of the input windows there.

The activation-based filter interpretation of Kelley, Snoek & Rinn (2016) Basset (Genome Res. 26:990,
Methods "Filter motifs"), Koo & Eddy (2019) PLoS Comput. Biol. 15:e1007560 and Novakovsky et al. (2023)
ExplaiNN (Genome Biol. 24:154, "Model interpretation"): for each channel c of a layer with positions,

1. its threshold, a fraction (usually 0.5) of its largest activation over every sequence and position;
2. its *sites*, the (row, position) pairs whose activation is strictly above the threshold;
3. its PFM, the sum of the one-hot input windows its sites see (the layer's receptive field, placed by
   :func:`interpkit.probe.receptive_fields`), and its PPM, each column divided by its total.

Everything goes through the :class:`~interpkit.predictor.Predictor` and
:class:`~interpkit.probe.LayerProbe` interfaces (``layers()``, ``activations()``), so any backend serves it.
Used by the ``filter_motifs`` and ``unit_importance`` methods. NumPy only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interpkit.errors import InputError, InputTypeError, MissingFileError
from interpkit.probe import Geometry, LayerInfo, receptive_fields, resolve_layer
from interpkit.progress import batch_slices

__all__ = [
    "CHAIN_KINDS",
    "SCAN_BYTES",
    "ActivationLayer",
    "Sites",
    "best_matches",
    "counts_to_ppms",
    "find_activation_layer",
    "find_sites",
    "first_conv_chain",
    "lookup_layer",
    "motif_database",
    "strand_rows",
    "window_counts",
]

#: Layer kinds that keep positions and may sit between the first convolution and its pooling.
CHAIN_KINDS = ("norm", "activation", "dropout", "identity")
#: Bytes of activation maps held at once during a scan (chunks of rows are sized to it).
SCAN_BYTES = 64 * 2**20
#: Sites whose windows are gathered at once while counting.
_GATHER = 65536


@dataclass(frozen=True)
class ActivationLayer:
    """A layer whose outputs have positions, chosen for an activation scan.

    Attributes
    ----------
    index : int
        Its row in the layer table.
    name : str
        The framework's layer name (what ``activations()`` takes).
    kind : str
        Its kind in the layer table ("activation", "conv", ...).
    channels : int or None
        C from the layer table (None when the backend does not report it).
    geometry : Geometry
        Receptive field (bp), jump (bp) and start (bp) of its positions; never global.
    """

    index: int
    name: str
    kind: str
    channels: int | None
    geometry: Geometry


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def lookup_layer(layers: Sequence[LayerInfo], value: str | int, option: str) -> tuple[int, LayerInfo]:
    """A layer by name or layer-table index; the command line's digits (``"2"``) count as an index.

    Raises
    ------
    InputError
        If no layer matches; the message starts with ``"<option> == <value>: "``.
    """
    names = [info.name for info in layers]
    if isinstance(value, str) and value not in names and value.strip().isdigit():
        value = int(value)
    try:
        return resolve_layer(layers, value)
    except InputError as exc:
        raise InputError(f"{option} == {value!r}: {exc}") from None


def first_conv_chain(layers: Sequence[LayerInfo]) -> int | None:
    """Index of the end of the first convolution's conv/norm/activation chain, or None without a convolution.

    The chain is the first "conv" layer and the position-wise layers (norm, activation, dropout,
    identity) that follow it one after the other, each fed by the one before; its end is the last norm
    or activation of the chain (the convolution itself when it has none, e.g. a Keras ``Conv1D`` with a
    fused activation), so pooling, flatten and later convolutions are never reached.

    Parameters
    ----------
    layers : sequence of LayerInfo
        The layer table, in execution order.

    Returns
    -------
    int or None
        E.g. for conv -> batch norm -> exp -> max pool, the exp's index.
    """
    first = next((i for i, info in enumerate(layers) if info.kind == "conv"), None)
    if first is None:
        return None
    chosen = i = first
    while i + 1 < len(layers) and layers[i + 1].kind in CHAIN_KINDS and layers[i + 1].inputs in ((), (layers[i].name,)):
        i += 1
        if layers[i].kind in ("norm", "activation"):
            chosen = i
    return chosen


def find_activation_layer(layers: Sequence[LayerInfo], layer: str | int | None = None, *,
                          option: str = "layer") -> ActivationLayer:
    """The layer to scan: the one named, or the end of the first convolution chain (:func:`first_conv_chain`).

    Parameters
    ----------
    layers : sequence of LayerInfo
        The model's layer table (:meth:`~interpkit.probe.LayerProbe.layers`).
    layer : str, int or None
        Layer name or layer-table index (digits as text count as an index); None detects it. Default is
        None.
    option : str
        The caller's name for ``layer``, used in error messages (``activation_layer`` for
        unit_importance). Default is "layer".

    Returns
    -------
    ActivationLayer

    Raises
    ------
    InputError
        If the named layer does not exist (``"<option> == 'x': no layer named 'x'..."``), detection finds
        no convolution, or the layer sees the whole input (``"<option> 'x' (flatten) sees the whole
        input"``): its outputs have no positions, so no sites.
    """
    if layer is not None:
        i = lookup_layer(layers, layer, option)[0]
    else:
        found = first_conv_chain(layers)
        if found is None:
            raise InputError(f"the model's layer table has no convolution, so the layer to scan cannot be found; "
                             f"pass {option}= ({_flag(option)}) naming a layer whose output is (N, C, L') "
                             "activation maps. `interpkit info MODEL` lists the layers.")
        i = found
    info = layers[i]
    geometry = receptive_fields(layers)[i]
    if geometry.is_global:
        raise InputError(f"{option} {info.name!r} ({info.kind}) sees the whole input: its outputs have no positions, "
                         f"so they have no sites; pass {option}= ({_flag(option)}) naming a layer before the first "
                         "pooling or flatten that mixes all positions (e.g. the activation after the first "
                         "convolution).")
    return ActivationLayer(i, info.name, info.kind, info.channels, geometry)


def strand_rows(X: np.ndarray, *, both_strands: bool) -> np.ndarray:
    """The rows to scan: the sequences, then (with ``both_strands``) their reverse complements.

    Parameters
    ----------
    X : ndarray of shape (N, 4, L), float32
        One-hot, alphabet A, C, G, T.
    both_strands : bool

    Returns
    -------
    ndarray of shape (N, 4, L) or (2N, 4, L), float32
        Row r < N is sequence r; row N + r its reverse complement (``X[r, ::-1, ::-1]``).
    """
    if not both_strands:
        return X
    return np.concatenate([X, X[:, ::-1, ::-1]])


@dataclass(frozen=True)
class Sites:
    """What one pass over R rows gives for the C channels of a layer with L' positions.

    Attributes
    ----------
    max_activation : ndarray of shape (C,), float32
        Each channel's largest activation over all rows and positions (activation units).
    thresholds : ndarray of shape (C,), float32
        ``fraction`` x ``max_activation``, computed in float32.
    row_max : ndarray of shape (R, C), float32
        Each row's largest activation per channel.
    site_row, site_channel, site_position : ndarray of shape (M,), int64
        The (row, channel, position) triples whose activation is strictly above the channel's threshold,
        ordered by channel, then row, then position.
    site_activation : ndarray of shape (M,), float32
        The activation at each site.
    positions : int
        L'.
    """

    max_activation: np.ndarray
    thresholds: np.ndarray
    row_max: np.ndarray
    site_row: np.ndarray
    site_channel: np.ndarray
    site_position: np.ndarray
    site_activation: np.ndarray
    positions: int

    @property
    def n_sites(self) -> np.ndarray:
        """Sites per channel, ndarray of shape (C,), int64."""
        return np.bincount(self.site_channel, minlength=len(self.thresholds)).astype(np.int64)


def find_sites(model: Any, rows: np.ndarray, layer: str, *, channels: int | None = None, fraction: float = 0.5,
               batch_size: int | None = None, verbose: bool = False, desc: str = "activation scan",
               option: str = "layer", on_chunk: Callable[[slice, np.ndarray], None] | None = None) -> Sites:
    """Thresholds and sites of every channel of ``layer`` in one pass over the rows.

    The activation maps are read in chunks of rows holding at most :data:`SCAN_BYTES` (64 MiB). As a
    channel's running maximum only grows, so does its running threshold (``fraction`` >= 0): every site
    of the final threshold is above the running one when its chunk is read. Candidates above the running
    threshold are kept and pruned as it rises, so the result equals thresholding all maps at once.

    Parameters
    ----------
    model : Predictor with LayerProbe
    rows : ndarray of shape (R, 4, L), float32
        One-hot rows (:func:`strand_rows`).
    layer : str
        Name of the layer to scan (:attr:`ActivationLayer.name`).
    channels : int or None
        C from the layer table, checked against the activations; None skips the check. Default is None.
    fraction : float
        Threshold as a fraction of each channel's maximum, in [0, 1]. Default is 0.5.
    batch_size : int or None
        Passed to the backend. Default is None.
    verbose : bool
        Progress bar. Default is False.
    desc : str
        Progress bar label. Default is "activation scan".
    option : str
        The caller's name for the layer option, used in error messages. Default is "layer".
    on_chunk : callable or None
        Called as ``on_chunk(rows_slice, A)`` after each chunk, with A the chunk's activation maps
        (n, C, L') float32, so callers can read other layers of the same rows in the same pass
        (unit_importance's unit outputs). Default is None.

    Returns
    -------
    Sites

    Raises
    ------
    InputError
        If the layer's output is not (N, C, L') with C the table's channel count, or differs between rows.
    """
    probe = np.asarray(model.activations(rows[:1], layer, batch_size=batch_size))
    if probe.ndim != 3 or channels is not None and probe.shape[1] != channels:
        expected = f"C = {channels} (the layer table's channels)" if channels is not None else "C channels"
        raise InputError(f"{option} {layer!r} gives activations of shape {probe.shape[1:]} per sequence, not "
                         f"(C, L') with {expected}; pass {option}= ({_flag(option)}) naming a layer with "
                         "(N, C, L') activation maps.")
    channels, positions = int(probe.shape[1]), int(probe.shape[2])
    factor = np.float32(fraction)
    chunk = int(min(1024, max(1, SCAN_BYTES // (4 * channels * max(positions, 1)))))
    n = len(rows)
    running = np.full(channels, -np.inf, dtype=np.float32)
    row_max = np.empty((n, channels), dtype=np.float32)
    kept: list[tuple[np.ndarray, ...]] = []
    for sl in batch_slices(n, chunk, verbose=verbose, desc=desc, unit="seq"):
        A = np.asarray(model.activations(rows[sl], layer, batch_size=batch_size), dtype=np.float32)
        if A.shape[1:] != (channels, positions):
            raise InputError(f"{option} {layer!r} gave shape {A.shape[1:]} on some sequences and "
                             f"{(channels, positions)} on others; give sequences of one length.")
        row_max[sl] = A.max(axis=2) if positions else -np.inf
        running = np.maximum(running, row_max[sl].max(axis=0))
        r, c, p = np.nonzero(A > (running * factor)[None, :, None])
        kept.append((r + sl.start, c, p, A[r, c, p]))
        if len(kept) > 1:  # prune the earlier candidates under the risen thresholds
            joined = [np.concatenate(parts) for parts in zip(*kept)]
            mask = joined[3] > (running * factor)[joined[1]]
            kept = [tuple(part[mask] for part in joined)]
        if on_chunk is not None:
            on_chunk(sl, A)
    r, c, p, v = (np.concatenate(parts) for parts in zip(*kept))
    order = np.lexsort((p, r, c))
    return Sites(running, running * factor, row_max, r[order].astype(np.int64), c[order].astype(np.int64),
                 p[order].astype(np.int64), v[order].astype(np.float32), positions)


def window_counts(rows: np.ndarray, site_row: np.ndarray, site_channel: np.ndarray, site_position: np.ndarray,
                  geometry: Geometry, channels: int) -> np.ndarray:
    """Per channel, the sum of the one-hot windows at its sites (a PFM of counts).

    Position j of a layer with receptive field F, jump J and start s sees input columns
    s + j J .. s + j J + F - 1; columns outside the sequence (padding) count as N (all zero), so a
    window that runs into padding still counts with its bases inside the sequence.

    Parameters
    ----------
    rows : ndarray of shape (R, 4, L), float32
    site_row, site_channel, site_position : ndarray of shape (M,), int64
        Sorted by channel (as :class:`Sites` holds them).
    geometry : Geometry
        Of the scanned layer (local).
    channels : int
        C.

    Returns
    -------
    counts : ndarray of shape (C, 4, F), float64
        Base counts per channel and window column; ``counts[c].sum(axis=0)`` is at most the channel's
        number of sites (less where windows hold N or padding).
    """
    width = int(geometry.receptive_field)
    counts = np.zeros((channels, 4, width), dtype=np.float64)
    if not len(site_row):
        return counts
    begin = geometry.start + site_position * geometry.jump
    left = int(max(0, -begin.min()))
    right = int(max(0, (begin + width).max() - rows.shape[2]))
    padded = np.pad(rows, ((0, 0), (0, 0), (left, right))) if left or right else rows
    columns = np.arange(width)
    bounds = np.searchsorted(site_channel, np.arange(channels + 1))
    for c in np.flatnonzero(np.diff(bounds)):
        for start in range(bounds[c], bounds[c + 1], _GATHER):
            stop = min(start + _GATHER, bounds[c + 1])
            cols = (begin[start:stop] + left)[:, None] + columns
            windows = padded[site_row[start:stop, None], :, cols]  # (m, F, 4)
            counts[c] += windows.sum(axis=0, dtype=np.float64).T
    return counts


def counts_to_ppms(counts: np.ndarray) -> np.ndarray:
    """PPMs from window counts: each column divided by its total; a column without any base is uniform (0.25).

    Parameters
    ----------
    counts : ndarray of shape (C, 4, F)

    Returns
    -------
    ndarray of shape (C, 4, F), float64
        A channel without sites keeps the uniform PPM.
    """
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), 0.25)


def motif_database(motif_db: Any, release: str) -> tuple[list[Any] | None, str]:
    """The Tomtom target motifs that ``motif_db`` names, and a description of them.

    Parameters
    ----------
    motif_db : "jaspar", path, "none" or None
        "jaspar": pyjaspar's ``release``, CORE vertebrates (offline); a MEME file; "none"/None: no
        annotation.
    release : str
        JASPAR release for "jaspar", e.g. "JASPAR2020".

    Returns
    -------
    (list of Motif or None, str)

    Raises
    ------
    InputTypeError
        If ``motif_db`` is not a string or path.
    MissingFileError
        If it is a path that does not exist.
    InputError
        If the JASPAR release is not shipped with pyjaspar.
    """
    if motif_db is None or motif_db == "none":
        return None, "none"
    if not isinstance(motif_db, (str, os.PathLike)):
        raise InputTypeError(f"motif_db must be 'jaspar', 'none' or a MEME file path, got {type(motif_db).__name__}.")
    if motif_db == "jaspar":
        from interpkit.jaspar import fetch_jaspar

        return fetch_jaspar(release=release), f"{release} CORE vertebrates (pyjaspar)"
    if not Path(motif_db).is_file():
        raise MissingFileError(f"motif_db {motif_db} is not a file; give a MEME file of target motifs, 'jaspar' "
                               "(with jaspar_release= / --jaspar-release) or 'none'.")
    from interpkit.meme import read_meme

    return list(read_meme(motif_db).motifs), str(motif_db)


def best_matches(tomtom: Any, q_threshold: float) -> dict[str, tuple[str, str, float]]:
    """Per query, its Tomtom match with the smallest q-value (then p-value), if that q-value is below ``q_threshold``.

    Parameters
    ----------
    tomtom : Table
        :func:`interpkit.tomtom.tomtom`'s table.
    q_threshold : float

    Returns
    -------
    dict of str to (str, str, float)
        Query id -> (target id, target name, q-value).
    """
    best: dict[str, tuple[str, str, float, float]] = {}
    at = {c: tomtom.columns.index(c) for c in ("Query_ID", "Target_ID", "Target_name", "q-value", "p-value")}
    for row in tomtom.rows:
        q, p = float(row[at["q-value"]]), float(row[at["p-value"]])
        query = row[at["Query_ID"]]
        if q < q_threshold and (query not in best or (q, p) < best[query][2:]):
            best[query] = (row[at["Target_ID"]], row[at["Target_name"]], q, p)
    return {k: v[:3] for k, v in best.items()}
