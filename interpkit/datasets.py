"""Labelled sequences for training: sequences + targets (or generated negatives), normalisation, splits.

:func:`read_labelled` turns files into a :class:`LabelledSequences` (one-hot ``X``, targets ``y``,
names and the task); :func:`split` makes seeded train/validation/test splits. Two ways to label:

- a targets TSV (one row per sequence, one column per target): binary, multi-label or regression, as
  in ExplaiNN's TSV datasets and ResidualBind's RNAcompete targets;
- positives against negatives (one target): dinucleotide-shuffled positives (ExplaiNN's
  ``fasta2explainn.py``, which calls BiasAway), GC-matched genome windows (ExplaiNN's
  ``match-seqs-by-gc.py``) or a FASTA of negatives.

Nothing here imports a deep-learning framework: a training plugin receives plain numpy arrays.
"""

from __future__ import annotations

import csv
import gzip
import math
import numbers
import os
import re
import warnings
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from interpkit.errors import InputError, InputTypeError, InterpkitWarning, first_line
from interpkit.sequences import (
    DNA,
    RNA,
    _existing_file,
    _parse_bed,
    dinucleotide_shuffle,
    one_hot_encode,
    open_genome,
    read_bed_windows,
    read_fasta,
    read_sequences,
)
from interpkit.validation import check_choice, check_one_hot, check_random_state, check_scalar

__all__ = ["NORMALISATIONS", "TASKS", "LabelledSequences", "gc_content", "gc_matched_windows", "read_labelled",
           "split"]

TASKS = ("binary", "multilabel", "regression")
NORMALISATIONS = ("zscore", "clip", "log")
_NEGATIVES = ("dinuc", "gc")
_FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
_MISSING = {"", "na", "nan", "n/a", "null", "none", "."}  # TSV cells read as NaN (case-insensitive)
_COORD = re.compile(r"^(?:.*::)?([^:\s]+):(\d+)-(\d+)(?:\([+-.]\))?$")  # chrom:start-end, as bedtools getfasta
_EXHAUSTIVE_MAX_BP = 20_000_000  # genomes up to this size are scanned window by window; larger ones are sampled
_RESIZE = "centre crop (start = n // 2 - length // 2) or centre pad with N (left = (length - n) // 2)"


def _show(items: list[str], k: int = 5) -> str:
    return ", ".join(map(repr, items[:k])) + (", ..." if len(items) > k else "")


# --- the dataset ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class LabelledSequences:
    """One-hot sequences with their targets: what :func:`read_labelled` returns and training consumes.

    Attributes
    ----------
    X : ndarray of shape (N, 4, L), float32
        One-hot sequences in ``alphabet`` order; an all-zero column is N (ambiguous base or padding).
    y : ndarray of shape (N, T), float32
        Targets: 0/1 for "binary" and "multilabel", real values for "regression" (after
        ``normalisation`` where one was applied). Never NaN.
    names : tuple of str
        N sequence names (FASTA ids, BED names or "chrom:start-end").
    targets : tuple of str
        T target (output) names.
    task : {"binary", "multilabel", "regression"}
        "binary": T == 1 and y in {0, 1}; "multilabel": T > 1 and y in {0, 1}; "regression": any
        finite values (0/1 included).
    alphabet : {"ACGT", "ACGU"}
        The order of axis 1 of ``X``. Default is "ACGT".
    normalisation : dict or None
        What was done to ``y`` (see :func:`read_labelled`, ``normalise``), JSON-serialisable, for
        training metadata: ``method``, ``targets``, ``formula`` (text), per-target ``mean`` and
        ``std`` of the final z-score, and ``clip_max`` (clip) or ``min`` (log), enough to map
        predictions back to the original scale. None when ``y`` is as read. Default is None.
    params : dict
        Where the data came from and how it was built (files, length handling, negatives, merged
        duplicates, dropped rows, seed, split), JSON-serialisable. Default is empty.

    Raises
    ------
    InputError, InputTypeError
        If the shapes disagree, ``X`` is not one-hot, ``y`` holds NaN or infinity, ``task`` or
        ``alphabet`` is unknown, or the labels do not fit ``task``.
    """

    X: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]
    targets: tuple[str, ...]
    task: str
    alphabet: str = DNA
    normalisation: Mapping[str, Any] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        X = np.asarray(self.X)
        if X.ndim == 3 and X.shape[0] == 0 and X.shape[1] == 4:  # an empty split (test=0)
            X = np.zeros(X.shape, dtype=np.float32)
        else:
            X = check_one_hot(X, "X")
        try:
            y = np.array(self.y, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"y must be a numeric array of shape (N, T): {exc}") from None
        names, targets = tuple(map(str, self.names)), tuple(map(str, self.targets))
        if y.ndim != 2 or y.shape[0] != X.shape[0]:
            raise InputError(f"y has shape {y.shape} but X holds {X.shape[0]} sequences; y must be (N, T) "
                             "with N matching X (use y[:, None] for a single target).")
        if len(names) != X.shape[0]:
            raise InputError(f"names has {len(names)} entries but X holds {X.shape[0]} sequences.")
        if len(targets) != y.shape[1] or not targets:
            raise InputError(f"targets has {len(targets)} names but y has {y.shape[1]} columns; name every "
                             "target (at least one).")
        check_choice(self.task, "task", TASKS)
        check_choice(self.alphabet, "alphabet", (DNA, RNA))
        if not np.isfinite(y).all():
            raise InputError("y holds NaN or infinite values; drop those sequences or fill the targets.")
        if self.task != "regression":
            _check_classes(y, self.task, names, targets)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "params", dict(self.params))

    def __len__(self) -> int:
        """N, the number of sequences."""
        return int(self.X.shape[0])

    @property
    def length(self) -> int:
        """L, the sequence length in bp."""
        return int(self.X.shape[2])

    def __repr__(self) -> str:
        norm = self.normalisation["method"] if self.normalisation else None
        return (f"LabelledSequences(N={len(self)}, L={self.length}, task={self.task!r}, targets={self.targets!r}, "
                f"alphabet={self.alphabet!r}, normalisation={norm!r})")

    def subset(self, index: Any) -> LabelledSequences:
        """The sequences selected by ``index``, in that order.

        Parameters
        ----------
        index : int, slice, array of int or array of bool of shape (N,)
            Which sequences to keep (numpy indexing rules; an int keeps one sequence).

        Returns
        -------
        LabelledSequences
            With the same targets, task, alphabet, normalisation and params.

        Raises
        ------
        InputError
            If ``index`` is out of range, a boolean mask of the wrong length, or not an index.
        """
        try:
            idx = np.atleast_1d(np.arange(len(self))[index])
        except (IndexError, TypeError, ValueError) as exc:
            raise InputError(f"index is not a valid index into {len(self)} sequences ({exc}); pass ints in "
                             f"[0, {len(self) - 1}], a slice or a boolean mask of length {len(self)}.") from None
        return replace(self, X=self.X[idx], y=self.y[idx], names=tuple(self.names[i] for i in idx))

    def with_reverse_complements(self) -> LabelledSequences:
        """Append the reverse complement of every sequence, with the same labels (data augmentation).

        Call it on the training split after :func:`split`, so that a sequence and its reverse
        complement never land in different splits.

        Returns
        -------
        LabelledSequences
            2N sequences: the originals, then ``X[:, ::-1, ::-1]`` (the reverse complement in ACGT
            order) named ``name + "(-)"``; ``y`` repeated.

        Raises
        ------
        InputError
            If ``alphabet`` is "ACGU": RNA is single-stranded, so its reverse complement is not
            the same molecule read from the other strand.
        """
        if self.alphabet == RNA:
            raise InputError("the sequences are RNA (alphabet 'ACGU'), which is single-stranded: a reverse "
                             "complement is a different molecule, not the same one read from the other strand; "
                             "train without reverse complements.")
        return replace(self, X=np.concatenate([self.X, self.X[:, ::-1, ::-1]]),
                       y=np.concatenate([self.y, self.y]), names=self.names + tuple(f"{n}(-)" for n in self.names),
                       params={**self.params, "reverse_complements": True})


