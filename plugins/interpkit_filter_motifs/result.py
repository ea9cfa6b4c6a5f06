"""The result of a filter-motifs run: filter PPMs, their annotation, and the report section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from interpkit.motifs import Motif
from interpkit.results import Result

__all__ = ["FilterMotifsResult"]


@dataclass(frozen=True)
class FilterMotifsResult(Result):
    """What :func:`interpkit_filter_motifs.filter_motifs.filter_motifs` returns (arrays documented there).

    Attributes
    ----------
    layer : str
        The layer whose channels were read.
    receptive_field : int
        F, the width of the filter PPMs in bp.
    targets : mapping of str to Motif
        The database motifs that are some filter's best match, by id (for the report's aligned logos).
    """

    layer: str = ""
    receptive_field: int = 0
    targets: Mapping[str, Motif] = field(default_factory=dict)

    def top_filters(self, k: int) -> list[int]:
        """Up to ``k`` filters with sites: the annotated ones by q-value, then the rest by information content.

        Returns
        -------
        list of int
            Filter indices, best first.
        """
        rows = self.tables["filters"].records()
        info = self.arrays["information_content"]
        with_sites = [r["filter"] for r in rows if r["n_sites"]]
        key = {r["filter"]: (r["q_value"] is None, r["q_value"] or 0.0, -float(info[r["filter"]])) for r in rows}
        return [int(c) for c in sorted(with_sites, key=lambda c: key[c])][:k]

    def match(self, c: int) -> dict | None:
        """Filter ``c``'s best Tomtom row (the ``tomtom`` table's columns) when it is annotated, else None."""
        row = self.tables["filters"].records()[c]
        if not row["match_id"]:
            return None
        for hit in self.tables["tomtom"].records():
            if hit["Query_ID"] == f"filter{c}" and hit["Target_ID"] == row["match_id"]:
                return hit
        return None

    def report_section(self, *, max_rows: int = 50) -> str:
        """HTML: parameters, warnings, logos of the top filters aligned with their Tomtom match, and the
        filters table (the Tomtom table is in the TSV file)."""
        from interpkit_filter_motifs.report import render

        return render(self, max_rows=max_rows)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "targets", dict(self.targets))
