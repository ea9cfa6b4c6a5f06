"""GIA in ``interpkit explain``: the effect of each motif the run annotated, on every output."""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_MOTIFS", "annotated_motifs", "explain_options"]

#: Motifs embedded at most (the best-annotated first).
MAX_MOTIFS = 5


def annotated_motifs(results: dict[str, Any], *, q_threshold: float = 0.05, limit: int = MAX_MOTIFS) -> list[str]:
    """JASPAR IDs of the best Tomtom matches in earlier results' ``tomtom`` tables, by q-value, distinct.

    Parameters
    ----------
    results : dict of str to Result
        Results so far (e.g. ``filter_motifs``, ``unit_importance``), by method.
    q_threshold : float
        Keep matches with q-value <= this. Default is 0.05.
    limit : int
        At most this many IDs. Default is :data:`MAX_MOTIFS`.

    Returns
    -------
    list of str
        Matrix IDs, best (lowest q-value) first.
    """
    rows = [r for result in results.values() if "tomtom" in result.tables
            for r in result.tables["tomtom"].records() if r["q-value"] <= q_threshold]
    ids: list[str] = []
    for row in sorted(rows, key=lambda r: r["q-value"]):
        if row["Target_ID"] not in ids:
            ids.append(row["Target_ID"])
    return ids[:limit]


def explain_options(model: Any, context: Any) -> dict[str, Any] | str:
    """Embed the annotated motifs (sampled from their JASPAR PPMs) in profile-null backgrounds of the run's sequences.

    Returns the options of an ``embed`` experiment with 200 backgrounds, or why GIA is skipped (no
    annotated motif, or motifs not found in the JASPAR release).
    """
    from interpkit.errors import InterpkitError
    from interpkit.jaspar import fetch_jaspar

    ids = annotated_motifs(context.results)
    if not ids:
        return "no motif was annotated (q <= 0.05) by an earlier method, so there is nothing to embed"
    try:
        motifs = fetch_jaspar(release="JASPAR2020", ids=ids)
    except InterpkitError as exc:
        return f"the annotated motifs are not JASPAR2020 IDs ({exc})"
    return {"experiment": "embed", "pattern": motifs, "n_backgrounds": 200}