def _check_classes(y: np.ndarray, task: str, names: tuple[str, ...], targets: tuple[str, ...],
                   what: str = "y") -> None:
    """Raise unless ``y`` fits a classification ``task`` (0/1 values; T == 1 for binary, T > 1 for multilabel)."""
    bad = np.argwhere((y != 0) & (y != 1))
    if bad.size:
        i, j = bad[0]
        raise InputError(f"task={task!r} needs 0/1 labels but {what} of sequence {names[i]!r}, target "
                         f"{targets[j]!r} is {y[i, j]:g}; pass task='regression' for real-valued targets.")
    if task == "binary" and y.shape[1] != 1:
        raise InputError(f"task='binary' needs one target but there are {y.shape[1]} ({_show(list(targets))}); "
                         "pass task='multilabel'.")
    if task == "multilabel" and y.shape[1] < 2:
        raise InputError(f"task='multilabel' needs more than one target but there is one ({targets[0]!r}); "
                         "pass task='binary'.")


# --- GC content and GC-matched genome windows ----------------------------------------------------


def gc_content(X: Any) -> np.ndarray:
    """Fraction of G and C among the called bases of each sequence.

    Parameters
    ----------
    X : array-like of shape (N, 4, L)
        One-hot sequences in order A, C, G, T (or A, C, G, U); all-zero (N) columns are not counted.

    Returns
    -------
    gc : ndarray of shape (N,), float64
        ``(#C + #G) / (#A + #C + #G + #T)`` in [0, 1]; NaN for a sequence with no called base.

    Raises
    ------
    InputTypeError, InputError
        If ``X`` is not one-hot (see ``check_one_hot``).
    """
    X = check_one_hot(X, "X")
    called = X.sum(axis=(1, 2), dtype=np.float64)
    gc = X[:, 1:3].sum(axis=(1, 2), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(called > 0, gc / np.maximum(called, 1), np.nan)


def _gc_bin(gc: np.ndarray, bins: int) -> np.ndarray:
    """Bin index of each GC fraction on ``bins`` equal bins of [0, 1] (np.histogram's edges and rules)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.clip(np.searchsorted(edges, gc, side="right") - 1, 0, bins - 1)


def _apportion(weights: np.ndarray, total: int, *, minimum: np.ndarray | None = None,
               cap: np.ndarray | None = None) -> np.ndarray:
    """Split ``total`` over groups in proportion to ``weights`` (largest remainder), each in [minimum, cap].

    The caller guarantees ``sum(minimum) <= total <= sum(cap)``.
    """
    weights = np.asarray(weights, dtype=np.int64)
    cap = np.full(weights.shape, total, dtype=np.int64) if cap is None else np.asarray(cap, dtype=np.int64)
    minimum = np.zeros_like(weights) if minimum is None else np.minimum(minimum, cap)
    quota = total * weights / max(int(weights.sum()), 1)
    alloc = np.clip(np.floor(quota).astype(np.int64), minimum, cap)
    while alloc.sum() < total:
        alloc[int(np.argmax(np.where(alloc < cap, quota - alloc, -np.inf)))] += 1
    while alloc.sum() > total:
        alloc[int(np.argmax(np.where(alloc > minimum, alloc - quota, -np.inf)))] -= 1
    return alloc


def _intervals(exclude: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``exclude`` (None, a BED path or (chrom, start, end) triples) -> per chromosome merged sorted (starts, ends)."""
    if exclude is None:
        triples: list[tuple[str, int, int]] = []
    elif isinstance(exclude, (str, os.PathLike)):
        triples = [(r[1], r[2], r[3]) for r in _parse_bed(_existing_file(exclude, "exclude BED"))]
    elif isinstance(exclude, Iterable):
        triples = []
        for k, item in enumerate(exclude):
            try:
                chrom, start, end = item
                start, end = int(start), int(end)
            except (TypeError, ValueError):
                raise InputError(f"exclude[{k}] is {item!r} but must be a (chrom, start, end) triple "
                                 "(0-based, half-open).") from None
            if start < 0 or end <= start:
                raise InputError(f"exclude[{k}] has start={start}, end={end}; need 0 <= start < end.")
            triples.append((str(chrom), start, end))
    else:
        raise InputTypeError(f"exclude must be None, a BED path or a list of (chrom, start, end), "
                             f"got {type(exclude).__name__}.")
    by_chrom: dict[str, list[tuple[int, int]]] = {}
    for chrom, start, end in triples:
        by_chrom.setdefault(chrom, []).append((start, end))
    merged = {}
    for chrom, ivs in by_chrom.items():
        ivs.sort()
        out = [list(ivs[0])]
        for start, end in ivs[1:]:
            if start <= out[-1][1]:
                out[-1][1] = max(out[-1][1], end)
            else:
                out.append([start, end])
        arr = np.array(out, dtype=np.int64)
        merged[chrom] = (arr[:, 0], arr[:, 1])
    return merged


def _overlapping(starts: np.ndarray, length: int, ivs: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Whether each window [s, s + length) overlaps one of the merged, sorted intervals ``ivs``."""
    if ivs is None:
        return np.zeros(starts.shape, dtype=bool)
    iv_start, iv_end = ivs
    j = np.searchsorted(iv_start, starts + length, side="left") - 1  # last interval starting before the window ends
    return (j >= 0) & (iv_end[np.maximum(j, 0)] > starts)


_CODES = np.full(256, 4, dtype=np.uint8)  # A/C/G/T/U (any case) -> 0-3, everything else -> 4 (N)
for _code, _letters in enumerate(("Aa", "Cc", "Gg", "TtUu")):
    _CODES[[ord(c) for c in _letters]] = _code


def gc_matched_windows(reference_X: Any, genome: str | os.PathLike, *, n: int, length: int, exclude: Any = None,
                       bins: int = 20, random_state: Any = 0) -> tuple[list[str], np.ndarray]:
    """Genome windows whose GC content follows that of reference sequences (GC-matched negatives).

    The reference GC fractions (:func:`gc_content`) are binned on ``bins`` equal bins of [0, 1]
    (``numpy.histogram``'s edges); bin b gets ``n * count_b / count`` windows, rounded by largest
    remainder so that they sum to ``n``. Each bin's windows are drawn uniformly, without
    replacement, from the genome windows of ``length`` bp with that GC fraction, no N (or other
    non-ACGT letter), no overlap with ``exclude``. Windows may overlap each other. As ExplaiNN's
    ``match-seqs-by-gc.py`` (which matches on rounded GC percentages), but stratified on bins and
    with exclusion.

    Genomes up to 20 Mb are scanned at every position, so the draw is exact and a shortfall is
    certain; larger genomes are sampled at uniformly random positions (chromosomes weighted by
    their number of windows), up to ``max(200 * n, 200000)`` draws.

    Parameters
    ----------
    reference_X : array-like of shape (N, 4, L)
        One-hot reference sequences (e.g. the positives). Sequences with no called base are ignored.
    genome : path-like
        Genome FASTA (plain or bgzip), read with pyfaidx; every record is a candidate chromosome.
        A missing or stale ``.fai`` is built in a temporary folder, never beside the genome.
    n : int
        Number of windows.
    length : int
        Window length in bp.
    exclude : None, path-like or iterable of (chrom, start, end)
        Intervals (0-based, half-open; a BED file or triples) that no window may overlap, e.g. the
        positives' peaks. Chromosomes the genome lacks are ignored. Default is None.
    bins : int
        Number of GC bins on [0, 1]. Fewer bins match more coarsely but need fewer windows of
        extreme GC. Default is 20 (5 % GC each).
    random_state : None, int >= 0 or numpy.random.Generator
        Seed. Default is 0.

    Returns
    -------
    names : list of str
        "chrom:start-end" (0-based, half-open, as bedtools), sorted by chromosome (genome order)
        then start.
    X : ndarray of shape (n, 4, length), float32
        The windows' one-hot sequences (forward strand, ACGT order), in the order of ``names``.

    Raises
    ------
    MissingFileError
        If ``genome`` (or an ``exclude`` BED) does not exist.
    InputError, InputTypeError
        If an argument is invalid, every reference sequence is all N, or the genome cannot supply
        enough windows in some GC bin (the message names the bin, what was found and the fixes:
        fewer windows, fewer bins, a larger genome or less excluded).
    """
    ref_gc = gc_content(reference_X)
    check_scalar(n, "n", int, min_val=1)
    check_scalar(length, "length", int, min_val=1)
    check_scalar(bins, "bins", int, min_val=1)
    rng = check_random_state(random_state)
    ivs = _intervals(exclude)
    ref_gc = ref_gc[~np.isnan(ref_gc)]
    if ref_gc.size == 0:
        raise InputError("reference_X holds no called base (every sequence is all N); GC content is undefined.")
    quota = _apportion(np.bincount(_gc_bin(ref_gc, bins), minlength=bins), n)
    edges = np.linspace(0.0, 1.0, bins + 1)
    with open_genome(genome) as fasta:
        chroms = list(fasta.keys())
        sizes = np.array([len(fasta[c]) for c in chroms], dtype=np.int64)
        n_starts = np.maximum(sizes - length + 1, 0)
        if n_starts.sum() == 0:
            raise InputError(f"genome {genome} has no window of {length} bp (its longest record has "
                             f"{sizes.max(initial=0)} bp); pass a larger genome or a smaller length.")
        if sizes.sum() <= _EXHAUSTIVE_MAX_BP:
            chosen, shortfall = _scan_windows(fasta, chroms, length, bins, quota, ivs, rng)
            how = "in the whole genome"
        else:
            chosen, shortfall, draws = _sample_windows(fasta, chroms, n_starts, length, bins, quota, ivs, rng)
            how = f"in {draws} random draws"
        if shortfall:
            b, found = shortfall[0]
            more = f" (and {len(shortfall) - 1} other GC bins)" if len(shortfall) > 1 else ""
            raise InputError(
                f"genome {genome} has only {found} windows of {length} bp with GC in [{edges[b]:.2f}, "
                f"{edges[b + 1]:.2f}), no N and outside the excluded intervals {how}, but {quota[b]} are needed to "
                f"match the reference GC distribution{more}; ask for fewer windows, use fewer GC bins, "
                "exclude less or pass a larger genome.")
        chosen.sort()
        names = [f"{chroms[c]}:{s}-{s + length}" for c, s in chosen]
        seqs = [fasta[chroms[c]][s:s + length] for c, s in chosen]
    return names, one_hot_encode(seqs, names=names)


def _scan_windows(fasta: Any, chroms: list[str], length: int, bins: int, quota: np.ndarray,
                  ivs: Mapping[str, Any], rng: np.random.Generator) -> tuple[list[tuple[int, int]], list]:
    """Every valid window of every chromosome, binned by GC; draw each bin's quota without replacement."""
    found: list[list[np.ndarray]] = [[] for _ in range(bins)]  # per bin: arrays of (chrom index, start)
    count_bin = _gc_bin(np.arange(length + 1) / length, bins)  # GC bin of a window holding k G/C
    for ci, chrom in enumerate(chroms):
        seq = fasta[chrom][:]
        if len(seq) < length:
            continue
        codes = _CODES[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
        n_cum = np.concatenate([[0], np.cumsum(codes == 4, dtype=np.int32)])
        starts = np.flatnonzero(n_cum[length:] == n_cum[:-length])  # windows without N
        del n_cum
        starts = starts[~_overlapping(starts, length, ivs.get(chrom))]
        gc_cum = np.concatenate([[0], np.cumsum((codes == 1) | (codes == 2), dtype=np.int32)])
        b = count_bin[gc_cum[starts + length] - gc_cum[starts]]
        for k in np.unique(b):
            if quota[k]:
                found[k].append(np.stack([np.full(np.sum(b == k), ci), starts[b == k]], axis=1))
    chosen, shortfall = [], []
    for k in np.flatnonzero(quota):
        pool = np.concatenate(found[k]) if found[k] else np.zeros((0, 2), dtype=np.int64)
        if len(pool) < quota[k]:
            shortfall.append((int(k), len(pool)))
            continue
        chosen += [(int(c), int(s)) for c, s in pool[rng.choice(len(pool), quota[k], replace=False)]]
    return chosen, shortfall


def _sample_windows(fasta: Any, chroms: list[str], n_starts: np.ndarray, length: int, bins: int, quota: np.ndarray,
                    ivs: Mapping[str, Any], rng: np.random.Generator) -> tuple[list[tuple[int, int]], list, int]:
    """Random windows (uniform over all window positions), kept while their GC bin still needs some."""
    need = quota.copy()
    budget, draws = max(200 * int(quota.sum()), 200_000), 0
    taken: set[tuple[int, int]] = set()
    found = np.zeros(bins, dtype=np.int64)
    p = n_starts / n_starts.sum()
    while need.sum() and draws < budget:
        m = int(min(budget - draws, max(1000, 4 * need.sum())))
        cis = rng.choice(len(chroms), size=m, p=p)
        starts = (rng.random(m) * n_starts[cis]).astype(np.int64)
        draws += m
        keep = np.ones(m, dtype=bool)
        for ci in np.unique(cis):
            at = cis == ci
            keep[at] = ~_overlapping(starts[at], length, ivs.get(chroms[ci]))
        for ci, s in zip(cis[keep].tolist(), starts[keep].tolist()):
            if (ci, s) in taken:
                continue
            codes = _CODES[np.frombuffer(fasta[chroms[ci]][s:s + length].encode("ascii", "replace"), dtype=np.uint8)]
            if (codes == 4).any():
                continue
            k = int(_gc_bin(np.array([np.count_nonzero((codes == 1) | (codes == 2)) / length]), bins)[0])
            found[k] += 1
            if need[k]:
                need[k] -= 1
                taken.add((ci, s))
    shortfall = [(int(k), int(found[k])) for k in np.flatnonzero(need)]
    return sorted(taken), shortfall, draws


# --- reading -------------------------------------------------------------------------------------


@dataclass
class _Records:
    """Sequences read from one source: names, raw strings (FASTA) or a one-hot array (.npy), their lengths."""

    names: list[str]
    raw: list[str] | np.ndarray
    lengths: np.ndarray
    source: str = ""  # "<what> file <path>", for error messages


@dataclass
class _Encoded:
    """Sequences at the common length: one-hot X and the length of each record's own bases (``core``)."""

    names: list[str]
    X: np.ndarray
    core: np.ndarray
    cropped: int = 0
    padded: int = 0


def _is_fasta(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in _FASTA_SUFFIXES


def _stem(path: Any) -> str:
    name = Path(path).name
    for suffix in (".gz", *_FASTA_SUFFIXES, ".npy", ".bed"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or "bound"


def _read_records(path: Any, what: str, alphabet: str) -> _Records:
    path = _existing_file(path, what)
    if _is_fasta(path):
        names, seqs = read_fasta(path)
        return _Records(names, seqs, np.array([len(s) for s in seqs]), f"{what} file {path}")
    names, X = read_sequences(path, alphabet=alphabet)  # .npy, or an error listing the accepted suffixes
    return _Records(names, X, np.full(len(X), X.shape[2]))


def _common_length(sources: list[tuple[str, _Records]], length: int | None) -> int:
    if length is not None:
        return length
    lengths = np.concatenate([r.lengths for _, r in sources])
    if (lengths == lengths[0]).all():
        return int(lengths[0])
    first = next((what, r.names[i], int(n)) for what, r in sources for i, n in enumerate(r.lengths))
    other = next((what, r.names[i], int(n)) for what, r in sources for i, n in enumerate(r.lengths) if n != first[2])
    raise InputError(f"sequences differ in length: {first[0]} record {first[1]!r} has {first[2]} bp but {other[0]} "
                     f"record {other[1]!r} has {other[2]} bp; pass length=L to centre-crop longer records and "
                     "centre-pad shorter ones with N to L bp.")


def _encode(rec: _Records, length: int, alphabet: str) -> _Encoded:
    """Centre-crop or centre-pad every record to ``length`` and one-hot encode (see ``_RESIZE``)."""
    n = rec.lengths
    lo = n // 2 - length // 2  # crop start (ExplaiNN's _resize_sequence)
    left = (length - n) // 2  # pad on the left (ResidualBind's centre zero-padding)
    if isinstance(rec.raw, np.ndarray):
        X = rec.raw
        if X.shape[2] > length:
            X = X[:, :, lo[0]:lo[0] + length]
        elif X.shape[2] < length:
            X = np.pad(X, ((0, 0), (0, 0), (left[0], length - X.shape[2] - left[0])))
        X = np.ascontiguousarray(X, dtype=np.float32)
    else:
        seqs = [s[lo[i]:lo[i] + length] if n[i] > length else "N" * left[i] + s + "N" * (length - n[i] - left[i])
                for i, s in enumerate(rec.raw)]
        try:
            X = one_hot_encode(seqs, alphabet=alphabet, names=rec.names)
        except InputError as exc:
            raise InputError(f"{rec.source}: {exc}") from None
    return _Encoded(list(rec.names), X, np.minimum(n, length), int((n > length).sum()), int((n < length).sum()))


def _read_targets(path: Any) -> tuple[list[str], np.ndarray, list[str], list[int]]:
    """Targets TSV -> (row names, values (R, T) float64 with NaN for missing cells, target names, row line numbers)."""
    path = _existing_file(path, "targets")
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
            rows = [(line, [c.strip() for c in row]) for line, row in
                    enumerate(csv.reader(handle, delimiter="\t"), 1) if any(c.strip() for c in row)]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, zlib.error) as exc:
        raise InputError(f"targets file {path} could not be read as tab-separated text ({first_line(exc)}); pass a "
                         "UTF-8 text file (or .gz): a header row, then one row per sequence.") from None
    if not rows:
        raise InputError(f"targets file {path} is empty; it needs a header row (name, then one column per target) "
                         "and one row per sequence.")
    header = rows[0][1]
    if len(header) < 2:
        raise InputError(f"targets file {path} has a header with {len(header)} column ({header[0]!r}); it needs a "
                         "name column then one column per target, separated by tabs.")
    target_names = header[1:]
    try:
        looks_like_data = bool([float(c) for c in target_names])
    except ValueError:
        looks_like_data = False
    if looks_like_data:
        raise InputError(f"targets file {path} starts with {_show(header, 3)}, which looks like data, not a header; "
                         "add a header row: the name column's title, then one name per target.")
    if "" in target_names or len(set(target_names)) != len(target_names):
        raise InputError(f"targets file {path} header has empty or repeated target names ({_show(target_names)}); "
                         "give every target column a distinct name.")
    names, values, seen = [], [], {}
    lines = [line for line, _ in rows[1:]]
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise InputError(f"targets file {path} line {line} has {len(row)} fields but the header has "
                             f"{len(header)}; every row needs the name and one value per target, tab-separated.")
        if row[0] in seen:
            raise InputError(f"targets file {path} has two rows for {row[0]!r} (lines {seen[row[0]]} and {line}); "
                             "keep one row per sequence.")
        seen[row[0]] = line
        vals = []
        for name, cell in zip(target_names, row[1:]):
            if cell.lower() in _MISSING:
                vals.append(math.nan)
                continue
            try:
                vals.append(float(cell))
            except ValueError:
                raise InputError(f"targets file {path} line {line}, column {name!r}: {cell!r} is not a number; "
                                 "targets must be numbers (empty or NA for missing).") from None
            if not math.isfinite(vals[-1]):
                raise InputError(f"targets file {path} line {line}, column {name!r} is {cell!r}; targets must be "
                                 "finite.")
        names.append(row[0])
        values.append(vals)
    if not names:
        raise InputError(f"targets file {path} has a header but no rows; add one row per sequence.")
    return names, np.array(values, dtype=np.float64), target_names, lines


def _align_targets(seq_names: list[str], path: Any) -> tuple[np.ndarray, list[str]]:
    """The TSV's values in the order of ``seq_names``, which every row must match one to one."""
    row_names, values, target_names, lines = _read_targets(path)
    dup = sorted({n for n in seq_names if seq_names.count(n) > 1}) if len(set(seq_names)) != len(seq_names) else []
    if dup:
        raise InputError(f"sequence names repeat ({_show(dup)}), so targets cannot be matched by name; give every "
                         "sequence a distinct name.")
    where = {n: i for i, n in enumerate(row_names)}
    missing = [n for n in seq_names if n not in where]
    known = set(seq_names)
    extra = [i for i, n in enumerate(row_names) if n not in known]
    if extra:
        without = f"; sequences without a row: {_show(missing, 3)}" if missing else ""
        raise InputError(f"targets file {path} line {lines[extra[0]]}: row {row_names[extra[0]]!r} matches no "
                         f"sequence ({len(extra)} of {len(row_names)} rows match none{without}); name each row by a "
                         f"FASTA id or BED name (e.g. {_show(seq_names, 3)}), or remove it.")
    if missing:
        raise InputError(f"targets file {path} has no row for {len(missing)} of the {len(seq_names)} sequences "
                         f"(first: {_show(missing)}); add one row per sequence, named by its FASTA id or BED name.")
    return values[[where[n] for n in seq_names]], target_names


def _symbols(X: np.ndarray) -> np.ndarray:
    return np.where(X.any(axis=1), X.argmax(axis=1), 4).astype(np.uint8)


def _merge_duplicates(X: np.ndarray, y: np.ndarray, regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the first copy of each distinct one-hot sequence (in order) and the merged labels.

    The merged label is the maximum of the copies' labels (classification) or their mean (regression).
    """
    if len(X) < 2:
        return np.arange(len(X)), y
    _, first, inverse = np.unique(_symbols(X), axis=0, return_index=True, return_inverse=True)
    if len(first) == len(X):
        return np.arange(len(X)), y
    inverse = inverse.reshape(-1)
    if regression:
        agg = np.zeros((len(first), y.shape[1]))
        np.add.at(agg, inverse, y)
        agg /= np.bincount(inverse)[:, None]
    else:
        agg = np.full((len(first), y.shape[1]), -np.inf)
        np.maximum.at(agg, inverse, y)
    order = np.argsort(first)  # groups in the order of their first copy
    return first[order], agg[order]


def _normalise(y: np.ndarray, method: str, targets: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """ResidualBind-style target normalisation (each column separately); returns y and the record."""
    record: dict[str, Any] = {"method": method, "targets": list(targets)}
    if method == "clip":
        clip_max = 4 * y.std(axis=0)
        y = np.minimum(y, clip_max)
        record["clip_max"] = clip_max.tolist()
        record["formula"] = "(min(y, clip_max) - mean) / std, clip_max = 4 * std(y)"
    elif method == "log":
        low = y.min(axis=0)
        y = np.log(y - low + 1)
        record["min"] = low.tolist()
        record["formula"] = "(log(y - min + 1) - mean) / std"
    else:
        record["formula"] = "(y - mean) / std"
    mean, std = y.mean(axis=0), y.std(axis=0)
    if (std == 0).any():
        j = int(np.argmax(std == 0))
        raise InputError(f"target {targets[j]!r} is constant after normalise={method!r}, so it cannot be "
                         "z-scored; remove the column or pass normalise=None.")
    record["mean"], record["std"] = mean.tolist(), std.tolist()
    return (y - mean) / std, record


def _negative_kind(negatives: Any) -> str:
    if isinstance(negatives, str) and negatives in _NEGATIVES:
        return negatives
    if isinstance(negatives, str) and not Path(negatives).suffix and not Path(negatives).exists():
        raise InputError(f"negatives == {negatives!r}, must be 'dinuc' (dinucleotide shuffles), 'gc' (GC-matched "
                         "genome windows) or the path of a FASTA/.npy file of negatives.")
    if not isinstance(negatives, (str, os.PathLike)):
        raise InputTypeError(f"negatives must be 'dinuc', 'gc' or a path, got {type(negatives).__name__}.")
    return "file"


def _dinuc_negatives(pos: _Encoded, n_neg: int, rng: np.random.Generator) -> _Encoded:
    """Dinucleotide shuffles of the positives' own bases (padding stays at the ends), ``n_neg`` in all."""
    n_pos, length = pos.X.shape[0], pos.X.shape[2]
    reps = -(-n_neg // n_pos)
    shuf = np.zeros((n_pos, reps, 4, length), dtype=np.float32)
    for core in np.unique(pos.core):  # one call per record length, so padding N is never shuffled inside
        idx = np.flatnonzero(pos.core == core)
        left = (length - core) // 2
        shuf[idx, :, :, left:left + core] = dinucleotide_shuffle(
            pos.X[idx, :, left:left + core], n=reps, random_state=int(rng.integers(2**63)))
    last = np.sort(rng.choice(n_pos, n_neg - (reps - 1) * n_pos, replace=False))
    picks = [(r, i) for r in range(reps - 1) for i in range(n_pos)] + [(reps - 1, i) for i in last]
    names = [f"{pos.names[i]}::shuf{r + 1 if r else ''}" for r, i in picks]
    X = shuf[[i for _, i in picks], [r for r, _ in picks]]
    return _Encoded(names, X, pos.core[[i for _, i in picks]])


def _positive_intervals(pos_names: list[str], bed: Any, length: int) -> list[tuple[str, int, int]]:
    """Intervals GC-matched negatives must avoid: BED intervals and their windows, and "chrom:start-end" names."""
    out = []
    if bed is not None:
        for _, chrom, start, end, _, _ in _parse_bed(Path(bed)):
            lo = (start + end) // 2 - length // 2
            out.append((chrom, min(start, lo), max(end, lo + length)))
    for name in pos_names:
        m = _COORD.match(name)
        if m and int(m[3]) > int(m[2]):
            out.append((m[1], int(m[2]), int(m[3])))
    return out


def read_labelled(sequences: str | os.PathLike | None = None, *, targets: str | os.PathLike | None = None,
                  negatives: str | os.PathLike | None = None, bed: str | os.PathLike | None = None,
                  genome: str | os.PathLike | None = None, length: int | None = None, alphabet: str = DNA,
                  task: str | None = None, n_negatives: int | None = None, normalise: str | None = None,
                  random_state: Any = 0, duplicates: str = "merge") -> LabelledSequences:
    """Read labelled sequences for training from FASTA/BED and a targets TSV, or positives and negatives.

    Sequences come from ``sequences`` (FASTA or ``.npy``) or from ``bed`` + ``genome``; labels come
    from ``targets`` (a TSV) or from ``negatives`` (positives get 1, negatives 0). Steps, in order:
    read and bring to one length; align targets and drop regression rows with missing targets; merge
    duplicate sequences; make negatives; merge again; check the task; normalise.

    Parameters
    ----------
    sequences : path-like or None
        FASTA (``.fa``, ``.fasta``, ``.fna``, ``.fas``, each optionally ``.gz``; soft-masked lower
        case is fine) or ``.npy`` one-hot (N, 4, L) (named "seq0", "seq1", ...). Exactly one of
        ``sequences`` and ``bed`` is required. Default is None.
    targets : path-like or None
        Tab-separated file (optionally ``.gz``) with a header row: the first column holds sequence
        names (FASTA ids or BED names), every other column one target named by its header. Row order
        is free, but every sequence needs exactly one row and every row a sequence. Empty cells and
        NA/NaN/N/A/null/none/"." are missing: for regression, sequences with any missing target are
        dropped with an :class:`InterpkitWarning` (as ResidualBind drops NaN probes); for 0/1
        targets a missing one is an error. Default is None.
    negatives : {"dinuc", "gc"}, path-like or None
        Only without ``targets``; one target, named after the ``sequences``/``bed`` file (its name
        without suffixes), positives 1, negatives 0. "dinuc": dinucleotide shuffles of the positives
        (:func:`interpkit.dinucleotide_shuffle` of each record's own bases, so padding N stay at the
        ends), named "<name>::shuf" ("::shuf2", ... for further rounds when ``n_negatives`` exceeds
        the positives), as ExplaiNN's ``fasta2explainn.py``. "gc": genome windows whose GC content
        matches the positives' (:func:`gc_matched_windows`, 20 bins, needs ``genome``), avoiding the
        BED intervals and their windows (with ``bed``) and positives named "chrom:start-end". A
        path: a FASTA/``.npy`` of negatives, brought to the same length. Default is None.
    bed : path-like or None
        BED intervals; the sequences are ``length``-bp windows centred on them
        (:func:`interpkit.read_bed_windows`, "-" strand reverse-complemented). Needs ``genome`` and
        ``length``. Default is None.
    genome : path-like or None
        Genome FASTA for ``bed`` and ``negatives="gc"``. Default is None.
    length : int or None
        Sequence length L in bp. Records of another length are centre-cropped (start
        ``n // 2 - L // 2``, as ExplaiNN) or centre-padded with N, i.e. all-zero columns
        (``(L - n) // 2`` on the left, the rest on the right, as ResidualBind). None: the records'
        common length, an error if they differ. Default is None.
    alphabet : {"ACGT", "ACGU"}
        Order of the one-hot axis; "ACGU" reads RNA. Default is "ACGT".
    task : {"binary", "multilabel", "regression"} or None
        None detects it: all targets 0/1 -> "binary" (one target) or "multilabel"; otherwise
        "regression". "regression" may be forced on 0/1 data; the others need 0/1 targets, and one
        ("binary") or several ("multilabel") targets. Default is None.
    n_negatives : int or None
        Number of negatives; only with ``negatives``. None: as many as positives for "dinuc" and
        "gc"; every record of a negatives file (a smaller number draws a seeded subset). Default is
        None.
    normalise : {"zscore", "clip", "log"} or None
        Regression only, per target, on all sequences before splitting. "zscore": ``(y - mean) / std``.
        "clip": ResidualBind's ``clip_norm``: values above ``4 * std(y)`` (4 std, not mean + 4 std)
        are set to it, then z-score. "log": ResidualBind's ``log_norm``: ``log(y - min(y) + 1)``, then
        z-score. std is the population std (ddof 0). The result's ``normalisation`` records the
        constants. Default is None.
    random_state : None, int >= 0 or numpy.random.Generator
        Seed for shuffles, window draws and subsets. Default is 0.
    duplicates : {"merge", "keep"}
        "merge": identical sequences (same one-hot, so case is ignored) become one, named after its
        first copy, labelled with the maximum (classification, as ExplaiNN's
        ``groupby(seq).max()``) or the mean (regression) of the copies, with an
        :class:`InterpkitWarning` giving the count. Positives are merged before negatives are made,
        so a negative identical to a positive becomes that positive (label 1). "keep": no merging.
        Default is "merge".

    Returns
    -------
    LabelledSequences
        ``X`` (N, 4, L) float32, ``y`` (N, T) float32; positives first when negatives are made.
        ``params`` records the inputs, length handling, counts and seed.

    Raises
    ------
    MissingFileError
        If a named file does not exist.
    InputError, InputTypeError
        If the arguments do not fit together (each message names them and the fix), a file is
        malformed, lengths differ without ``length``, names and TSV rows do not match one to one,
        labels do not fit ``task``, a normalisation is asked for classification, a target is
        constant, or the genome cannot supply GC-matched windows.
    """
    alphabet = check_choice(alphabet, "alphabet", (DNA, RNA))
    if task is not None:
        check_choice(task, "task", TASKS)
    if normalise is not None:
        check_choice(normalise, "normalise", NORMALISATIONS)
    check_choice(duplicates, "duplicates", ("merge", "keep"))
    if length is not None:
        check_scalar(length, "length", int, min_val=1)
    rng = check_random_state(random_state)
    if (sequences is None) == (bed is None):
        raise InputError("pass exactly one of sequences= (a FASTA or .npy file) and bed= (with genome= and length=); "
                         f"got {'both' if bed is not None else 'neither'}.")
    if bed is not None and (genome is None or length is None):
        raise InputError(f"bed= needs genome= (the FASTA to cut windows from) and length= (window bp); "
                         f"got genome={genome!r}, length={length!r}.")
    if (targets is None) == (negatives is None):
        raise InputError("pass exactly one of targets= (a TSV of labels) and negatives= ('dinuc', 'gc' or a FASTA "
                         f"of negatives); got {'both' if targets is not None else 'neither'}.")
    kind = _negative_kind(negatives) if negatives is not None else None
    if genome is not None and bed is None and kind != "gc":
        raise InputError("genome= is only read with bed= or negatives='gc'; drop it or pass one of those.")
    if kind == "gc" and genome is None:
        raise InputError("negatives='gc' draws GC-matched windows from a genome; pass genome= (a FASTA).")
    if n_negatives is not None:
        if kind is None:
            raise InputError("n_negatives is only used with negatives=; drop it or pass negatives=.")
        check_scalar(n_negatives, "n_negatives", int, min_val=1)
    params: dict[str, Any] = {
        "sequences": None if sequences is None else str(sequences), "bed": None if bed is None else str(bed),
        "genome": None if genome is None else str(genome), "targets": None if targets is None else str(targets),
        "negatives": None if negatives is None else str(negatives), "alphabet": alphabet, "duplicates": duplicates,
        "random_state": random_state if isinstance(random_state, numbers.Integral) else None}

    # 1. sequences, at one length
    neg_records = _read_records(negatives, "negatives", alphabet) if kind == "file" else None
    if bed is not None:
        names, X = read_bed_windows(bed, genome, length=length, alphabet=alphabet)
        pos = _Encoded(names, X, np.full(len(X), length))
        L = length
    else:
        pos_records = _read_records(sequences, "sequences", alphabet)
        sources = [("sequences", pos_records)] + ([("negatives", neg_records)] if neg_records else [])
        L = _common_length(sources, length)
        pos = _encode(pos_records, L, alphabet)
    neg_file = _encode(neg_records, L, alphabet) if neg_records else None
    params.update(length=L, resize=_RESIZE, cropped=pos.cropped + (neg_file.cropped if neg_file else 0),
                  padded=pos.padded + (neg_file.padded if neg_file else 0))
    merged = 0

    def merge(X, y, regression):
        """Indices kept and labels after merging duplicates (or all of them with duplicates='keep')."""
        nonlocal merged
        if duplicates == "keep":
            return np.arange(len(X)), y
        keep, y = _merge_duplicates(X, y, regression)
        merged += len(X) - len(keep)
        return keep, y

    # 2. labels
    if targets is not None:
        y, target_names = _align_targets(pos.names, targets)
        regression = task == "regression" or not np.isin(y[~np.isnan(y)], (0, 1)).all()
        missing = np.isnan(y).any(axis=1)
        if missing.any() and not regression:
            i, j = np.argwhere(np.isnan(y))[0]
            raise InputError(f"targets file {targets}: sequence {pos.names[i]!r} has no value for target "
                             f"{target_names[j]!r}, and 0/1 labels cannot be missing; fill in the label or remove "
                             "the row and the sequence.")
        X, names = pos.X, pos.names
        if missing.any():
            if missing.all():
                raise InputError(f"targets file {targets}: every sequence misses a value for some target, so no "
                                 "sequence is left; use one TSV per target, or fill the missing values.")
            warnings.warn(f"dropped {int(missing.sum())} of {len(y)} sequences with a missing target in {targets} "
                          f"(first: {_show([n for n, m in zip(names, missing) if m], 3)}).", InterpkitWarning,
                          stacklevel=2)
            X, y, names = X[~missing], y[~missing], [n for n, m in zip(names, missing) if not m]
        params["dropped_missing"] = int(missing.sum())
        keep, y = merge(X, y, regression)
        X, names = X[keep], [names[i] for i in keep]
    else:
        target_names = [_stem(sequences if sequences is not None else bed)]
        keep, _ = merge(pos.X, np.ones((len(pos.X), 1)), False)
        pos = _Encoded([pos.names[i] for i in keep], pos.X[keep], pos.core[keep])
        n_pos = len(pos.X)
        if kind == "file":
            neg = neg_file
            if n_negatives is not None:
                if n_negatives > len(neg.X):
                    raise InputError(f"n_negatives == {n_negatives} but negatives file {negatives} holds "
                                     f"{len(neg.X)} records; pass n_negatives <= {len(neg.X)} or more negatives.")
                keep = np.sort(rng.choice(len(neg.X), n_negatives, replace=False))
                neg = _Encoded([neg.names[i] for i in keep], neg.X[keep], neg.core[keep])
        elif kind == "dinuc":
            neg = _dinuc_negatives(pos, n_negatives or n_pos, rng)
        else:
            exclude = _positive_intervals(pos.names if bed is None else [], bed, L)
            neg_names, neg_X = gc_matched_windows(pos.X, genome, n=n_negatives or n_pos, length=L, exclude=exclude,
                                                  random_state=rng)
            neg = _Encoded(neg_names, neg_X, np.full(len(neg_X), L))
        params.update(n_positives=n_pos, n_negatives=len(neg.X))
        X = np.concatenate([pos.X, neg.X])
        y = np.concatenate([np.ones((n_pos, 1)), np.zeros((len(neg.X), 1))])
        names = pos.names + neg.names
        keep, y = merge(X, y, False)
        X, names = X[keep], [names[i] for i in keep]
    params["merged_duplicates"] = merged
    if merged:
        rule = "mean" if targets is not None and regression else "max"
        warnings.warn(f"merged {merged} sequences that repeat an earlier one into it (first name kept, label = the "
                      f"{rule} of the copies); pass duplicates='keep' to keep them.", InterpkitWarning, stacklevel=2)

    # 3. task and normalisation
    is01 = bool(np.isin(y, (0, 1)).all())
    if task is None:
        task = ("binary" if y.shape[1] == 1 else "multilabel") if is01 else "regression"
    elif task != "regression":
        _check_classes(y, task, tuple(names), tuple(target_names), what="the target")
    normalisation = None
    if normalise is not None:
        if task != "regression":
            raise InputError(f"normalise={normalise!r} applies to regression targets but the task is {task!r}; "
                             "drop normalise= (or pass task='regression').")
        y, normalisation = _normalise(y.astype(np.float64), normalise, target_names)
    params.update(n=len(names), task=task)
    return LabelledSequences(X, y.astype(np.float32), tuple(names), tuple(target_names), task, alphabet,
                             normalisation, params)


# --- splitting -----------------------------------------------------------------------------------


def _split_sizes(sizes: np.ndarray, total: int, minimum: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Proportional split sizes with at least ``minimum`` and at most ``cap`` per class, where feasible."""
    minimum = minimum if minimum.sum() <= total else None
    cap = np.maximum(cap, 0)
    cap = cap if cap.sum() >= total and (minimum is None or (minimum <= cap).all()) else sizes
    return _apportion(sizes, total, minimum=minimum, cap=cap)


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def split(data: LabelledSequences, *, valid: float = 0.1, test: float = 0.1, random_state: Any = 0,
          stratify: bool = True) -> tuple[LabelledSequences, LabelledSequences, LabelledSequences]:
    """Seeded train/validation/test split, stratified on the labels for classification.

    Split sizes are ``round(valid * N)`` and ``round(test * N)`` (at least 1 when the fraction is
    above 0); train gets the rest. With ``stratify`` each class (binary) or label combination
    (multilabel; combinations with fewer than 3 sequences pooled) is split in proportion, sizes
    rounded by largest remainder, and every class with at least 3 sequences gets at least one
    sequence in each split. Regression is never stratified. ExplaiNN splits 80/10/10 with
    scikit-learn's ``train_test_split`` (seed 1714); the fractions here default to the same.

    Parameters
    ----------
    data : LabelledSequences
    valid : float
        Fraction of sequences for validation, in (0, 1). Default is 0.1.
    test : float
        Fraction for test, in [0, 1); 0 gives an empty test set. ``valid + test < 1``. Default is 0.1.
    random_state : None, int >= 0 or numpy.random.Generator
        Seed. Default is 0.
    stratify : bool
        Whether to stratify classification data. Default is True.

    Returns
    -------
    train, valid, test : LabelledSequences
        Disjoint subsets covering ``data``, each in the original order; ``params["split"]`` names
        the split.

    Raises
    ------
    InputTypeError
        If ``data`` is not a LabelledSequences or a fraction is not a number.
    InputError
        If a fraction is out of range, a split would be empty, classification data has one class
        only, or (binary) the train, validation or test split would lack a class; the message says
        which fraction or data to change.
    """
    if not isinstance(data, LabelledSequences):
        raise InputTypeError(f"data must be a LabelledSequences (from read_labelled), got {type(data).__name__}.")
    valid = check_scalar(valid, "valid", (float, int))
    test = check_scalar(test, "test", (float, int))
    if not 0 < valid < 1:
        raise InputError(f"valid == {valid}, must be in (0, 1): the fraction of sequences used for validation.")
    if not 0 <= test < 1:
        raise InputError(f"test == {test}, must be in [0, 1): the fraction of sequences held out for testing.")
    if valid + test >= 1:
        raise InputError(f"valid + test == {valid + test:g}, must be < 1 so that sequences are left for training.")
    if not isinstance(stratify, (bool, np.bool_)):
        raise InputTypeError(f"stratify must be True or False, got {type(stratify).__name__}.")
    rng = check_random_state(random_state)
    N = len(data)
    n_test = max(1, _round(test * N)) if test > 0 else 0
    n_valid = max(1, _round(valid * N))
    if N - n_valid - n_test < 1:
        raise InputError(f"data has {N} sequences, too few for valid={valid} and test={test} ({n_valid} + {n_test} "
                         "held out, none left to train on); add sequences or lower the fractions.")
    classification = data.task != "regression"
    if classification:
        labels = np.unique(data.y, axis=0)
        if len(labels) < 2:
            raise InputError(f"every sequence has the labels {labels[0].astype(int).tolist()}, so a classifier has "
                             "nothing to learn; add sequences of the other class (e.g. negatives='dinuc').")
    if stratify and classification:
        _, strata = np.unique(data.y.astype(np.uint8), axis=0, return_inverse=True)
        strata = strata.reshape(-1)
        sizes = np.bincount(strata)
        if data.task == "multilabel" and (sizes < 3).any():  # pool rare label combinations
            rare = sizes[strata] < 3
            strata = np.where(rare, len(sizes), strata)
            if rare.sum() < 3:
                strata[rare] = int(np.argmax(sizes))
            strata = np.unique(strata, return_inverse=True)[1].reshape(-1)
            sizes = np.bincount(strata)
        groups = [rng.permutation(np.flatnonzero(strata == s)) for s in range(len(sizes))]
        need = (sizes >= 3).astype(np.int64)  # classes that can have a sequence in every split
        t_alloc = _split_sizes(sizes, n_test, need, sizes - 2 * need)  # leave one for valid and one for train
        v_alloc = _split_sizes(sizes - t_alloc, n_valid, need, sizes - t_alloc - need)
        parts = [[], [], []]
        for g, t, v in zip(groups, t_alloc, v_alloc):
            parts[2].append(g[:t])
            parts[1].append(g[t:t + v])
            parts[0].append(g[t + v:])
        train_idx, valid_idx, test_idx = (np.sort(np.concatenate(p)) for p in parts)
    else:
        perm = rng.permutation(N)
        test_idx, valid_idx, train_idx = (np.sort(p) for p in (perm[:n_test], perm[n_test:n_test + n_valid],
                                                                 perm[n_test + n_valid:]))
    out = []
    for what, idx in (("train", train_idx), ("valid", valid_idx), ("test", test_idx)):
        part = data.subset(idx)
        out.append(replace(part, params={**data.params, "split": what, "valid": valid, "test": test,
                                         "split_random_state": random_state if isinstance(random_state, numbers.Integral)
                                         else None, "stratify": bool(stratify)}))
    if classification:
        _check_split_classes(data, out)
    return tuple(out)


def _check_split_classes(data: LabelledSequences, parts: list[LabelledSequences]) -> None:
    """Binary: every non-empty split must hold both classes (error); multilabel: warn per target lacking one."""
    names = {"train": "training", "valid": "validation", "test": "test"}
    for part in parts:
        if not len(part):
            continue
        what = names[part.params["split"]]
        if data.task == "binary":
            present = np.unique(part.y)
            if len(present) < 2:
                lack = 1 - int(present[0])
                n_lack = int((data.y == lack).sum())
                raise InputError(
                    f"the {what} split ({len(part)} sequences) has no sequence labelled {lack}; the data holds only "
                    f"{n_lack} of them; raise the valid/test fractions or add sequences labelled {lack}"
                    f"{'' if part.params['stratify'] else ', or pass stratify=True'}.")
        else:
            single = [t for j, t in enumerate(part.targets) if len(np.unique(part.y[:, j])) < 2]
            if single:
                warnings.warn(f"in the {what} split, {len(single)} targets have a single class "
                              f"({_show(single)}); their metrics there are undefined.", InterpkitWarning, stacklevel=3)
