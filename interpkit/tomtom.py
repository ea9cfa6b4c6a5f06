"""Tomtom: which known motifs does each query motif resemble, and how significantly?

Gupta, Stamatoyannopoulos, Bailey & Noble, "Quantifying similarity between motifs", Genome Biology
8:R24 (2007), as implemented by memelite (jmschrei/memesuite-lite, numba; no MEME binary needed).
The table has the columns of MEME Tomtom's ``tomtom.tsv``
(https://meme-suite.org/meme/doc/tomtom-output-format.html).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from interpkit.errors import InputError
from interpkit.motifs import Motif, check_motifs
from interpkit.tables import Table
from interpkit.validation import check_scalar

__all__ = ["COLUMNS", "tomtom"]

#: MEME Tomtom's tomtom.tsv columns, then the target's alternate name.
COLUMNS = (
    "Query_ID", "Target_ID", "Optimal_offset", "p-value", "E-value", "q-value", "Overlap",
    "Query_consensus", "Target_consensus", "Orientation", "Target_name",
)


def tomtom(
    queries: Sequence[Motif],
    targets: Sequence[Motif],
    *,
    thresh: float = 0.5,
    evalue: bool = False,
    reverse_complement: bool = True,
    n_jobs: int = 1,
) -> Table:
    """Compare query motifs with target motifs (e.g. a JASPAR release) and list significant matches.

    For each query-target pair, Tomtom finds the best ungapped alignment of the two PPMs (over all
    offsets and, with ``reverse_complement``, both orientations of the target) and gives its score
    a p-value from a null distribution built from the query's columns against all target columns.

    Parameters
    ----------
    queries : sequence of Motif
        Query motifs (their PPMs, shape (4, w), are compared).
    targets : sequence of Motif
        Target motifs, typically a whole database: the null distribution is built from their
        columns, so p-values from fewer than 25 targets are unreliable (memelite warns).
    thresh : float
        Keep matches with q-value <= ``thresh`` (or E-value <= ``thresh`` with ``evalue``), as
        MEME Tomtom's ``-thresh``. Default is 0.5.
    evalue : bool
        Threshold on the E-value instead of the q-value, as MEME Tomtom's ``-evalue``.
        Default is False.
    reverse_complement : bool
        Also align the reverse complement of each target. Default is True.
    n_jobs : int
        Threads numba may use (-1: all). Default is 1.

    Returns
    -------
    Table
        One row per kept match, by query order and then increasing p-value, with the columns
        :data:`COLUMNS`:

        - ``Query_ID``, ``Target_ID`` (str): motif ids.
        - ``Optimal_offset`` (int): MEME's convention, the position in the target (in the
          orientation shown) at which the query's first column sits: the query column i is
          aligned with target column i + offset; negative when the query starts before the target.
          A query cut from target columns 3..12 has offset 3.
        - ``p-value`` (float): of the best alignment; over both orientations memelite reports
          1 - (1 - p_min)**2.
        - ``E-value`` (float): p-value times the number of targets.
        - ``q-value`` (float): Benjamini-Hochberg over all query-target p-values
          (``scipy.stats.false_discovery_control(..., method="bh")``).
        - ``Overlap`` (int): number of aligned columns.
        - ``Query_consensus``, ``Target_consensus`` (str): most probable letters; the target's
          reverse-complemented when ``Orientation`` is "-", as MEME writes it.
        - ``Orientation`` (str): "+", or "-" when the reverse complement of the target matched.
        - ``Target_name`` (str): the target's alternate name (e.g. the TF), not in MEME's table.

    Raises
    ------
    InputTypeError
        If ``queries`` or ``targets`` is not a list of Motif, or an option has the wrong type.
    InputError
        If a list is empty, the motifs mix alphabets, ``thresh`` < 0, or ``n_jobs`` is 0, below -1
        or above the threads numba can use.

    Notes
    -----
    memelite is not MEME's binary, so p-values differ: it scores a column pair by the negative
    Euclidean distance between the columns (MEME's default is Pearson correlation), uses the
    "complete score" (unaligned query columns scored against the median), applies no minimum
    overlap (MEME: 5 columns), and approximates medians and merges similar target columns
    (``n_target_bins=100``). Its ranking of targets is close to MEME's; see the tests, which compare
    with MEME Tomtom 5.4.1 on ExplaiNN filters against JASPAR 2020. The first call in a fresh
    environment compiles memelite with numba (about 30-60 s); later calls reuse the disk cache.
    """
    queries = check_motifs(queries, "queries")
    targets = check_motifs(targets, "targets")
    check_scalar(thresh, "thresh", (int, float), min_val=0)
    check_scalar(evalue, "evalue", bool)
    check_scalar(reverse_complement, "reverse_complement", bool)
    check_scalar(n_jobs, "n_jobs", int, min_val=-1)
    alphabets = {m.alphabet for m in queries + targets}
    if len(alphabets) > 1:
        raise InputError(f"queries and targets mix alphabets {sorted(alphabets)}; compare motifs of one alphabet.")
    import numba
    from memelite import tomtom as memelite_tomtom
    from scipy.stats import false_discovery_control

    if n_jobs == 0 or n_jobs > numba.config.NUMBA_NUM_THREADS:
        raise InputError(f"n_jobs == {n_jobs}, must be -1 (all) or 1..{numba.config.NUMBA_NUM_THREADS}.")
    p, _, offsets, overlaps, strands = memelite_tomtom(
        [m.ppm for m in queries], [m.ppm for m in targets], reverse_complement=reverse_complement, n_jobs=n_jobs
    )
    e = p * len(targets)
    q = false_discovery_control(p.ravel(), method="bh").reshape(p.shape)
    keep = (e if evalue else q) <= thresh
    forward = [t.consensus() for t in targets]
    rows = []
    for i, query in enumerate(queries):
        query_consensus = query.consensus()
        for j in np.argsort(p[i], kind="stable"):
            if not keep[i, j]:
                continue
            minus = bool(strands[i, j])
            target = targets[j]
            rows.append((
                query.id, target.id, int(offsets[i, j]), float(p[i, j]), float(e[i, j]), float(q[i, j]),
                int(overlaps[i, j]), query_consensus,
                target.reverse_complement().consensus() if minus else forward[j],
                "-" if minus else "+", target.name,
            ))
    return Table(COLUMNS, tuple(rows))
