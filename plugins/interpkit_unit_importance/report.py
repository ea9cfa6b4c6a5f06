"""Figures of a unit-importance result for the HTML report (matplotlib on private Agg canvases).

As in Novakovsky et al. (2023), Genome Biol. 24:154, Figs 2-3: the final linear layer's weights as a
heatmap of units and outputs, box plots of the importance distributions (unit output x weight over the
sequences activating the unit) of the top units for each output, and the logos of those units' PPMs with
their JASPAR annotation.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from interpkit.figures import figure_png, new_figure
from interpkit.results import Result, png_img

__all__ = ["importance_box_png", "render", "weights_png"]

#: Top units per output whose logos are drawn (the box plots show ``top``).
_LOGOS_PER_OUTPUT = 3
#: Outputs drawn as box plots; the rest are in the tables.
_MAX_OUTPUTS = 12




def weights_png(weights: np.ndarray, output_names: list[str] | tuple[str, ...]) -> bytes:
    """The final layer's weights as a heatmap: one row per output, one column per unit.

    Parameters
    ----------
    weights : ndarray of shape (T, U)
        NaN (unidentified) cells are grey.
    output_names : sequence of str
        T row labels.

    Returns
    -------
    bytes
        A PNG image; blue negative, red positive, symmetric colour scale.
    """
    from matplotlib import colormaps

    T, U = weights.shape
    figure = new_figure(min(max(4.0, 0.12 * U + 2.0), 18.0), min(max(1.6, 0.35 * T + 1.2), 12.0))
    ax = figure.add_subplot()
    limit = float(np.nanmax(np.abs(weights))) if np.isfinite(weights).any() else 1.0
    cmap = colormaps["RdBu_r"].with_extremes(bad="0.8")
    image = ax.imshow(np.ma.masked_invalid(weights), aspect="auto", cmap=cmap, vmin=-limit, vmax=limit,
                      interpolation="nearest")
    ax.set_yticks(np.arange(T), [str(o) for o in output_names], fontsize=8)
    step = max(1, int(np.ceil(U / 40)))
    ax.set_xticks(np.arange(0, U, step), [str(u) for u in range(0, U, step)], fontsize=7, rotation=90)
    ax.set_xlabel("unit")
    ax.set_title("final-layer weights", fontsize=9)
    figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    return figure_png(figure)


def importance_box_png(distributions: list[np.ndarray], labels: list[str], *, title: str = "") -> bytes:
    """Notched box plots of importance distributions (the paper's figure style), one per unit.

    Parameters
    ----------
    distributions : list of ndarray
        Per unit, its importance for one output on each sequence of its set.
    labels : list of str
        Box labels (unit and annotation).
    title : str
        Default is "".

    Returns
    -------
    bytes
        A PNG image.
    """
    figure = new_figure(max(3.0, 0.6 * len(labels) + 1.5), 3.0)
    ax = figure.add_subplot()
    ax.boxplot([d[np.isfinite(d)] for d in distributions], notch=len(labels) > 0, showfliers=False)
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("unit importance (output units)")
    ax.set_title(title, fontsize=9)
    return figure_png(figure)


def _annotation(result: Any, unit: int) -> str:
    rows = result.tables["units"]
    at = {c: rows.columns.index(c) for c in ("match_id", "match_name", "q_value")}
    row = rows.rows[unit]
    if not row[at["match_id"]]:
        return ""
    return f"{row[at['match_name']]} ({row[at['match_id']]}, q={row[at['q_value']]:.1g})"


def render(result: Any, *, max_rows: int = 50) -> str:
    """The HTML section of a :class:`~interpkit_unit_importance.result.UnitImportanceResult`.

    Parameters
    ----------
    result : UnitImportanceResult
    max_rows : int
        Rows shown per table. Default is 50.

    Returns
    -------
    str
        Parameters, warnings, the weights heatmap, per output (at most 12) the box plots of its ``top``
        units, the ``units`` and ``median_importance`` tables (the long ``importance`` and ``tomtom``
        tables are in the TSV files), and logos of the 3 top units of each output.
    """
    from interpkit.logos import logo_png

    esc = html.escape
    a = result.arrays
    outputs = list(result.output_names)
    top = int(result.params.get("top", 10))
    tables = {k: result.tables[k] for k in ("units", "median_importance") if k in result.tables}
    base = Result(result.method, tables=tables, params=result.params, warnings=result.warnings)
    head, _, rest = base.report_section(max_rows=max_rows).removesuffix("</section>").partition("<h3>")
    parts = [head]
    parts.append(f"<p>ExplaiNN unit importance (Novakovsky et al. 2023): {a['ppms'].shape[0]} units read at "
                 f"<b>{esc(result.activation_layer)}</b> (activation maps, {result.receptive_field}-bp windows) and "
                 f"<b>{esc(result.unit_layer)}</b> (unit outputs). A unit's importance for an output is its output "
                 "times its final-layer weight, on each sequence with an activation above half the unit's "
                 "maximum; the weights come from an exact least-squares fit of the predictions.</p>")
    parts.append(png_img(weights_png(a["final_weights"], outputs), "final-layer weights"))
    logo_units: list[int] = []
    for c, name in enumerate(outputs[:_MAX_OUTPUTS]):
        best = result.top_units(c, top)
        if not best:
            continue
        labels = [f"unit{u} {(_annotation(result, u).split(' (')[0])}".strip() for u in best]
        parts.append(png_img(importance_box_png([result.unit_distribution(u, c) for u in best], labels,
                                                title=f"{name}: top {len(best)} units by median importance"),
                             f"importance box plots for {name}"))
        logo_units += [u for u in best[:_LOGOS_PER_OUTPUT] if u not in logo_units]
    if len(outputs) > _MAX_OUTPUTS:
        parts.append(f"<p>Box plots of the first {_MAX_OUTPUTS} of {len(outputs)} outputs; all values are in "
                     "unit_importance_importance.tsv.</p>")
    parts.append("<h3>" + rest if rest else "")
    parts.append("<h3>Top units</h3>")
    for u in logo_units:
        weights = ", ".join(f"{o} {w:.3g}" for o, w in zip(outputs, a["final_weights"][:, u]))
        title = f"unit{u}  {_annotation(result, u) or 'no match'}  n={int(a['n_sites'][u])}  weight {weights}"
        parts.append(png_img(logo_png(a["ppms"][u], title=title, dpi=60), title))
    parts.append("<p>All units, the full Tomtom table and every importance value are in the TSV and MEME "
                 "files.</p></section>")
    return "".join(parts)
