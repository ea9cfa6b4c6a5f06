"""The hypothesis tests of the GIA paper, each one function: embedding, copies, spacing, position, GC bias,
stem-loop context and occlusion.

Koo et al. (2021), PLoS Comput. Biol. 17:e1008925: "GIA shows ResidualBind learns multiple binding sites
are additive" (Fig 2b-d: copies and spacing), "GIA reveals ResidualBind learns RNA secondary structure
context" (Fig 3c), "GIA highlights importance of GC-bias" (Fig 4c), positional bias (reference code
``positional_bias``) and, from the Discussion, occlusion. Every function takes ``(model, null, ...)``, runs
one batched :func:`~interpkit_gia.interventions.global_importance` call (two for the stem-loop test) and
returns :class:`~interpkit_gia.interventions.Effects` whose extras hold the experiment's own summaries.
Comparisons between rows are paired (every row uses the same backgrounds).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from interpkit import Predictor
from interpkit.errors import InputError
from interpkit.motifs import Motif
from interpkit.tables import Table
from interpkit.validation import check_scalar
from interpkit_gia.interventions import Effects, global_importance
from interpkit_gia.nulls import Null, check_stem, default_stem, replacement_profile, stem_loop
from interpkit_gia.patterns import (
    Intervention,
    Pattern,
    Placement,
    centre,
    check_fits,
    parse_interventions,
    parse_pattern,
)

__all__ = ["PRESETS", "embed", "gc_bias", "multiple_copies", "occlusion", "positional_effect", "preset_defaults",
           "spacing", "stem_loop_test"]

#: Positions of the paper and of its reference code, both for 41-nt RNAcompete sequences (0-based starts;
#: stem = (left, right, size)). "paper": the text and figure legends of Koo et al. 2021 (k-mers at 18-24,
#: copies at 4-9, 11-16 and 18-23, Watson-Crick pairs 6-16 with 23-33, GC at 1-7 and 35-41, all 1-based);
#: the paper gives no positional-effect starts, so both use the reference code's. "reference":
#: p-koo/residualbind's defaults and notebooks (``position=17``, copies 4, 12, 20, GC at 34 and 2,
#: ``set_hairpin_null(7, 23, 9)``; its ``embed_pattern_hairpin`` re-paired an 8/24 stem instead, a bug
#: not reproduced). The "centred" preset (the default) derives every position from the sequence length.
PRESETS = {
    "paper": {"start": 17, "copies": (3, 10, 17), "slide": (3, 10, 16, 22, 28, 34), "gc_positions": (34, 0),
              "stem": (5, 22, 11)},
    "reference": {"start": 17, "copies": (4, 12, 20), "slide": (3, 10, 16, 22, 28, 34), "gc_positions": (34, 2),
                  "stem": (7, 23, 9)},
}
#: The sequence length the presets were written for (RNAcompete 2013 probes, centre-padded).
PRESET_LENGTH = 41


def preset_defaults(preset: str, experiment: str, length: int) -> dict[str, Any]:
    """Default ``positions``, ``gc_positions`` and ``stem`` of an experiment under a preset.

    Parameters
    ----------
    preset : {"centred", "paper", "reference"}
        "centred": nothing (each experiment centres its patterns in the sequence); "paper" and
        "reference": :data:`PRESETS`.
    experiment : str
        An experiment name, as :func:`interpkit_gia.gia.gia` takes it.
    length : int
        The model's input length in bp.

    Returns
    -------
    dict
        Keys among ``positions`` (list of int), ``gc_positions`` ((right, left)) and ``stem``
        ((left, right, size)), only those the experiment uses.

    Raises
    ------
    InputError
        For a "paper" or "reference" preset on a model whose input is not 41 bp (their positions mean
        "centre" and "3' end" only there).
    """
    if preset == "centred":
        return {}
    if length != PRESET_LENGTH:
        raise InputError(f"preset {preset!r} holds the positions of the paper's {PRESET_LENGTH}-nt RNAcompete "
                         f"sequences, but this model takes {length} bp; use preset='centred' (positions from the "
                         "sequence length) or give positions explicitly.")
    values = PRESETS[preset]
    if experiment in ("kmer-scan", "global-ism", "embed", "spacing"):
        return {"positions": [values["start"]]}
    if experiment == "multiple":
        return {"positions": list(values["copies"])}
    if experiment == "position":
        return {"positions": list(values["slide"])}
    if experiment == "gc-bias":
        return {"positions": [values["start"]], "gc_positions": values["gc_positions"]}
    if experiment == "stem-loop":
        return {"stem": values["stem"]}
    return {}


def _paired(local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over backgrounds (axis 0) of paired differences, NaN rows left out."""
    good = ~np.isnan(local).any(axis=tuple(range(1, local.ndim)))
    d = local[good].astype(np.float64)
    n = len(d)
    mean = d.mean(axis=0) if n else np.full(local.shape[1:], np.nan)
    se = d.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(local.shape[1:], np.nan)
    return mean, se


