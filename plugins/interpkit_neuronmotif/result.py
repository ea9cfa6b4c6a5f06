"""The result of a NeuronMotif run: CRM arrays and tables over the neurons analysed, MEME motifs, report."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from interpkit.motifs import Motif, consensus
from interpkit.results import Result
from interpkit.tables import Table
from interpkit_neuronmotif.dictionary import best_matches, motif_dictionary, words
from interpkit_neuronmotif.stack import NeuronStack
from interpkit_neuronmotif.syntax import Syntax, syntax_trees

__all__ = ["ANNOTATION_Q", "NeuronMotifResult", "assemble", "crm_id", "file_safe", "neuron_id"]

#: Database matches with a larger Tomtom q-value are not reported (the match columns stay empty).
ANNOTATION_Q = 0.05


def file_safe(name: str) -> str:
    """A layer name as a file name and MEME id: runs of characters other than letters, digits, ".", "-"
    and "_" become one "_" (ONNX names such as "/conv1/Conv" would otherwise be paths)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "layer"


def neuron_id(conv: str, channel: int) -> str:
    """``<conv>_n<channel>``, with the layer name made :func:`file_safe`."""
    return f"{file_safe(conv)}_n{channel}"


def crm_id(conv: str, channel: int, crm: int) -> str:
    """The MEME id of CRM number ``crm`` of a neuron: ``<conv>_n<channel>_crm<crm>``."""
    return f"{neuron_id(conv, channel)}_crm{crm}"


