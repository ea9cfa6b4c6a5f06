"""Figures of a GIA result for the HTML report: box plots, distance curves and k-mer logos (matplotlib, Agg).

The plots follow Koo et al. (2021), PLoS Comput. Biol. 17:e1008925, Figs 2-4: local importances as box
plots with the global importance as a green triangle; distance and copy-number curves; the top k-mer drawn
with heights from its global ISM and the k-mer alignment motif as an information logo.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from interpkit.figures import figure_png, new_figure
from interpkit.results import Result, png_img

__all__ = ["box_plot_png", "curve_png", "render"]

#: Outputs drawn per null; the rest are in the tables and arrays.
_MAX_TARGETS = 8
#: Rows drawn as boxes; longer experiments are drawn as curves or as their top rows.
_MAX_BOXES = 24


def _figure(width: float, height: float = 2.6) -> Any:
    return new_figure(width, height)


def box_plot_png(local: np.ndarray, mean: np.ndarray, labels: list[str], *, title: str = "",
                 ylabel: str = "local importance") -> bytes:
    """Box plots of local importances with the global importance as a triangle (the paper's figure style).

    Parameters
    ----------
    local : ndarray of shape (R, N)
        Local importances per row; NaN (left-out backgrounds) are ignored.
    mean : ndarray of shape (R,)
        Global importances, drawn as green triangles.
    labels : list of str
        R row labels.
    title, ylabel : str
        Default is "" and "local importance".

    Returns
    -------
    bytes
        A PNG image.
    """
    figure = _figure(max(3.0, 0.55 * len(labels) + 1.5))
    ax = figure.add_subplot()
    data = [row[~np.isnan(row)] for row in local]
    ax.boxplot(data, showfliers=False)
    ax.plot(np.arange(1, len(labels) + 1), mean, "^", color="tab:green", markersize=7, label="global importance")
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=45 if len(labels) > 4 else 0, ha="right"
                  if len(labels) > 4 else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return figure_png(figure)


def curve_png(x: np.ndarray, lines: dict[str, tuple[np.ndarray, np.ndarray | None]], *, xlabel: str,
              title: str = "", ylabel: str = "global importance") -> bytes:
    """Curves of global importance (or interaction) against distance, copies or position, with +-1 SE bands.

    Parameters
    ----------
    x : ndarray of shape (S,)
        Gaps, copy numbers or positions.
    lines : dict of str to (ndarray of shape (S,), ndarray of shape (S,) or None)
        Label -> (values, standard errors or None).
    xlabel : str
    title, ylabel : str
        Default is "" and "global importance".

    Returns
    -------
    bytes
        A PNG image.
    """
    figure = _figure(4.5)
    ax = figure.add_subplot()
    for label, (y, se) in lines.items():
        ax.plot(x, y, marker="o", markersize=3, label=label)
        if se is not None:
            ax.fill_between(x, y - se, y + se, alpha=0.25)
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if len(lines) > 1:
        ax.legend(fontsize=7)
    return figure_png(figure)


def _kmer_logo(result: Any, m: int, k: int, word: str) -> bytes:
    """The top k-mer with letter heights = L2 norm of its global ISM (the paper's "top k-mer motif")."""
    from interpkit.logos import logo_png

    l2 = result.arrays["ism_l2"][m, :, k]
    matrix = np.zeros((4, len(word)))
    for j, c in enumerate(word.upper().replace("U", "T")):
        matrix["ACGT".index(c), j] = l2[j]
    return logo_png(matrix, kind="weight", title=f"top k-mer {word}, global ISM L2", dpi=70)


def _figures(result: Any, m: int, k: int, label: str) -> list[str]:
    a, exp = result.arrays, result.experiment
    rows = list(result.rows)
    se = a["standard_error"][m, :, k]
    gi = a["global_importance"][m, :, k]
    title = f"{label} - null {result.nulls[m]}"
    out = []
    if exp == "kmer-scan":
        top = a["top_index"][m, :, k]
        words = [rows[i] for i in top]
        out.append(png_img(box_plot_png(a["top_local"][m, :, :, k], gi[top], words, title=f"top k-mers, {title}"),
                        f"top k-mers {label}"))
        out.append(png_img(_kmer_logo(result, m, k, words[0]), f"top k-mer logo {label}"))
        from interpkit_gia.kmers import motif_id

        motif = next((mo for mo in result.motifs if mo.id == motif_id(result.nulls[m], label)), None)
        if motif is not None:
            from interpkit.logos import logo_png

            out.append(png_img(logo_png(motif, title=f"k-mer alignment motif {label}", dpi=70), f"alignment {label}"))
        return out
    if exp == "spacing":
        x = a["spacings"][m]
        lines = {"A + B": (a["together"][m, :, k], None), "additive expectation": (a["expected"][m, :, k], None),
                 "interaction": (a["interaction"][m, :, k], a["interaction_se"][m, :, k])}
        out.append(png_img(curve_png(x, lines, xlabel="gap between patterns (bp)", title=title), f"spacing {label}"))
    elif exp == "multiple":
        x = a["copies"][m]
        lines = {"observed": (a["observed"][m, :, k], se[:len(x)]), "additive expectation": (a["expected"][m, :, k],
                                                                                              None)}
        out.append(png_img(curve_png(x, lines, xlabel="copies", title=f"{title}, R2 = {a['r2'][m, k]:.3f}"),
                        f"copies {label}"))
    elif exp in ("position", "occlusion"):
        x = a["positions"][m]
        out.append(png_img(curve_png(x, {"global importance": (gi, se)}, xlabel="start (bp, 0-based)", title=title),
                        f"{exp} {label}"))
    if "local_importance" in a and len(rows) <= _MAX_BOXES:
        out.append(png_img(box_plot_png(a["local_importance"][m, :, :, k], gi, rows, title=title), f"boxes {label}"))
    if exp == "global-ism":
        out.append(png_img(_kmer_logo(result, m, k, rows[0]), f"global ISM {label}"))
    return out


def render(result: Any, *, max_rows: int = 50) -> str:
    """The HTML section of a :class:`~interpkit_gia.result.GIAResult`.

    Parameters
    ----------
    result : GIAResult
    max_rows : int
        Rows shown per table (all are in the TSV files). Default is 50.

    Returns
    -------
    str
        An HTML fragment: parameters, warnings, figures per null and output (at most 8 outputs), tables.
    """
    esc = html.escape
    names = list(result.provenance.get("output_names") or [])
    skip = {"rows"}
    params = {k: v for k, v in result.params.items() if k not in skip}
    tables = dict(result.tables)
    if result.experiment == "kmer-scan":
        tables.pop("effects", None)  # 4^k rows: the top k-mers table says what matters
    base = Result(result.method, tables=tables, params=params, warnings=result.warnings)
    parts = [base.report_section(max_rows=max_rows).removesuffix("</section>")]
    parts.append(f"<p>GIA experiment <b>{esc(result.experiment)}</b>: global importance = mean over backgrounds "
                 "of f(background with pattern) - f(background) (Koo et al. 2021, Eq. 2); green triangles mark it "
                 "on box plots of the local importances, bands are +-1 standard error.</p>")
    for m in range(len(result.nulls)):
        for k, target in enumerate(result.targets[:_MAX_TARGETS]):
            label = names[target] if target < len(names) else f"output {target}"
            parts.append(f"<h3>{esc(label)} - null {esc(result.nulls[m])}</h3>")
            parts.extend(_figures(result, m, k, label))
    if len(result.targets) > _MAX_TARGETS:
        parts.append(f"<p>Figures for the first {_MAX_TARGETS} of {len(result.targets)} outputs; all are in the "
                     "tables.</p>")
    parts.append("</section>")
    return "".join(parts)
