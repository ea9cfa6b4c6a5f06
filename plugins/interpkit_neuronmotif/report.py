"""Report section of a NeuronMotif result: per neuron, the undemixed logo beside its CRM logos."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from interpkit.results import Result, png_img

__all__ = ["render"]

#: Neurons drawn, and CRMs drawn per neuron (best quality first); the rest are in the tables and MEME files.
_MAX_NEURONS = 16
_MAX_CRMS = 8
#: Syntax trees drawn per neuron (its most frequent arrangements).
_MAX_TREES = 2


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
        best = mine[np.argsort(-a["crm_quality"][mine], kind="stable")][:_MAX_CRMS]
        for i in best:
            title = (f"CRM {i - mine[0]}: n={a['crm_n'][i]}, max {a['crm_max_activation'][i]:.2f}, "
                     f"decoupling {a['crm_decoupling'][i]:.2f}")
            parts.append(png_img(logo_png(a["crm_ppm"][i], title=title, dpi=60), title))
        for syn in result.syntax.get(int(k), [])[:_MAX_TREES]:
            parts.append(png_img(tree_png(syn), f"syntax {syn.text}"))
    if len(a["neurons"]) > _MAX_NEURONS:
        parts.append(f"<p>Logos of the first {_MAX_NEURONS} of {len(a['neurons'])} neurons; all CRMs are in the "
                     "MEME files.</p>")
    parts.append("</section>")
    return "".join(parts)
