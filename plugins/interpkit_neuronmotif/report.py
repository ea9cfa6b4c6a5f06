"""Report section of a NeuronMotif result: per neuron, the undemixed logo beside its CRM logos."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from interpkit.results import Result, png_img

__all__ = ["neuron_logos_png", "render"]

#: Neurons drawn, and CRMs drawn per neuron (best quality first); the rest are in the tables and MEME files.
_MAX_NEURONS = 16
_MAX_CRMS = 8
#: Syntax trees drawn per neuron (its most frequent arrangements).
_MAX_TREES = 2


def _best_crms(result: Any, channel: int) -> np.ndarray:
    """Rows of the neuron's CRMs in the CRM arrays, best quality first (at most _MAX_CRMS)."""
    a = result.arrays
    mine = np.flatnonzero(a["crm_neuron"] == channel)
    return mine[np.argsort(-a["crm_quality"][mine], kind="stable")][:_MAX_CRMS]


def _crm_title(result: Any, i: int) -> str:
    a = result.arrays
    first = int(np.flatnonzero(a["crm_neuron"] == a["crm_neuron"][i])[0])
    return (f"CRM {i - first}: n={a['crm_n'][i]}, max {a['crm_max_activation'][i]:.2f}, "
            f"decoupling {a['crm_decoupling'][i]:.2f}")


def neuron_logos_png(result: Any, u: int, *, dpi: int = 70) -> bytes:
    """One neuron's logos as PNG bytes: its undemixed samples, then its best CRMs (at most 8), one per row.

    Parameters
    ----------
    result : NeuronMotifResult
    u : int
        Position of the neuron in ``result.arrays["neurons"]``.
    dpi : int
        Default is 70.
    """
    from interpkit.figures import figure_png, new_figure
    from interpkit.logos import plot_logo

    a = result.arrays
    k = int(a["neurons"][u])
    rows = [(a["undemixed_ppm"][u], f"neuron {k}, undemixed ({a['samples'][u]} samples)")]
    rows += [(a["crm_ppm"][i], _crm_title(result, i)) for i in _best_crms(result, k)]
    figure = new_figure(min(max(3.0, 0.25 * result.receptive_field + 1), 30.0), 1.8 * len(rows))
    for r, (ppm, title) in enumerate(rows):
        plot_logo(ppm, ax=figure.add_subplot(len(rows), 1, r + 1), title=title)
    figure.tight_layout()
    return figure_png(figure, dpi=dpi, tight=False)


def render(result: Any, *, max_rows: int = 50) -> str:
    """The HTML section of a :class:`~interpkit_neuronmotif.result.NeuronMotifResult`.

    Parameters
    ----------
    result : NeuronMotifResult
    max_rows : int
        Rows shown per table. Default is 50.

    Returns
    -------
    str
        Parameters, warnings, tables, then per neuron (at most 16) the information logo of all its samples
        before demixing (a blend of the arrangements), of its best CRMs (at most 8), and the trees of its
        two most frequent motif arrangements.
    """
    from interpkit.logos import logo_png
    from interpkit_neuronmotif.syntax import tree_png

    esc = html.escape
    base = Result(result.method, tables=result.tables, params=result.params, warnings=result.warnings)
    parts = [base.report_section(max_rows=max_rows).removesuffix("</section>")]
    parts.append(f"<p>NeuronMotif (Wei et al. 2023) on layer <b>{esc(result.layer)}</b>, receptive field "
                 f"{result.receptive_field} bp: each CRM is one arrangement of motifs that activates the neuron, "
                 "separated from the others by demixing at the max-pools below it; the undemixed logo blends "
                 "them.</p>")
    a = result.arrays
    for u, k in enumerate(a["neurons"][:_MAX_NEURONS]):
        mine = np.flatnonzero(a["crm_neuron"] == k)
        parts.append(f"<h3>neuron {int(k)}: {int(a['samples'][u])} samples, {len(mine)} CRMs</h3>")
        if not len(mine):
            parts.append("<p>No window activates this neuron (dead).</p>")
            continue
        parts.append(png_img(logo_png(a["undemixed_ppm"][u], title=f"neuron {k}, undemixed", dpi=60),
                             f"neuron {k} undemixed"))
        for i in _best_crms(result, int(k)):
            title = _crm_title(result, i)
            parts.append(png_img(logo_png(a["crm_ppm"][i], title=title, dpi=60), title))
        for syn in result.syntax.get(int(k), [])[:_MAX_TREES]:
            parts.append(png_img(tree_png(syn), f"syntax {syn.text}"))
    if len(a["neurons"]) > _MAX_NEURONS:
        parts.append(f"<p>Logos of the first {_MAX_NEURONS} of {len(a['neurons'])} neurons; all CRMs are in the "
                     "MEME files.</p>")
    parts.append("</section>")
    return "".join(parts)
