"""The ``gia`` method: global importance analysis of patterns in background sequences, on any backend.

One call builds the null model(s) from the sequences given, runs one experiment on each null (so several
nulls test robustness in the same call), and returns a :class:`~interpkit_gia.result.GIAResult`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from interpkit import Motif, Predictor, resolve_targets
from interpkit.errors import InputError, InputTypeError
from interpkit.tables import Table
from interpkit.validation import check_choice, check_one_hot, check_scalar
from interpkit_gia import EXPERIMENTS, PRESET_NAMES, STRANDS
from interpkit_gia import experiments as ex
from interpkit_gia.interventions import Effects
from interpkit_gia.kmers import global_ism, kmer_scan
from interpkit_gia.nulls import PAPER_NULLS, Null, check_null_name, filter_null, make_null, stem_loop
from interpkit_gia.patterns import read_motif_file
from interpkit_gia.result import GIAResult

__all__ = ["EXPERIMENTS", "gia", "robustness"]

#: Arrays of an experiment's extras that have a background axis, and where it is (padded across nulls).
_BACKGROUND_AXIS = {"top_local": 1, "stem_null_predictions": 0}
_PATTERNED = ("global-ism", "embed", "multiple", "spacing", "position", "gc-bias", "stem-loop")
#: Experiment-specific options: (default, the experiments that use it).
_USED_BY = {"pattern": (None, _PATTERNED), "motifs": (None, _PATTERNED),
            "positions": (None, tuple(e for e in EXPERIMENTS if e != "stem-loop")),
            "spacings": (None, ("spacing",)), "strand": ("+", tuple(e for e in EXPERIMENTS if e != "occlusion")),
            "kmer_size": (6, ("kmer-scan",)), "top": (10, ("kmer-scan",)), "gc_pattern": ("GCGCGC", ("gc-bias",)),
            "gc_positions": (None, ("gc-bias",)), "width": (10, ("occlusion",)),
            "preset": ("centred", tuple(e for e in EXPERIMENTS if e != "occlusion"))}


def _check_used(experiment: str, options: dict[str, Any]) -> None:
    """Refuse an option set away from its default that ``experiment`` does not use."""
    for name, value in options.items():
        default, users = _USED_BY[name]
        if experiment not in users and not (value is default or value == default):
            raise InputError(f"{name} == {value!r} is not used by experiment {experiment!r} (only by "
                             f"{', '.join(users)}); leave {name} out or choose one of those experiments.")


def _ints(value: Any, name: str, *, allow_random: bool = False) -> list[int | None] | None:
    """None, an int, a sequence of ints, or "3,10,16" / "0:21:2" (a range) / "random" -> list."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return [int(value)]
    if isinstance(value, str):
        text = value.strip()
        if allow_random and text == "random":
            return [None]
        try:
            if ":" in text:
                return list(range(*(int(v) for v in text.split(":"))))
            return [int(v) for v in text.split(",")]
        except (TypeError, ValueError):
            raise InputError(f"{name} == {value!r} must be ints separated by ',' or a range START:STOP[:STEP]"
                             f"{' or random' if allow_random else ''}, e.g. '3,10,16'.") from None
    if isinstance(value, Sequence) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                           for v in value):
        return [int(v) for v in value]
    raise InputTypeError(f"{name} must be an int, a list of ints or a string such as '3,10,16', "
                         f"got {type(value).__name__}.")


def _one(values: list | None, name: str, experiment: str) -> Any:
    if values is None:
        return None
    if len(values) != 1:
        raise InputError(f"experiment {experiment!r} takes one start in {name}, got {len(values)}; give one.")
    return values[0]


def _null_names(null: Any, experiment: str) -> list[str]:
    if null is None:
        return ["given" if experiment == "occlusion" else "profile"]
    names = null.split(",") if isinstance(null, str) else list(null) if isinstance(null, Sequence) else None
    if names is None:
        raise InputTypeError(f"null must be a str such as 'profile,dinuc' or a list of names, got {type(null).__name__}.")
    names = [check_null_name(n.strip() if isinstance(n, str) else n) for n in names]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"null == {null!r}: give each null model once.")
    return names