def _paired_p(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sided paired t-test p-values of local importances a vs b, (N, K) each -> (K,)."""
    import warnings

    from scipy.stats import ttest_rel

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical rows: scipy's precision-loss note
        return np.atleast_1d(ttest_rel(a, b, axis=0, nan_policy="omit").pvalue).astype(np.float64)


def embed(model: Predictor, null: Null, patterns: Any, *, position: int | str | None = None,
          strand: str = "+", motifs: Sequence[Motif] = (), **common: Any) -> Effects:
    """Global importance of one or several patterns, each row embedded on its own (Eq. 2).

    Parameters
    ----------
    model : Predictor
    null : Null
    patterns : str or sequence
        Rows as :func:`~interpkit_gia.patterns.parse_interventions` reads them, e.g.
        ``"CACGTG,TGTTTAC,TGACTCA"`` (three rows) or ``"CACGTG@50+TGACTCA@120"`` (both in one row);
        PPMs and Motifs are sampled per background.
    position : int, "random" or None
        Start where a pattern gives none; "random" draws one per background (marginalizing position,
        Koo et al. 2021 Discussion); None centres each pattern. Default is None.
    strand : {"+", "-", "random"}
        Default is "+".
    motifs : sequence of Motif
        Motifs that pattern strings may name. Default is ().
    **common
        ``target``, ``batch_size``, ``random_state`` and ``verbose`` of
        :func:`~interpkit_gia.interventions.global_importance`.

    Returns
    -------
    Effects
        One row per pattern row.

    Raises
    ------
    InputError
        For malformed patterns or positions outside the sequence.
    """
    rows = parse_interventions(patterns, motifs=motifs, position=position, strand=strand,
                               length=null.one_hot.shape[2])
    return global_importance(model, null, rows, **common)


def _single(pattern: Any, motifs: Sequence[Motif], what: str) -> Pattern:
    if isinstance(pattern, str) and ("," in pattern or "+" in pattern or "@" in pattern):
        raise InputError(f"{what} takes one pattern (no ',', '+' or '@'), got {pattern!r}; positions go in "
                         "positions=.")
    if pattern is None:
        raise InputError(f"{what} needs a pattern, e.g. pattern='TGCATG' (--pattern TGCATG).")
    return parse_pattern(pattern, motifs=motifs)


def multiple_copies(model: Predictor, null: Null, pattern: Any, *, positions: Sequence[int] | None = None,
                    strand: str = "+", motifs: Sequence[Motif] = (), **common: Any) -> Effects:
    """Additivity of copies: 1, 2, ..., P copies embedded cumulatively, against the sum of single copies.

    Parameters
    ----------
    model : Predictor
        Any backend.
    null : Null
        Backgrounds the copies are embedded into.
    pattern : str, Motif or (4, w) PPM
        One pattern (e.g. the top k-mer).
    positions : sequence of int or None
        Starts of the copies, in the order they are added (must not overlap). None places 3 copies
        2 bp apart around the centre (the paper's 4, 12, 20 for a 6-mer in 41 nt are 2 bp apart too).
        Default is None.
    strand, motifs, **common
        As :func:`embed`; the strand applies to every copy.

    Returns
    -------
    Effects
        Rows: ``1x``, ``2x``, ... (copies at positions[:c]) then the single copies at positions[1:].
        Extras, P = copies, K = outputs:

        - ``copies``: (P,), int64, 1..P;
        - ``observed``: (P, K), float64, global importance of c copies;
        - ``expected``: (P, K), float64, the additive expectation, the sum of the global importances of
          single copies at each of the c positions;
        - ``interaction``: (P, K), float64, observed - expected (0 for an additive model), and
          ``interaction_se`` (P, K), its standard error over backgrounds (paired);
        - ``r2``: (K,), float64, squared Pearson correlation of the global importance with the number
          of copies (the paper's linearity measure, Fig 2b).

        Table ``additivity``: target, copies, observed, expected, interaction, interaction_se.

    Raises
    ------
    InputError
        For a missing pattern, fewer than 2 positions, overlapping copies or positions outside the
        sequence.
    """
    pat = _single(pattern, motifs, "multiple")
    length, w = null.one_hot.shape[2], pat.width
    if positions is None:
        span = 3 * w + 4
        start = centre(length, span)
        positions = [start, start + w + 2, start + 2 * (w + 2)]
    positions = [check_fits(pat, int(p), length, "multiple") for p in positions]
    if len(positions) < 2:
        raise InputError(f"multiple needs >= 2 positions, got {positions}.")
    ordered = sorted(positions)
    if any(b - a < w for a, b in itertools.pairwise(ordered)):
        raise InputError(f"copies at {positions} overlap ({w}-bp pattern); space the starts >= {w} bp apart.")
    rows = [Intervention(tuple(Placement(pat, p, strand) for p in positions[:c]), label=f"{c}x")
            for c in range(1, len(positions) + 1)]
    rows += [Intervention((Placement(pat, p, strand),), label=f"1x@{p}") for p in positions[1:]]
    eff = global_importance(model, null, rows, **common)
    P = len(positions)
    local = eff.local_importance  # (R, N, K)
    singles = np.concatenate([local[:1], local[P:]])  # (P, N, K), single copy at each position
    expected_local = np.cumsum(singles, axis=0)
    observed, expected = eff.global_importance[:P], _paired_mean(expected_local)
    inter = np.stack([_paired(local[c] - expected_local[c]) for c in range(P)], axis=1)  # (2, P, K)
    copies = np.arange(1, P + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.array([np.corrcoef(copies, observed[:, t])[0, 1] ** 2 if np.isfinite(observed[:, t]).all()
                       else np.nan for t in range(observed.shape[1])])
    names = _names(model, eff)
    table = Table(("target", "copies", "observed", "expected", "interaction", "interaction_se"), tuple(
        (names[t], c + 1, observed[c, t], expected[c, t], inter[0, c, t], inter[1, c, t])
        for t in range(len(names)) for c in range(P)))
    extras = {"copies": copies.astype(np.int64), "observed": observed, "expected": expected,
              "interaction": inter[0], "interaction_se": inter[1], "r2": r2}
    return replace(eff, extras=extras, tables={"additivity": table})


def _paired_mean(local: np.ndarray) -> np.ndarray:
    """(R, N, K) -> (R, K) means over backgrounds that count in every row."""
    return np.stack([_paired(local[r])[0] for r in range(len(local))])


def _names(model: Predictor, eff: Effects) -> list[str]:
    names = list(model.output_names)
    return [names[t] for t in eff.targets]


def spacing(model: Predictor, null: Null, pattern: Any, second: Any = None, *, position: int | None = None,
            spacings: Sequence[int] | None = None, strand: str = "+", motifs: Sequence[Motif] = (),
            **common: Any) -> Effects:
    """Distance dependence of two patterns: both embedded at each gap, against the additive expectation.

    Pattern A sits at ``position``; pattern B starts ``gap`` bp after A ends (a negative gap overlaps
    them: B overwrites the end of A). For each gap, the interaction is
    ``I(A + B) - I(A) - I(B at its position)``, computed per background and averaged (paired), so an
    additive model gives 0 at every gap where the patterns do not overlap.

    Parameters
    ----------
    model : Predictor
        Any backend; only ``predict`` is called.
    null : Null
        Backgrounds both patterns go into.
    pattern : str, Motif or (4, w) PPM
        Pattern A.
    second : same or None
        Pattern B; None uses A again (the paper's two RBFOX1 sites, Fig 2d). Default is None.
    position : int or None
        Start of A; None places the pair, at the largest gap, around the centre. Default is None.
    spacings : sequence of int or None
        Gaps in bp; None is 0..20 (as far as the sequence allows). Default is None.
    strand, motifs, **common
        As :func:`embed`; the strand applies to both patterns.

    Returns
    -------
    Effects
        Rows: ``A: <name>@<start>`` alone, then per gap ``B: <name>@<start>`` alone and ``A+B gap <g>``
        (the prefixes keep labels distinct when B starts where A does, a gap of -w_A). Extras, S = gaps:

        - ``spacings``: (S,), int64;
        - ``together``: (S, K), float64, I(A + B);
        - ``expected``: (S, K), float64, I(A) + I(B), the additive expectation;
        - ``interaction``: (S, K), float64, together - expected, and ``interaction_se`` (S, K).

        Table ``spacing``: target, gap, together, expected, interaction, interaction_se.

    Raises
    ------
    InputError
        For a missing pattern, no gaps, or a gap that puts B outside the sequence.
    """
    a = _single(pattern, motifs, "spacing")
    b = a if second is None else _single(second, motifs, "spacing")
    length = null.one_hot.shape[2]
    if spacings is None:
        room = length - a.width - b.width
        spacings = list(range(max(0, min(20, room)) + 1))
    spacings = [int(s) for s in spacings]
    if not spacings:
        raise InputError("spacings is empty; give gaps in bp, e.g. spacings='0,2,4,8'.")
    if position is None:
        position = centre(length, a.width + max(spacings) + b.width)
    pa = check_fits(a, int(position), length, "spacing")
    starts = [check_fits(b, pa + a.width + s, length, f"spacing gap {s}") for s in spacings]
    rows = [Intervention((Placement(a, pa, strand),), label=f"A: {a.name}@{pa}")]
    for s, pb in zip(spacings, starts):
        rows.append(Intervention((Placement(b, pb, strand),), label=f"B: {b.name}@{pb}"))
        rows.append(Intervention((Placement(a, pa, strand), Placement(b, pb, strand)), label=f"A+B gap {s}"))
    eff = global_importance(model, null, rows, **common)
    local = eff.local_importance
    alone_a = local[0]
    together = np.stack([_paired(local[2 + 2 * i])[0] for i in range(len(spacings))])
    expected = np.stack([_paired(alone_a + local[1 + 2 * i])[0] for i in range(len(spacings))])
    inter = np.stack([_paired(local[2 + 2 * i] - alone_a - local[1 + 2 * i]) for i in range(len(spacings))], axis=1)
    names = _names(model, eff)
    table = Table(("target", "gap", "together", "expected", "interaction", "interaction_se"), tuple(
        (names[t], s, together[i, t], expected[i, t], inter[0, i, t], inter[1, i, t])
        for t in range(len(names)) for i, s in enumerate(spacings)))
    extras = {"spacings": np.array(spacings, dtype=np.int64), "together": together, "expected": expected,
              "interaction": inter[0], "interaction_se": inter[1]}
    return replace(eff, extras=extras, tables={"spacing": table})


def positional_effect(model: Predictor, null: Null, pattern: Any, *,
                      positions: Sequence[int] | None = None, strand: str = "+",
                      motifs: Sequence[Motif] = (), **common: Any) -> Effects:
    """Positional effect: the global importance of one pattern slid along the sequence.

    Parameters
    ----------
    model : Predictor
        The model probed.
    null : Null
        Backgrounds the pattern slides along.
    pattern : str, Motif or (4, w) PPM
    positions : sequence of int or None
        Starts; None is every start, 0..L - w. The reference code's ``positional_bias`` used
        3, 10, 16, 22, 28, 34 for 41 nt. Default is None.
    strand, motifs, **common
        As :func:`embed`; the strand applies to the pattern at every start.

    Returns
    -------
    Effects
        One row per start; extras ``positions`` (P,), int64.

    Raises
    ------
    InputError
        For a missing pattern or a start where it does not fit.
    """
    pat = _single(pattern, motifs, "position")
    length = null.one_hot.shape[2]
    positions = list(range(length - pat.width + 1)) if positions is None else [int(p) for p in positions]
    rows = [Intervention((Placement(pat, check_fits(pat, p, length, "position"), strand),)) for p in positions]
    eff = global_importance(model, null, rows, **common)
    return replace(eff, extras={"positions": np.array(positions, dtype=np.int64)})


def gc_bias(model: Predictor, null: Null, pattern: Any, *, position: int | None = None,
            gc_pattern: str = "GCGCGC", gc_positions: tuple[int, int] | None = None, strand: str = "+",
            motifs: Sequence[Motif] = (), **common: Any) -> Effects:
    """GC-bias test: a GC block at the 3' (right) or 5' (left) end, with and without a motif in the middle.

    Parameters
    ----------
    model : Predictor
        Any backend; the test needs only predictions.
    null : Null
        Backgrounds for the motif and the GC block.
    pattern : str, Motif or (4, w) PPM
        The motif (e.g. the top k-mer).
    position : int or None
        Motif start; None centres it. Default is None.
    gc_pattern : str
        The GC block. Default is "GCGCGC" (the paper's).
    gc_positions : (int, int) or None
        (right, left) starts of the GC block; None puts it flush with each end, (L - g, 0). The paper
        used 35-41 and 1-7 (1-based) for 41 nt. Default is None.
    strand, motifs, **common
        As :func:`embed`; the strand applies to the motif (the GC block is written as given).

    Returns
    -------
    Effects
        Rows, as Fig 4c: ``GC right``, ``motif``, ``motif + GC right``, ``motif + GC left``. Extras:

        - ``change``: (2, K), float64, I(motif + GC) - I(motif) for GC right and left, in output units;
        - ``relative_change``: (2, K), float64, ``change / I(motif)``. The paper's GC-bias effect size
          (Fig 4d) is I(motif + GC) / I(motif), this plus 1; its difference between the ends (Fig 4e)
          is ``relative_change[1] - relative_change[0]``. NaN for an output where the motif alone has
          no measurable effect (|I(motif)| < 2 standard errors), with a warning: a ratio to noise
          means nothing there;
        - ``p_value``: (2, K), float64, paired t-test of motif + GC (right, left) against the motif alone
          over the same backgrounds (the reference code used Welch's unpaired test).

        Table ``tests``: target, comparison, change, relative_change, p_value.

    Raises
    ------
    InputError
        For a missing motif, a GC block that overlaps the motif, or positions outside the sequence.
    """
    motif = _single(pattern, motifs, "gc-bias")
    gc = parse_pattern(gc_pattern, name="gc_pattern")
    length = null.one_hot.shape[2]
    pm = check_fits(motif, centre(length, motif.width) if position is None else int(position), length, "gc-bias")
    right, left = (length - gc.width, 0) if gc_positions is None else (int(gc_positions[0]), int(gc_positions[1]))
    for p in (right, left):
        check_fits(gc, p, length, "gc-bias")
        if p < pm + motif.width and pm < p + gc.width:
            raise InputError(f"the GC block at {p} overlaps the motif at {pm}; move one of them.")
    m = Placement(motif, pm, strand)
    rows = [Intervention((Placement(gc, right),), label="GC right"), Intervention((m,), label="motif"),
            Intervention((m, Placement(gc, right)), label="motif + GC right"),
            Intervention((m, Placement(gc, left)), label="motif + GC left")]
    eff = global_importance(model, null, rows, **common)
    gi, local = eff.global_importance, eff.local_importance
    change = np.stack([_paired(local[2] - local[1])[0], _paired(local[3] - local[1])[0]])
    names = _names(model, eff)
    measurable = np.abs(gi[1]) >= 2 * np.nan_to_num(eff.standard_error[1], nan=np.inf)  # (K,)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(measurable, change / gi[1], np.nan)
    notes = tuple(f"gc-bias: the motif alone has no measurable effect on {names[t]} (|{gi[1, t]:.3g}| < 2 x "
                  f"{eff.standard_error[1, t]:.3g}); its relative change is NaN." for t in np.flatnonzero(~measurable))
    p = np.stack([_paired_p(local[2], local[1]), _paired_p(local[3], local[1])])
    table = Table(("target", "comparison", "change", "relative_change", "p_value"), tuple(
        (names[t], f"motif + GC {side} vs motif", change[i, t], rel[i, t], p[i, t])
        for t in range(len(names)) for i, side in enumerate(("right", "left"))))
    return replace(eff, extras={"change": change, "relative_change": rel, "p_value": p}, tables={"tests": table},
                   warnings=eff.warnings + notes)


def stem_loop_test(model: Predictor, null: Null, pattern: Any, *, stem: Any = None, strand: str = "+",
                   motifs: Sequence[Motif] = (), **common: Any) -> Effects:
    """Structure context: a motif in the loop or in the stem of stem-loop backgrounds, and at the same
    places in the plain backgrounds (Koo et al. 2021, Fig 3c).

    Parameters
    ----------
    model : Predictor
    null : Null
        Plain backgrounds; the stem-loop ones are made from them with :func:`~interpkit_gia.nulls.stem_loop`.
    pattern : str, Motif or (4, w) PPM
        The motif, at most as long as the loop.
    stem : (int, int, int), str or None
        ``(left, right, size)``; None centres 9-bp arms around a 7-bp loop. Default is None.
    strand, motifs, **common
        As :func:`embed`; the strand applies to the motif in the loop and in the stem.

    Returns
    -------
    Effects
        Rows: ``loop (plain)``, ``stem (plain)``, ``loop (stem-loop)``, ``stem (stem-loop)``: the motif
        centred in the loop, and centred in the left arm (its partner arm re-paired). The first two use
        the plain backgrounds, the last two the stem-loop ones; ``null_predictions`` are the plain ones.
        Extras: ``stem``, (3,) int64; ``stem_null_predictions``, (N, K) float32; ``p_value``, (2, K),
        paired t-tests of loop vs stem (stem-loop backgrounds) and loop (stem-loop) vs loop (plain).
        Table ``tests``.

    Raises
    ------
    InputError
        For a missing motif, a stem that does not fit, or a motif longer than the loop or the arm.
    """
    motif = _single(pattern, motifs, "stem-loop")
    length = null.one_hot.shape[2]
    left, right, size = default_stem(length) if stem is None else check_stem(stem, length)
    loop = right - (left + size)
    if motif.width > loop or motif.width > size:
        raise InputError(f"motif {motif.name} ({motif.width} bp) is longer than the loop ({loop} bp) or the arms "
                         f"({size} bp); choose a larger stem=LEFT,RIGHT,SIZE.")
    in_loop = left + size + centre(loop, motif.width)
    in_stem = left + centre(size, motif.width)
    rows = [Intervention((Placement(motif, in_loop, strand),), label="loop"),
            Intervention((Placement(motif, in_stem, strand),), label="stem")]
    plain = global_importance(model, null, rows, **common)
    folded = global_importance(model, stem_loop(null, (left, right, size)), rows, **common)
    local = np.concatenate([plain.local_importance, folded.local_importance])
    p = np.stack([_paired_p(local[2], local[3]), _paired_p(local[2], local[0])])
    names = _names(model, plain)
    table = Table(("target", "comparison", "p_value"), tuple(
        (names[t], label, p[i, t]) for t in range(len(names))
        for i, label in enumerate(("loop vs stem (stem-loop)", "loop (stem-loop) vs loop (plain)"))))
    return replace(
        plain, rows=("loop (plain)", "stem (plain)", "loop (stem-loop)", "stem (stem-loop)"),
        global_importance=np.concatenate([plain.global_importance, folded.global_importance]),
        standard_error=np.concatenate([plain.standard_error, folded.standard_error]),
        n=np.concatenate([plain.n, folded.n]), local_importance=local,
        extras={"stem": np.array([left, right, size], dtype=np.int64),
                "stem_null_predictions": folded.null_predictions, "p_value": p},
        tables={"tests": table}, warnings=plain.warnings + folded.warnings)


def occlusion(model: Predictor, null: Null, *, width: int = 10, positions: Sequence[int] | None = None,
              background: Any = None, **common: Any) -> Effects:
    """Occlusion: each span replaced by bases drawn from a background profile (position-specific frequencies).

    The local importance of a span for sequence n is f(x_n with the span resampled) - f(x_n): the effect
    of removing whatever the span holds, with the span marginalized rather than zeroed (Koo et al. 2021,
    Discussion). Use the "given" or "observed" null to explain those very sequences. The replacement
    bases come from a profile that should describe many sequences: drawn from the profile of the
    explained sequences alone, a span of one sequence would be replaced by itself (effect exactly 0).

    Parameters
    ----------
    model : Predictor
        Any backend.
    null : Null
        The sequences whose spans are occluded (the "given" null explains them one by one).
    width : int
        Span length in bp. Default is 10.
    positions : sequence of int or None
        Span starts; None tiles the sequence, 0, width, 2 width, ... Default is None.
    background : None, "uniform", ndarray of shape (4, L) or (M, 4, L)
        Where the replacement bases come from: a (4, L) profile, one-hot sequences (M, 4, L) whose
        position-specific profile is used (e.g. every sequence of a data set), or "uniform" (each base
        1/4). None uses the null's own profile. Sequences (or a null) fewer than 10 give "uniform" with
        a warning. Columns where the profile is empty (padding) keep the background base. Default is None.
    **common
        ``target``, ``batch_size``, ``random_state`` and ``verbose`` of
        :func:`~interpkit_gia.interventions.global_importance`.

    Returns
    -------
    Effects
        One row per span, labelled ``occlude@<start>-<end>``; extras ``positions`` (P,), int64.

    Raises
    ------
    InputError
        For width < 1, a span outside the sequence, or a background of the wrong shape (a profile from
        fewer than 10 sequences is replaced by uniform frequencies, with a warning in ``Effects.warnings``).
    """
    length = null.one_hot.shape[2]
    check_scalar(width, "width", int, min_val=1, max_val=length)
    positions = list(range(0, length - width + 1, width)) if positions is None else [int(p) for p in positions]
    profile, note = replacement_profile(null, background)
    rows = [Intervention(occlude=((p, p + width),)) for p in positions]
    eff = global_importance(model, null, rows, occlusion_profile=profile, **common)
    return replace(eff, extras={"positions": np.array(positions, dtype=np.int64)}, warnings=eff.warnings + note)

