"""The result of a NeuronMotif run: CRM arrays and tables over the neurons analysed, MEME motifs, report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interpkit.motifs import Motif, consensus
from interpkit.results import Result
from interpkit.tables import Table
from interpkit_neuronmotif.stack import NeuronStack

__all__ = ["NeuronMotifResult", "assemble", "crm_id", "neuron_id"]


def neuron_id(conv: str, channel: int) -> str:
    """``<conv>_n<channel>``, whitespace replaced by "_" (MEME ids hold none)."""
    return "_".join(f"{conv}_n{channel}".split())


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
    """

    layer: str = ""
    receptive_field: int = 0

    def neuron_motifs(self, channel: int) -> tuple[Motif, ...]:
        """The CRMs and segments of one neuron, as :attr:`motifs` holds them."""
        prefix = f"{neuron_id(self.layer, channel)}_crm"
        return tuple(m for m in self.motifs if m.id.startswith(prefix))

    def write(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
        """As :meth:`Result.write`, plus one MEME file of CRMs and segments per neuron,
        ``neuronmotif_<layer>_n<k>.meme``."""
        from interpkit.meme import write_meme

        out = Path(out_dir)
        per_neuron = [(out / f"{self.method}_{neuron_id(self.layer, int(k))}.meme", int(k))
                      for k in self.arrays["neurons"] if self.neuron_motifs(int(k))]
        if not overwrite:
            for path, _ in per_neuron:
                if path.exists():
                    from interpkit.errors import InputError

                    raise InputError(f"{path} already exists; choose a new directory or pass --force.")
        written = super().write(out_dir, overwrite=overwrite)
        extra = []
        for path, k in per_neuron:
            write_meme(path, self.neuron_motifs(k), overwrite=True)
            extra.append(path)
        return written[:-1] + extra + written[-1:]

    def report_section(self, *, max_rows: int = 50) -> str:
        """HTML: per neuron the undemixed logo next to its CRM logos, and the CRM table."""
        from interpkit_neuronmotif.report import render

        return render(self, max_rows=max_rows)


def assemble(stack: NeuronStack, reports: list[dict], *, params: dict, warnings: list[str],
             timing: dict[str, Any]) -> NeuronMotifResult:
    """Stack per-neuron reports into one result (see ``neuronmotif`` for the arrays)."""
    conv, R = stack.target.conv, stack.receptive_field
    rows, neuron_rows, motifs = [], [], []
    ppms, owner, n, top, cons, dec, quality = [], [], [], [], [], [], []
    for rep in reports:
        k = int(rep["channel"])
        crms = rep["crms"]
        for i, c in enumerate(crms):
            ppms.append(c.ppm)
            owner.append(k)
            n.append(c.n)
            top.append(c.max_value)
            cons.append(c.consensus_value)
            dec.append(c.decoupling)
            quality.append(float(rep["quality"][i]))
            ident = crm_id(conv, k, i)
            motifs.append(Motif(ident, c.ppm, nsites=c.n))
            for a, b in c.segments:
                motifs.append(Motif(f"{ident}_{a}_{b}", c.ppm[:, a:b], nsites=c.n))
            rows.append((k, i, c.n, c.max_value, c.consensus_value, c.decoupling, quality[-1], consensus(c.ppm),
                         ";".join(f"{a}-{b}" for a, b in c.segments)))
        best = max((c.decoupling for c in crms), default=float("nan"))
        neuron_rows.append((k, int(rep["samples"]), str(rep["method"]), int(rep["generations"]), int(rep["m"]),
                            len(crms), best))
    arrays = {
        "crm_ppm": np.array(ppms, dtype=np.float64).reshape(-1, 4, R),
        "crm_neuron": np.array(owner, dtype=np.int64),
        "crm_n": np.array(n, dtype=np.int64),
        "crm_max_activation": np.array(top, dtype=np.float64),
        "crm_consensus_activation": np.array(cons, dtype=np.float64),
        "crm_decoupling": np.array(dec, dtype=np.float64),
        "crm_quality": np.array(quality, dtype=np.float64),
        "undemixed_ppm": np.array([rep["undemixed"] for rep in reports], dtype=np.float64).reshape(-1, 4, R),
        "neurons": np.array([rep["channel"] for rep in reports], dtype=np.int64),
        "samples": np.array([rep["samples"] for rep in reports], dtype=np.int64),
        "m": np.array([rep["m"] for rep in reports], dtype=np.int64),
        "generations": np.array([rep["generations"] for rep in reports], dtype=np.int64),
    }
    tables = {
        "crms": Table(("neuron", "crm", "n", "max_activation", "consensus_activation", "decoupling", "quality",
                       "consensus", "segments"), tuple(rows)),
        "neurons": Table(("neuron", "samples", "sampling", "generations", "m", "crms", "decoupling_indicator"),
                         tuple(neuron_rows)),
    }
    return NeuronMotifResult("neuronmotif", arrays=arrays, tables=tables, motifs=tuple(motifs), params=params,
                             warnings=tuple(warnings), provenance={"timing": timing}, layer=conv, receptive_field=R)
