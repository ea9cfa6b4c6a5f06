"""The result of a GIA run: arrays with a leading null-model axis, tables, motifs, and its report section."""

from __future__ import annotations

from dataclasses import dataclass

from interpkit.results import Result

__all__ = ["GIAResult"]


@dataclass(frozen=True)
class GIAResult(Result):
    """What :func:`interpkit_gia.gia.gia` returns (arrays documented there).

    Attributes
    ----------
    experiment : str
        The experiment that ran (e.g. "kmer-scan", "spacing").
    targets : tuple of int
        The K output indices, in the order of the last axis of every array.
    nulls : tuple of str
        The M null models, in the order of the first axis (e.g. "profile", "dinuc+stem").
    rows : tuple of str
        The R row labels (interventions), in the order of the second axis.

    Notes
    -----
    :meth:`report_section` draws what the paper shows: box plots of local importance with the global
    importance as a triangle, distance curves (spacing, copies, position, occlusion) with +-1 standard
    error bands, and k-mer logos (alignment motif and the top k-mer scaled by its global ISM).
    """

    experiment: str = ""
    targets: tuple[int, ...] = ()
    nulls: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()

    def report_section(self, *, max_rows: int = 50) -> str:
        """HTML: parameters, warnings, the experiment's figures and its main tables (first ``max_rows`` rows)."""
        from interpkit_gia.report import render

        return render(self, max_rows=max_rows)