@dataclass(frozen=True)
class NeuronMotifResult(Result):
    """What :func:`interpkit_neuronmotif.neuronmotif.neuronmotif` returns (arrays documented there).

    Attributes
    ----------
    layer : str
        The target convolution.
    receptive_field : int
        R, bp.
    syntax : mapping of int to list of Syntax
        Per neuron, its arrangements of dictionary motifs with their trees, the most frequent first.
    """

    layer: str = ""
    receptive_field: int = 0
    syntax: Mapping[int, list[Syntax]] = field(default_factory=dict)

    def neuron_motifs(self, channel: int) -> tuple[Motif, ...]:
        """The CRMs, segments and dictionary motifs of one neuron, as :attr:`motifs` holds them."""
        prefix = f"{neuron_id(self.layer, channel)}_"
        return tuple(m for m in self.motifs if m.id.startswith(prefix))

    def write(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
        """As :meth:`Result.write`, plus per neuron ``neuronmotif_<layer>_n<k>.meme`` (its CRMs, segments and
        dictionary motifs), ``..._logos.png`` (undemixed and best CRM logos) and ``..._syntax.png`` (the
        tree of its most frequent arrangement, when it has one)."""
        from interpkit._io import atomic_write
        from interpkit.meme import write_meme
        from interpkit_neuronmotif.report import neuron_logos_png
        from interpkit_neuronmotif.syntax import tree_png

        out = Path(out_dir)
        stems = [(u, int(k), out / f"{self.method}_{neuron_id(self.layer, int(k))}")
                 for u, k in enumerate(self.arrays["neurons"])]
        planned = [stem.with_suffix(".meme") for _, k, stem in stems if self.neuron_motifs(k)]
        planned += [stem.with_name(stem.name + "_logos.png") for _, k, stem in stems]
        planned += [stem.with_name(stem.name + "_syntax.png") for _, k, stem in stems if self.syntax.get(k)]
        if not overwrite:
            for path in planned:
                if path.exists():
                    from interpkit.errors import InputError

                    raise InputError(f"{path} already exists; choose a new directory or pass --force.")
        written = super().write(out_dir, overwrite=overwrite)
        extra = []
        for u, k, stem in stems:
            if self.neuron_motifs(k):
                extra.append(write_meme(stem.with_suffix(".meme"), self.neuron_motifs(k), overwrite=True))
            figures = [(stem.with_name(stem.name + "_logos.png"), neuron_logos_png(self, u))]
            if self.syntax.get(k):
                figures.append((stem.with_name(stem.name + "_syntax.png"), tree_png(self.syntax[k][0])))
            for path, png in figures:
                with atomic_write(path, mode="wb", overwrite=True) as handle:
                    handle.write(png)
                extra.append(path)
        return written[:-1] + extra + written[-1:]

    def report_section(self, *, max_rows: int = 50) -> str:
        """HTML: per neuron the undemixed logo next to its CRM logos, and the CRM table."""
        from interpkit_neuronmotif.report import render

        return render(self, max_rows=max_rows)


def _name(match: tuple | None, fallback: str, q: float) -> str:
    return match[1] if match is not None and match[2] < q and match[1] else fallback


def assemble(stack: NeuronStack, reports: list, *, params: dict, warnings: list[str],
             timing: dict[str, Any], database: list[Motif] | None = None, match_q: float = 0.01
             ) -> NeuronMotifResult:
    """Stack per-neuron reports into one result, with each neuron's motif dictionary, syntax and matches.

    Parameters
    ----------
    stack : NeuronStack
    reports : list of NeuronReport
        From :func:`~interpkit_neuronmotif.neuronmotif.analyse_neuron`, one per neuron.
    params, warnings, timing
        Recorded in the result.
    database : list of Motif or None
        Motifs to annotate CRMs and dictionary motifs with (e.g. JASPAR); None skips it. Default is None.
    match_q : float
        q-value below which a match names a dictionary motif in the syntax tree. Default is 0.01.

    Returns
    -------
    NeuronMotifResult
        Arrays and tables as :func:`~interpkit_neuronmotif.neuronmotif.neuronmotif` documents.
    """
    conv, R = stack.target.conv, stack.receptive_field
    segs = {crm_id(conv, int(rep.channel), i) + f"_{a}_{b}": Motif(crm_id(conv, int(rep.channel), i)
                                                                     + f"_{a}_{b}", c.ppm[:, a:b], nsites=c.n)
            for rep in reports for i, c in enumerate(rep.crms) for a, b in c.segments}
    seg_match = best_matches(list(segs.values()), database or [], thresh=ANNOTATION_Q)
    dictionaries = {int(rep.channel): motif_dictionary(rep.crms, prefix=neuron_id(conv, int(rep.channel)))
                    for rep in reports}
    dict_match = best_matches([m for d, _ in dictionaries.values() for m in d], database or [], thresh=ANNOTATION_Q)
    rows, neuron_rows, dict_rows, syntax_rows, motifs = [], [], [], [], []
    ppms, owner, n, top, cons, dec, quality = [], [], [], [], [], [], []
    trees: dict[int, list[Syntax]] = {}
    for rep in reports:
        k = int(rep.channel)
        crms = rep.crms
        rank = np.empty(len(crms), dtype=np.int64)
        rank[np.argsort(-np.asarray(rep.quality), kind="stable")] = np.arange(1, len(crms) + 1)
        for i, c in enumerate(crms):
            ppms.append(c.ppm)
            owner.append(k)
            n.append(c.n)
            top.append(c.max_value)
            cons.append(c.consensus_value)
            dec.append(c.decoupling)
            quality.append(float(rep.quality[i]))
            ident = crm_id(conv, k, i)
            motifs.append(Motif(ident, c.ppm, nsites=c.n))
            mine = [segs[f"{ident}_{a}_{b}"] for a, b in c.segments]
            motifs.extend(mine)
            hits = [seg_match[m.id] for m in mine if m.id in seg_match]
            best = min(hits, key=lambda h: h[2]) if hits else ("", "", float("nan"), "")
            rows.append((k, i, c.n, c.max_value, c.consensus_value, c.decoupling, quality[-1], int(rank[i]),
                         consensus(c.ppm),
                         ";".join(f"{a}-{b}" for a, b in c.segments), best[0], best[1], best[2]))
        dictionary, instances = dictionaries[k]
        names = []
        for m in dictionary:
            match = dict_match.get(m.id)
            names.append(_name(match, m.id, match_q))
            motifs.append(Motif(m.id, m.ppm, name=names[-1] if names[-1] != m.id else "", nsites=m.nsites))
            dict_rows.append((k, m.id, m.consensus(), int(m.nsites or 0), *(match or ("", "", float("nan"), ""))))
        trees[k] = syntax_trees(words(instances, len(crms)), names)
        for syn in trees[k]:
            syntax_rows.append((k, "-".join(syn.word), len(syn.crms), ";".join(f"{lo}..{hi}" for lo, hi in syn.gaps),
                                syn.text))
        best_d = max((c.decoupling for c in crms), default=float("nan"))
        neuron_rows.append((k, int(rep.samples), str(rep.method), int(rep.generations), int(rep.m),
                            len(crms), best_d, len(dictionary), trees[k][0].text if trees[k] else ""))
    arrays = {
        "crm_ppm": np.array(ppms, dtype=np.float64).reshape(-1, 4, R),
        "crm_neuron": np.array(owner, dtype=np.int64),
        "crm_n": np.array(n, dtype=np.int64),
        "crm_max_activation": np.array(top, dtype=np.float64),
        "crm_consensus_activation": np.array(cons, dtype=np.float64),
        "crm_decoupling": np.array(dec, dtype=np.float64),
        "crm_quality": np.array(quality, dtype=np.float64),
        "undemixed_ppm": np.array([rep.undemixed for rep in reports], dtype=np.float64).reshape(-1, 4, R),
        "neurons": np.array([rep.channel for rep in reports], dtype=np.int64),
        "samples": np.array([rep.samples for rep in reports], dtype=np.int64),
        "m": np.array([rep.m for rep in reports], dtype=np.int64),
        "generations": np.array([rep.generations for rep in reports], dtype=np.int64),
    }
    match_columns = ("match_id", "match_name", "q_value")
    tables = {
        "crms": Table(("neuron", "crm", "n", "max_activation", "consensus_activation", "decoupling", "quality",
                       "rank", "consensus", "segments", *match_columns), tuple(rows)),
        "neurons": Table(("neuron", "samples", "sampling", "generations", "m", "crms", "decoupling_indicator",
                          "dictionary_motifs", "syntax"), tuple(neuron_rows)),
        "dictionary": Table(("neuron", "motif", "consensus", "segments", *match_columns, "orientation"),
                            tuple(dict_rows)),
        "syntax": Table(("neuron", "word", "crms", "gaps_bp", "tree"), tuple(syntax_rows)),
    }
    return NeuronMotifResult("neuronmotif", arrays=arrays, tables=tables, motifs=tuple(motifs), params=params,
                             warnings=tuple(warnings), provenance={"timing": timing}, layer=conv, receptive_field=R,
                             syntax=trees)
