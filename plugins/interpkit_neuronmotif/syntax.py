"""The motif syntax of a neuron as a tree: dictionary motifs in order, joined by gap ranges.

Wei et al. (2023), PNAS 120:e2216698120: CRMs that hold the same row of motifs (a "word", e.g.
CTCF-CTCF) are one arrangement; the gaps between consecutive motifs over those CRMs give a gap range per
slot, and adjacent nodes are joined bottom-up, the slot with the narrowest gap range first (ties: the
smaller gap), so the tree's lower joins are the most rigid parts of the syntax. As in the reference code,
when more than 80 % of a slot's gaps lie within 4 bp of their mean, the others are left out of its range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from interpkit_neuronmotif.dictionary import Instance

__all__ = ["Syntax", "syntax_trees", "tree_png"]

#: A slot's gaps within this many bp of their mean count as its rigid core ...
_CORE_BP = 4
#: ... when more than this fraction of them lie there.
_CORE_SHARE = 0.8


@dataclass(frozen=True)
class Syntax:
    """One arrangement of motifs and its tree.

    Attributes
    ----------
    word : tuple of str
        Motif names, left to right.
    crms : tuple of int
        The CRMs holding exactly this row of motifs.
    starts : ndarray of shape (len(word),), float64
        Mean start of each motif in the window, bp.
    gaps : tuple of (int, int)
        Gap range (bp between one motif's end and the next one's start) per slot; negative: overlap.
    tree : nested tuple
        A leaf is a motif name; a node is (left, "gap lo-hi bp", right).
    """

    word: tuple[str, ...]
    crms: tuple[int, ...]
    starts: np.ndarray
    gaps: tuple[tuple[int, int], ...]
    tree: Any

    @property
    def text(self) -> str:
        """The tree in brackets, e.g. ``(CTCF -[22-30 bp]- CTCF)``."""
        def show(node: Any) -> str:
            if isinstance(node, str):
                return node
            left, label, right = node
            return f"({show(left)} -[{label}]- {show(right)})"
        return show(self.tree)


def _gap_range(gaps: np.ndarray) -> tuple[int, int]:
    core = np.abs(gaps - gaps.mean()) <= _CORE_BP
    if core.mean() > _CORE_SHARE:
        gaps = gaps[core]
    return int(gaps.min()), int(gaps.max())


def _label(lo: int, hi: int) -> str:
    return f"{lo} bp" if lo == hi else f"{lo}-{hi} bp"


def syntax_trees(rows: Sequence[Sequence[Instance]], names: Sequence[str]) -> list[Syntax]:
    """The syntax of each distinct row of motifs among a neuron's CRMs.

    Parameters
    ----------
    rows : sequence of list of Instance
        Per CRM, its motif instances left to right (:func:`~interpkit_neuronmotif.dictionary.words`).
    names : sequence of str
        Display name of each dictionary motif (e.g. its JASPAR match).

    Returns
    -------
    list of Syntax
        One per distinct word held by at least one CRM, the most frequent first (ties: longer words).
    """
    by_word: dict[tuple[int, ...], list[int]] = {}
    for crm, row in enumerate(rows):
        if row:
            by_word.setdefault(tuple(x.motif for x in row), []).append(crm)
    out = []
    for word, crms in sorted(by_word.items(), key=lambda kv: (-len(kv[1]), -len(kv[0]), kv[1][0])):
        starts = np.array([[x.start for x in rows[c]] for c in crms], dtype=np.float64)
        ends = np.array([[x.end for x in rows[c]] for c in crms], dtype=np.float64)
        gaps = tuple(_gap_range(starts[:, s + 1] - ends[:, s]) for s in range(len(word) - 1))
        nodes: list[Any] = [names[m] for m in word]
        slots = list(gaps)
        while slots:
            s = min(range(len(slots)), key=lambda i: (slots[i][1] - slots[i][0], sum(slots[i]), i))
            nodes[s:s + 2] = [(nodes[s], _label(*slots[s]), nodes[s + 1])]
            del slots[s]
        out.append(Syntax(tuple(names[m] for m in word), tuple(crms), starts.mean(axis=0), gaps, nodes[0]))
    return out


def tree_png(syntax: Syntax, *, dpi: int = 70) -> bytes:
    """A drawing of one syntax tree: motifs as boxes at their mean starts, joins labelled with gap ranges."""
    from interpkit.figures import figure_png, new_figure

    figure = new_figure(6, 1.2 + 0.5 * max(1, len(syntax.word) - 1))
    ax = figure.add_subplot()
    leaves = iter(range(len(syntax.word)))

    def draw(node: Any) -> tuple[float, float]:
        """Returns (x, height) of the node's top."""
        if isinstance(node, str):
            i = next(leaves)
            x = float(syntax.starts[i])
            ax.text(x, 0, node, ha="center", va="center", bbox={"boxstyle": "round", "fc": "#cde"})
            return x, 0.0
        (xl, hl), (xr, hr) = draw(node[0]), draw(node[2])
        top = max(hl, hr) + 1
        ax.plot([xl, xl, xr, xr], [hl + 0.3, top, top, hr + 0.3], color="k", lw=1)
        ax.text((xl + xr) / 2, top + 0.1, node[1], ha="center", va="bottom", fontsize=8)
        return (xl + xr) / 2, top

    _, height = draw(syntax.tree)
    ax.set_ylim(-0.6, height + 0.8)
    low, high = float(syntax.starts.min()), float(syntax.starts.max())
    ax.set_xlim(low - 10, high + 10)
    ax.set_yticks([])
    ax.set_xlabel("mean start in the receptive field (bp)")
    ax.set_title(f"{' - '.join(syntax.word)} ({len(syntax.crms)} CRMs)", fontsize=9)
    return figure_png(figure, dpi=dpi)