def _percentiles(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = tuple(float(v) for v in value.split(","))
        except ValueError:
            raise InputError(f"null_filter == {value!r} must be LOW,HIGH percentiles, e.g. '10,90'.") from None
    if not (isinstance(value, Sequence) and len(value) == 2):
        raise InputError(f"null_filter must be (low, high) percentiles such as (10, 90), got {value!r}.")
    return float(value[0]), float(value[1])


def _scores(scores: Any, n: int) -> np.ndarray | None:
    if scores is None:
        return None
    if isinstance(scores, (str, os.PathLike)):
        from interpkit.errors import MissingFileError

        if not os.path.isfile(scores):
            raise MissingFileError(f"scores file {scores} does not exist.")
        try:
            scores = np.load(scores) if str(scores).endswith(".npy") else np.loadtxt(scores, ndmin=1)
        except ValueError as exc:
            raise InputError(f"scores file {scores} must hold one number per line ({exc}).") from None
    arr = np.asarray(scores, dtype=np.float64).ravel()
    if arr.shape != (n,):
        raise InputError(f"scores has {arr.size} values for {n} sequences; give one score per sequence.")
    return arr


def _nulls(model: Predictor, X: np.ndarray, names: list[str], *, n: int, scores: Any, null_filter: Any,
           stem: Any, experiment: str, first: int, batch_size: int | None, random_state: int) -> list[Null]:
    ranks = _scores(scores, len(X))
    if ranks is None and any(name.startswith("quantile") for name in names):
        ranks = model.predict(X, batch_size=batch_size)[:, first]
    out = []
    for name in names:
        null = make_null(X, name, n=n, scores=ranks, random_state=random_state)
        if null_filter is not None:
            low, high = null_filter
            null = filter_null(null, model.predict(null.one_hot, batch_size=batch_size)[:, first], low=low, high=high)
        if stem is not None and experiment != "stem-loop":
            null = stem_loop(null, stem)
        out.append(null)
    return out


def _pair(pattern: Any) -> tuple[Any, Any]:
    """"A" or "A+B" (or [A, B]) -> (A, B or None)."""
    if isinstance(pattern, str):
        first, _, second = pattern.partition("+")
        return first, second or None
    if isinstance(pattern, (list, tuple)) and len(pattern) == 2 and all(isinstance(p, str) for p in pattern):
        return pattern[0], pattern[1]
    return pattern, None


def _describe(value: Any) -> Any:
    """A JSON-safe record of an option: strings, numbers and lists as given, arrays and motifs by shape or id."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, Motif):
        return value.id
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    return str(value)


def _pad(arr: np.ndarray, axis: int, size: int, fill: Any) -> np.ndarray:
    if arr.shape[axis] == size:
        return arr
    shape = list(arr.shape)
    shape[axis] = size - arr.shape[axis]
    return np.concatenate([arr, np.full(shape, fill, dtype=arr.dtype)], axis=axis)


def _with_null(table: Table, name: str) -> list[tuple]:
    return [(name, *row) for row in table.rows]


def _assemble(effects: list[Effects], experiment: str, names: list[str], params: dict) -> GIAResult:
    """Stack per-null Effects along a leading null axis (M) into one result."""
    sizes = [len(e.null) for e in effects]
    nmax = max(sizes)
    arrays = {
        "global_importance": np.stack([e.global_importance for e in effects]),
        "standard_error": np.stack([e.standard_error for e in effects]),
        "n_backgrounds": np.stack([e.n for e in effects]),
        "null_predictions": np.stack([_pad(e.null_predictions, 0, nmax, np.nan) for e in effects]),
        "null_size": np.array(sizes, dtype=np.int64),
        "backgrounds": np.stack([_pad(e.null.one_hot.astype(np.uint8), 0, nmax, 0) for e in effects]),
    }
    if effects[0].local_importance is not None:
        arrays["local_importance"] = np.stack([_pad(e.local_importance, 1, nmax, np.nan) for e in effects])
    for key in effects[0].extras:
        axis = _BACKGROUND_AXIS.get(key)
        parts = [e.extras[key] if axis is None else _pad(e.extras[key], axis, nmax, np.nan) for e in effects]
        arrays[key] = np.stack(parts)
    rows = effects[0].rows
    out_names = [names[t] for t in effects[0].targets]
    records = tuple(
        (e.null.name, row, out_names[t], float(e.global_importance[r, t]), float(e.standard_error[r, t]),
         int(e.n[r]))
        for e in effects for r, row in enumerate(rows) for t in range(len(out_names)))
    tables = {"effects": Table(("null", "row", "target", "global_importance", "standard_error", "n"), records)}
    for key, table in effects[0].tables.items():
        tables[key] = Table(("null", *table.columns), tuple(r for e in effects for r in _with_null(e.tables[key],
                                                                                                 e.null.name)))
    nulls = tuple(e.null.name for e in effects)
    params = {**params, "nulls": list(nulls), "null_descriptions": [e.null.description for e in effects],
              "rows": list(rows)}
    return GIAResult("gia", arrays=arrays, tables=tables, motifs=tuple(m for e in effects for m in e.motifs),
                     params=params, warnings=tuple(w for e in effects for w in e.warnings),
                     experiment=experiment, targets=effects[0].targets, nulls=nulls, rows=rows,
                     provenance={"output_names": list(names)})


def gia(
    model: Predictor,
    X: np.ndarray,
    *,
    experiment: str = "kmer-scan",
    pattern: Any = None,
    motifs: Any = None,
    positions: Any = None,
    preset: str = "centred",
    spacings: Any = None,
    null: Any = None,
    n_backgrounds: int = 1000,
    null_filter: Any = None,
    scores: Any = None,
    stem: Any = None,
    strand: str = "+",
    kmer_size: int = 6,
    top: int = 10,
    gc_pattern: str = "GCGCGC",
    gc_positions: Any = None,
    width: int = 10,
    target: Any = None,
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = False,
) -> GIAResult:
    """Global importance analysis: the population-level effect of patterns embedded in background sequences.

    The global importance of an intervention (a pattern, several, or an occluded span) is the mean over
    N background sequences x_n of the paired difference f(x_n with the intervention) - f(x_n), for every
    output; the differences are the local importances (Koo et al. 2021, Eq. 2). The backgrounds come
    from a null model of the sequences ``X``. Only ``model.predict`` is used, so any backend works, and
    all (intervention, background) pairs are built on the fly and predicted in large batches.

    Parameters
    ----------
    model : Predictor
        Any backend.
    X : ndarray of shape (N0, 4, L), float32
        Observed sequences the null models are built from (e.g. peaks, or negatives); N columns allowed.
    experiment : str
        - "kmer-scan": all 4^k k-mers at one start (``positions``, default centre): top k-mers, their
          alignment motifs and the global ISM of the best (:func:`~interpkit_gia.kmers.kmer_scan`);
        - "global-ism": the k-mer ``pattern`` and its 3k single mutants (:func:`~interpkit_gia.kmers.global_ism`);
        - "embed": each row of ``pattern`` (:func:`~interpkit_gia.experiments.embed`);
        - "multiple": 1..P copies of ``pattern`` at ``positions`` vs the additive expectation;
        - "spacing": ``pattern`` "A" or "A+B" at the gaps ``spacings`` vs the additive expectation;
        - "position": ``pattern`` at every start (or ``positions``);
        - "gc-bias": ``pattern`` centred with ``gc_pattern`` at either end;
        - "stem-loop": ``pattern`` in the loop or stem of stem-loop backgrounds (``stem``) vs plain ones;
        - "occlusion": spans of ``width`` bp (starting at ``positions``) resampled from a background
          profile: that of all sequences ``X`` for the "given" and "observed" nulls, else the null's own
          (uniform, with a warning, when it comes from fewer than 10 sequences).

        Default is "kmer-scan" (the paper's ab initio first step).
    pattern : str, Motif, (4, w) PPM or sequence
        What to embed, see :func:`~interpkit_gia.patterns.parse_interventions`: sequences (IUPAC codes
        drawn per background; N keeps the background), motif ids of ``motifs`` or PPMs (sampled per
        background); rows separated by ",", patterns in one row joined by "+", ``@POS`` or ``@random``
        for a start. Default is None.
    motifs : path or sequence of Motif or None
        A MEME file whose motif ids or names ``pattern`` may use. Default is None.
    positions : int, sequence of int, str or None
        Starts (0-based), per experiment: one start for kmer-scan, global-ism, embed (or "random"),
        spacing (pattern A) and gc-bias; several for multiple, position and occlusion; "3,10,16" or
        "0:41:5" as a string. Default is None (the preset's, see ``preset``).
    preset : {"centred", "paper", "reference"}
        Where unset ``positions``, ``gc_positions`` and ``stem`` come from: "centred" derives them from
        the sequence length (each experiment's default, see its function); "paper" and "reference" use
        the 41-nt positions of Koo et al. 2021's text or of its reference code
        (:data:`~interpkit_gia.experiments.PRESETS`; models with 41-bp inputs only). Default is "centred".
    spacings : sequence of int, str or None
        Gaps in bp for "spacing". Default is None (0..20).
    null : str, sequence of str or None
        Null model(s), comma-separated (see :func:`~interpkit_gia.nulls.make_null`): profile, shuffle,
        dinuc, observed, given, quantileI[/Q]. Several nulls run the same experiment on each (robustness;
        every array gets a leading null axis M either way). Default is None: "given" for occlusion,
        "profile" otherwise (the paper's).
    n_backgrounds : int
        Backgrounds per null. Default is 1000 (the paper's).
    null_filter : (float, float), str or None
        Keep backgrounds whose prediction for the first explained output lies strictly between these
        percentiles, e.g. "10,90" (the reference code's ``filter_null``). Default is None.
    scores : array-like of shape (N0,), path or None
        Measured scores of X for quantile nulls (a .npy file or text, one per line); None ranks X by the
        model's prediction for the first explained output. Default is None.
    stem : (int, int, int), str or None
        ``(left, right, size)`` of a stem-loop enforced in every background (Watson-Crick pairing, re-imposed
        after embedding); for "stem-loop" the structure tested (None: centred 9-bp arms, 7-bp loop).
        Default is None.
    strand : {"+", "-", "random"}
        Strand of every pattern ("random": drawn per background). Default is "+".
    kmer_size : int
        k for "kmer-scan". Default is 6.
    top : int
        Top k-mers kept per output. Default is 10.
    gc_pattern : str
        GC block for "gc-bias". Default is "GCGCGC".
    gc_positions : (int, int), str or None
        (right, left) starts of the GC block for "gc-bias", e.g. "34,0". Default is None (flush with each
        end, or the preset's).
    width : int
        Span for "occlusion", bp. Default is 10.
    target : None, int, str or sequence
        Outputs (every one by default: multi-task GIA, not output 0 only). Default is None.
    batch_size : int or None
        Sequences per forward pass. Default is None (the backend's choice).
    random_state : int
        Seed of the null models and every draw. Default is 0.
    verbose : bool
        Progress bars. Default is False.

    Returns
    -------
    GIAResult
        Arrays, with M nulls, R rows (interventions), N backgrounds (padded with NaN/0 to the largest
        null), K outputs, in the model's output units:

        - ``global_importance``: (M, R, K), float64;
        - ``standard_error``: (M, R, K), float64;
        - ``n_backgrounds``: (M, R), int64, backgrounds that count (a pattern never writes into padding);
        - ``local_importance``: (M, R, N, K), float32, NaN where left out (absent for kmer-scan, which
          keeps ``top_local`` (M, top, N, K) instead);
        - ``null_predictions``: (M, N, K), float32; ``null_size``: (M,), int64;
        - ``backgrounds``: (M, N, 4, L), uint8, the null sequences used;
        - the experiment's extras with a leading M axis (see its function).

        Tables ``effects`` (null, row, target, global_importance, standard_error, n) and the experiment's
        own; motifs: the k-mer alignment motifs.

    Raises
    ------
    InputError
        For X that is not one-hot of the model's length, an unknown experiment, null, strand, preset or
        target, a missing or malformed pattern, positions that do not fit, a "paper"/"reference" preset
        on a model that does not take 41 bp, strand "-" for "kmer-scan" (the same 4^k sequences as "+"),
        or an option set that the experiment does not use (e.g. ``spacings`` for "kmer-scan").
    InputTypeError
        For options of the wrong type.

    Notes
    -----
    Source: Koo, Majdandzic, Ploenzke, Anand & Paul (2021), PLoS Comput. Biol. 17:e1008925, Eq. 2 and
    Materials and methods; the reference implementation is p-koo/residualbind ``GlobalImportance``.
    Differences: null scores are per output (the reference subtracts output 0's), every output at once,
    seeded draws, patterns never written into padding or past the sequence end, the stem-loop null is
    explicit, N in a pattern keeps the background, PPMs can be sampled, positions can be random.
    """
    X = check_one_hot(X, "X", length=model.input_spec.length)
    check_choice(experiment, "experiment", EXPERIMENTS)
    check_choice(strand, "strand", STRANDS)
    check_choice(preset, "preset", PRESET_NAMES)
    check_scalar(n_backgrounds, "n_backgrounds", int, min_val=1)
    check_scalar(random_state, "random_state", int, min_val=0)
    check_scalar(top, "top", int, min_val=1)
    check_scalar(gc_pattern, "gc_pattern", str)
    if batch_size is not None:
        check_scalar(batch_size, "batch_size", int, min_val=1)
    _check_used(experiment, {"pattern": pattern, "motifs": motifs, "positions": positions, "spacings": spacings,
                             "strand": strand, "kmer_size": kmer_size, "top": top, "gc_pattern": gc_pattern,
                             "gc_positions": gc_positions, "width": width, "preset": preset})
    targets = resolve_targets(target, model.output_names)
    alphabet = model.input_spec.alphabet
    library = read_motif_file(motifs)
    defaults = ex.preset_defaults(preset, experiment, X.shape[2])
    starts = _ints(positions, "positions", allow_random=experiment == "embed") or defaults.get("positions")
    gc_at = _ints(gc_positions, "gc_positions") or defaults.get("gc_positions")
    if gc_at is not None and len(gc_at) != 2:
        raise InputError(f"gc_positions == {gc_positions!r} must be two starts, RIGHT,LEFT, e.g. '34,0'.")
    stem = defaults.get("stem") if stem is None else stem
    gaps = _ints(spacings, "spacings")
    names = _null_names(null, experiment)
    filt = _percentiles(null_filter)
    nulls = _nulls(model, X, names, n=n_backgrounds, scores=scores, null_filter=filt, stem=stem,
                   experiment=experiment, first=targets[0], batch_size=batch_size, random_state=random_state)
    common = {"target": list(targets), "batch_size": batch_size, "random_state": random_state, "verbose": verbose}
    pat = {"strand": strand, "motifs": library}

    def one(background: Null) -> Effects:
        if experiment == "kmer-scan":
            return kmer_scan(model, background, k=kmer_size, position=_one(starts, "positions", experiment),
                             strand=strand, top=top, alphabet=alphabet,
                             reverse_complement=alphabet == "ACGT", **common)
        if pattern is None and experiment != "occlusion":
            raise InputError(f"experiment {experiment!r} needs a pattern, e.g. pattern='CACGTG' (--pattern CACGTG).")
        if experiment == "global-ism":
            return global_ism(model, background, pattern, position=_one(starts, "positions", experiment),
                              strand=strand, alphabet=alphabet, **common)
        if experiment == "embed":
            where = _one(starts, "positions", experiment)
            return ex.embed(model, background, pattern, position="random" if starts == [None] else where, **pat,
                            **common)
        if experiment == "multiple":
            return ex.multiple_copies(model, background, pattern, positions=starts, **pat, **common)
        if experiment == "spacing":
            first, second = _pair(pattern)
            return ex.spacing(model, background, first, second, position=_one(starts, "positions", experiment),
                              spacings=gaps, **pat, **common)
        if experiment == "position":
            return ex.positional_effect(model, background, pattern, positions=starts, **pat, **common)
        if experiment == "gc-bias":
            return ex.gc_bias(model, background, pattern, position=_one(starts, "positions", experiment),
                              gc_pattern=gc_pattern, gc_positions=gc_at, **pat, **common)
        if experiment == "stem-loop":
            return ex.stem_loop_test(model, background, pattern, stem=stem, **pat, **common)
        given = X if background.name in ("given", "observed") else None  # all sequences passed, not one
        return ex.occlusion(model, background, width=width, positions=starts, background=given, **common)

    effects = [one(background) for background in nulls]
    params = {"experiment": experiment, "targets": list(targets), "pattern": _describe(pattern),
              "motifs": [m.id for m in library], "positions": starts, "preset": preset, "spacings": gaps,
              "n_backgrounds": n_backgrounds, "null_filter": filt, "scores": _describe(scores),
              "stem": _describe(stem), "strand": strand, "kmer_size": kmer_size, "top": top,
              "gc_pattern": gc_pattern, "gc_positions": gc_at, "width": width, "batch_size": batch_size,
              "random_state": random_state}
    return _assemble(effects, experiment, list(model.output_names), params)


def robustness(model: Predictor, X: np.ndarray, *, nulls: Sequence[str] = PAPER_NULLS, **options: Any) -> GIAResult:
    """Run one GIA experiment on several null models at once (robustness to the choice of background).

    Koo et al. (2021), Discussion: "it would be prudent to test the robustness of the results across many
    different models of the approximate data distribution" (S1-S5 Figs use the seven nulls below).

    Parameters
    ----------
    model : Predictor
    X : ndarray of shape (N0, 4, L), float32
    nulls : sequence of str
        Null models. Default is the paper's seven: profile, shuffle, dinuc, quantile1..quantile4.
    **options
        Any option of :func:`gia` except ``null``.

    Returns
    -------
    GIAResult
        Its arrays have one entry per null along the first axis, in the order given.

    Raises
    ------
    InputError
        If ``null`` is also given, or as :func:`gia`.
    """
    if "null" in options:
        raise InputError("robustness takes the null models in nulls=, not null=.")
    return gia(model, X, null=list(nulls), **options)
