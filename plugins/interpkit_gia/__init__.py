"""Bundled plugin: the ``gia`` method (global importance analysis, Koo et al. 2021).

Modules: ``patterns`` (what is embedded: sequences, IUPAC, PPMs; positions; strands), ``nulls`` (background
models), ``interventions`` (the batched engine of Eq. 2), ``kmers`` (k-mer scan, global ISM, alignment motif),
``experiments`` (copies, spacing, position, GC bias, stem-loop, occlusion), ``gia`` (the verb), ``result`` and
``report``. Only ``predict`` is needed, so every backend can serve it.
"""

from __future__ import annotations

import numpy as np

from interpkit import (
    BATCH_SIZE,
    RANDOM_STATE,
    TARGETS,
    VERBOSE,
    Capability,
    MethodSpec,
    Motif,
    Param,
    hookimpl,
)

__all__ = ["EXPERIMENTS", "PRESET_NAMES", "register_methods"]

#: The experiments, as ``experiment=`` (``--experiment``) names them.
EXPERIMENTS = ("kmer-scan", "global-ism", "embed", "multiple", "spacing", "position", "gc-bias", "stem-loop",
               "occlusion")
#: Where unset positions come from: the sequence length, or the paper's / reference code's 41-nt values.
PRESET_NAMES = ("centred", "paper", "reference")
#: "+": the pattern as given; "-": its reverse complement; "random": either, drawn per background.
STRANDS = ("+", "-", "random")
_LISTS = (int, np.integer, list, tuple)


#: The options of ``interpkit run gia`` (and of :func:`interpkit_gia.gia.gia`), in --help order.
_PARAMS = (
    Param("experiment", str, "kmer-scan", "kmer-scan (all 4^k k-mers; top k-mers, alignment motif, "
          "global ISM), global-ism, embed, multiple (copies), spacing, position, gc-bias, stem-loop, "
          "occlusion.", choices=EXPERIMENTS),
    Param("pattern", str, None, "Pattern(s): sequences (IUPAC drawn per background; N keeps the "
          "background) or motif ids from --motifs (PPM sampled per background); rows separated by "
          "',', patterns of one row joined by '+', each PATTERN[@START|@random].",
          accepts=(list, tuple, np.ndarray, Motif)),
    Param("motifs", str, None, "MEME file whose motif ids or names --pattern may use.",
          accepts=(list, tuple)),
    Param("positions", str, None, "0-based start(s): one for kmer-scan, global-ism, embed ('random' "
          "allowed), spacing, gc-bias; several ('3,10,16' or START:STOP[:STEP]) for multiple, "
          "position, occlusion; unset: each experiment's default (centre, ...).", accepts=_LISTS),
    Param("preset", str, "centred", "Where unset positions, GC positions and stems come from: centred (from "
          "the sequence length), paper or reference (the 41-nt values of Koo et al. 2021's text or of its "
          "code; 41-bp models only).", choices=PRESET_NAMES),
    Param("spacings", str, None, "Gaps in bp for spacing ('0,2,4' or 0:21); unset: 0..20.",
          accepts=_LISTS),
    Param("null", str, None, "Null model(s), comma-separated: profile, shuffle, dinuc, observed, given, "
          "quantileI[/Q] (bin I of Q=4 by score, 1 = highest as in the reference code; the paper's text "
          "numbers from the lowest); several = robustness. Unset: given for "
          "occlusion, else profile.", accepts=(list, tuple)),
    Param("n_backgrounds", int, 1000, "Backgrounds per null model.", min=1),
    Param("null_filter", str, None, "LOW,HIGH: keep backgrounds predicted strictly between these "
          "percentiles (first output), e.g. 10,90.", accepts=(list, tuple)),
    Param("scores", str, None, "File of measured scores (one per sequence, text or .npy) ranking "
          "sequences for quantile nulls; unset: the model's prediction.", accepts=(list, tuple,
                                                                                     np.ndarray)),
    Param("stem", str, None, "LEFT,RIGHT,SIZE: stem-loop enforced in every background (Watson-Crick "
          "pairs), or the structure stem-loop tests (unset there: centred 9-bp arms, 7-bp loop).",
          accepts=(list, tuple)),
    Param("strand", str, "+", "Strand of every pattern: +, - (reverse complement) or random (per "
          "background).", choices=STRANDS),
    Param("kmer_size", int, 6, "k of the k-mer scan (4^k k-mers).", min=1, max=10),
    Param("top", int, 10, "Top k-mers kept per output (aligned into the motif).", min=1),
    Param("gc_pattern", str, "GCGCGC", "GC block of the gc-bias test."),
    Param("gc_positions", str, None, "RIGHT,LEFT starts of the GC block (gc-bias); unset: flush with "
          "each end (or the preset's).", accepts=_LISTS),
    Param("width", int, 10, "Occluded span in bp.", min=1),
    TARGETS,
    BATCH_SIZE,
    RANDOM_STATE,
    VERBOSE,
)

_SUMMARY = ("Global importance analysis: the mean effect of embedding patterns (k-mers, motifs, copies, spacings, GC "
            "blocks, stem-loops) into background sequences from a null model.")
_SOURCE = ("Koo, Majdandzic, Ploenzke, Anand & Paul (2021) PLoS Comput. Biol. 17:e1008925, Eq. 2 (global "
           "importance); experiments of Figs 2-4.")


@hookimpl
def register_methods() -> list[MethodSpec]:
    """The gia method (needs only predictions, so every backend serves it)."""
    gia = MethodSpec("gia", "interpkit_gia.gia:gia", _SUMMARY, requires=frozenset({Capability.PREDICT}),
                     params=_PARAMS, source=_SOURCE, explain="interpkit_gia.explain:explain_options",
                     explain_order=40)
    return [gia]
