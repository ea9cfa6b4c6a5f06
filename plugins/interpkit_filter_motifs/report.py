"""Figures of a filter-motifs result for the HTML report: each top filter's logo over its Tomtom match's."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from interpkit.results import Result, png_img

__all__ = ["aligned_pair_png", "render"]


def _aligned(query: np.ndarray, target: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Both PPMs padded with uniform columns (0 bits) into one frame where query column i sits over target
    column i + ``offset`` (MEME Tomtom's ``Optimal_offset``)."""
    q_start, t_start = max(0, offset), max(0, -offset)
    width = max(q_start + query.shape[1], t_start + target.shape[1])
    out = []
    for ppm, start in ((query, q_start), (target, t_start)):
        frame = np.full((4, width), 0.25)
        frame[:, start:start + ppm.shape[1]] = ppm
        out.append(frame)
    return out[0], out[1]


def aligned_pair_png(query: np.ndarray, target: np.ndarray | None, *, offset: int = 0, orientation: str = "+",
                     query_title: str = "", target_title: str = "") -> bytes:
    """A filter's information logo, over its match's aligned as Tomtom aligned them.

    Parameters
    ----------
    query : ndarray of shape (4, w)
        The filter's PPM.
    target : ndarray of shape (4, v) or None
        The match's PPM as stored (None: the filter alone).
    offset : int
        Tomtom's ``Optimal_offset``: query column i is aligned with target column i + offset (in the
        target's shown orientation). Default is 0.
    orientation : {"+", "-"}
        "-": the target's reverse complement matched, and is drawn. Default is "+".
    query_title, target_title : str
        Default is "".

    Returns
    -------
    bytes
        A PNG image (information content in bits).
    """
    from interpkit.figures import figure_png, new_figure
    from interpkit.logos import plot_logo

    if target is None:
        frames = [(query, query_title)]
    else:
        shown = target[::-1, ::-1] if orientation == "-" else target
        q, t = _aligned(query, shown, int(offset))
        frames = [(q, query_title), (t, target_title)]
    width = frames[0][0].shape[1]
    figure = new_figure(min(max(2.0, 0.35 * width + 1.0), 30.0), 1.9 * len(frames))
    axes = figure.subplots(len(frames), 1, squeeze=False)[:, 0]
    for ax, (ppm, title) in zip(axes, frames):
        plot_logo(ppm, ax=ax, title=title)
        ax.set_xlim(-0.5, width - 0.5)
        ax.title.set_fontsize(8)
    figure.tight_layout()
    return figure_png(figure, dpi=60)


def render(result: Any, *, max_rows: int = 50) -> str:
    """The HTML section of a :class:`~interpkit_filter_motifs.result.FilterMotifsResult`.

    Parameters
    ----------
    result : FilterMotifsResult
    max_rows : int
        Rows shown of the filters table. Default is 50.

    Returns
    -------
    str
        Parameters, warnings, a summary line, the logos of the ``top`` filters (annotated first, each over
        its aligned match) and the filters table.
    """
    esc = html.escape
    a = result.arrays
    rows = result.tables["filters"].records()
    base = Result(result.method, tables={"filters": result.tables["filters"]}, params=result.params,
                  warnings=result.warnings)
    head, _, rest = base.report_section(max_rows=max_rows).removesuffix("</section>").partition("<h3>")
    C = len(rows)
    annotated = sum(bool(r["match_id"]) for r in rows)
    with_sites = int((a["n_sites"] > 0).sum())
    intro = (f"<p>Filter motifs (Kelley et al. 2016; Koo &amp; Eddy 2019): {C} filters of "
             f"<b>{esc(result.layer)}</b>, each PPM built from the {result.receptive_field}-bp windows where "
             f"the filter's activation exceeds {result.params.get('threshold', 0.5):g} x its maximum. "
             f"{with_sites} filters have sites; {annotated} match a motif of "
             f"{esc(str(result.params.get('motif_db', '')))} with q &lt; "
             f"{result.params.get('q_threshold', 0.05):g} (Tomtom).</p>")
    parts = [head, intro]
    top = result.top_filters(int(result.params.get("top", 10)))
    if top:
        parts.append("<h3>Top filters</h3>")
    for c in top:
        row = rows[c]
        hit = result.match(c)
        title = f"filter{c}  n={row['n_sites']}  {row['information_content']:.1f} bits"
        if hit is not None and hit["Target_ID"] in result.targets:
            target = result.targets[hit["Target_ID"]]
            label = (f"{hit['Target_ID']} {hit['Target_name']}  q={hit['q-value']:.2g}"
                     f"{'  (reverse complement)' if hit['Orientation'] == '-' else ''}")
            png = aligned_pair_png(a["ppms"][c], target.ppm, offset=int(hit["Optimal_offset"]),
                                   orientation=hit["Orientation"], query_title=title, target_title=label)
            alt = f"filter{c} and {hit['Target_ID']} {hit['Target_name']}"
        else:
            png = aligned_pair_png(a["ppms"][c], None, query_title=f"{title}  no match")
            alt = f"filter{c}"
        parts.append(png_img(png, alt))
    parts.append("<h3>" + rest if rest else "")
    parts.append("<p>Every filter's PPM, its counts and the full Tomtom table are in the NPZ, MEME and TSV "
                 "files.</p></section>")
    return "".join(parts)
