"""A neuron's motif dictionary: its CRMs' segments grouped into distinct motifs, their instances in each CRM,
and their best JASPAR match.

Wei et al. (2023), PNAS 120:e2216698120: segments of the CRMs are compared with Tomtom; similar segments
are one dictionary motif (represented by its most informative member); each CRM is then read as a row of
motif instances, the input of the syntax tree. Here segments are linked when Tomtom (memelite, one
orientation, as the reference's ``--norc``: a motif's orientation is part of the syntax) gives q < 0.01,
groups are the connected components, and a group needs members in two CRMs (or the neuron has one CRM)
to enter the dictionary. Dictionary motifs are annotated against a database on both strands.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from interpkit.motifs import Motif, information_content
from interpkit_neuronmotif.crm import CRM

__all__ = ["Instance", "best_matches", "motif_dictionary", "words"]

#: q-value below which two segments are the same motif.
LINK_Q = 0.01


@dataclass(frozen=True)
class Instance:
    """One occurrence of a dictionary motif in a CRM.

    Attributes
    ----------
    crm : int
        CRM number within the neuron.
    motif : int
        Dictionary motif number.
    start, end : int
        Where the whole dictionary motif sits in the CRM's window, bp, half open (it may reach past the
        window when only part of it was informative).
    """

    crm: int
    motif: int
    start: int
    end: int


def _components(n: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def motif_dictionary(crms: Sequence[CRM], *, prefix: str, link_q: float = LINK_Q
                     ) -> tuple[list[Motif], list[Instance]]:
    """Group a neuron's CRM segments into dictionary motifs and locate their instances.

    Parameters
    ----------
    crms : sequence of CRM
        One neuron's CRMs (with segments), best first or in any order.
    prefix : str
        Id prefix of the dictionary motifs (``<prefix>_m<i>``), e.g. the neuron's id.
    link_q : float
        Tomtom q-value that links two segments (the segments are their own targets, so with fewer than
        about 25 the null distribution is thin and links less certain). Default is 0.01.

    Returns
    -------
    motifs : list of Motif
        The dictionary: per group its member with the most information (bits summed over columns),
        ordered by the number of CRMs holding it, then by that information.
    instances : list of Instance
        Every segment assigned to its group's motif, placed by Tomtom's alignment to the representative;
        segments of one CRM whose placements of the same motif overlap (a site split into pieces by the
        segmentation) count once, placed by the longest.
    """
    from interpkit.tomtom import tomtom

    segs = [(i, a, b) for i, c in enumerate(crms) for a, b in c.segments]
    if not segs:
        return [], []
    motifs = [Motif(f"s{j}", crms[i].ppm[:, a:b]) for j, (i, a, b) in enumerate(segs)]
    links = None
    if len(motifs) > 1:
        with warnings.catch_warnings():  # few segments make a weak null; the links are what matter
            warnings.simplefilter("ignore", UserWarning)
            links = tomtom(motifs, motifs, thresh=link_q, reverse_complement=False)
    pairs = [] if links is None else [(int(q[1:]), int(t[1:])) for q, t in
                                      zip(links.column("Query_ID"), links.column("Target_ID"))]
    groups = [g for g in _components(len(segs), pairs)
              if len({segs[j][0] for j in g}) >= min(2, len(crms))]
    bits = [float(information_content(m.ppm).sum()) for m in motifs]
    reps = [max(g, key=lambda j: bits[j]) for g in groups]
    order = sorted(range(len(groups)), key=lambda k: (-len({segs[j][0] for j in groups[k]}), -bits[reps[k]]))
    dictionary = [Motif(f"{prefix}_m{n}", motifs[reps[k]].ppm, nsites=len(groups[k])) for n, k in enumerate(order)]
    instances: list[Instance] = []
    for n, k in enumerate(order):
        rep = motifs[reps[k]]
        with warnings.catch_warnings():  # one target: its p-values mean little, but only offsets are used
            warnings.simplefilter("ignore", UserWarning)
            aligned = tomtom([motifs[j] for j in groups[k]], [rep], thresh=1.0, reverse_complement=False)
        offset = dict(zip(aligned.column("Query_ID"), aligned.column("Optimal_offset")))
        placed: dict[int, list[int]] = {}
        for j in sorted(groups[k], key=lambda j: segs[j][1] - segs[j][2]):  # longest segments place first
            crm, a, _ = segs[j]
            start = a - int(offset.get(f"s{j}", 0))  # the representative's first column in the CRM window
            if any(abs(start - s) < rep.width for s in placed.get(crm, [])):
                continue  # overlaps a site of the same motif already placed: a piece of that site
            placed.setdefault(crm, []).append(start)
            instances.append(Instance(crm, n, start, start + rep.width))
    instances.sort(key=lambda x: (x.crm, x.start, x.motif))
    return dictionary, instances


def best_matches(motifs: Sequence[Motif], database: Sequence[Motif], *, thresh: float = 0.5
                 ) -> dict[str, tuple[str, str, float, str]]:
    """Best database match of each motif (Tomtom, both strands), by motif id.

    Returns
    -------
    dict
        motif id -> (match id, match name, q-value, orientation "+"/"-"); motifs whose best match has
        q > ``thresh`` are absent.
    """
    from interpkit.tomtom import tomtom

    if not motifs or not database:
        return {}
    hits = tomtom(list(motifs), list(database), thresh=thresh)
    q_at, name_at, strand_at = (hits.columns.index(c) for c in ("q-value", "Target_name", "Orientation"))
    best: dict[str, tuple[str, str, float, str]] = {}
    for row in hits.rows:  # rows come by query, best p-value first
        if row[0] not in best or row[q_at] < best[row[0]][2]:
            best[row[0]] = (row[1], row[name_at], float(row[q_at]), row[strand_at])
    return best


def words(instances: Sequence[Instance], n_crms: int) -> list[list[Instance]]:
    """The instances of each of ``n_crms`` CRMs, left to right (one list per CRM, possibly empty)."""
    out: list[list[Instance]] = [[] for _ in range(n_crms)]
    for x in instances:
        out[x.crm].append(x)
    return out
