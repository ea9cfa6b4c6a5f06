"""Null (background) models for GIA: the sequences that patterns are embedded into.

Koo et al. (2021), PLoS Comput. Biol. 17:e1008925, "Global importance analysis" and Materials and
methods: a profile model (position-specific base frequencies of the observed sequences), random
(mononucleotide) shuffles, dinucleotide shuffles, and observed sequences from quartiles of the measured
binding score; plus, here, observed sequences as they are, the user's sequences used as given, any
number of quantile bins, filtering by predicted percentile (the reference code's ``filter_null``) and a
stem-loop structure with enforced Watson-Crick pairing (the paper's Fig 3c).

Every null is seeded: the same ``random_state`` gives the same sequences, whatever else is computed.
*Padding* is the run of all-zero (N) columns at either end of a sequence (e.g. RNAcompete probes
centre-padded to 41 nt); shuffles keep it in place and GIA never writes a pattern into it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from interpkit.errors import InputError, InputTypeError
from interpkit.sequences import dinucleotide_shuffle, shuffle
from interpkit.validation import check_one_hot, check_scalar
from interpkit_gia.patterns import centre, sample_columns

__all__ = ["NULL_MODELS", "PAPER_NULLS", "Null", "filter_null", "make_null", "position_profile", "replacement_profile", "sequence_body",
           "stem_loop"]

#: The null families; "quantile" is written "quantileI" (bin I of 4, 1 = highest score) or "quantileI/Q".
NULL_MODELS = ("profile", "shuffle", "dinuc", "observed", "given", "quantile")
#: The seven nulls of the paper's robustness figures (S1-S5 Figs).
PAPER_NULLS = ("profile", "shuffle", "dinuc", "quantile1", "quantile2", "quantile3", "quantile4")
_QUANTILE = re.compile(r"^quantile(\d+)(?:/(\d+))?$")


@dataclass(frozen=True, eq=False)
class Null:
    """A set of background sequences (the "approximate data distribution" of Koo et al. 2021) and how it
    was made.

    Attributes
    ----------
    name : str
        The null model's name (e.g. "profile", "quantile1").
    one_hot : ndarray of shape (N, 4, L), float32
        The backgrounds; all-zero columns are N.
    source : ndarray of shape (N,), int64
        Index of the observed sequence each background comes from (-1 for profile samples).
    stem : tuple of (int, int, int) or None
        ``(left, right, size)`` when a stem-loop is enforced (see :func:`stem_loop`), else None.
    description : str
        One line for reports.
    """

    name: str
    one_hot: np.ndarray = field(repr=False)
    source: np.ndarray = field(repr=False)
    stem: tuple[int, int, int] | None = None
    description: str = ""

    def __len__(self) -> int:
        return len(self.one_hot)


def _rng(random_state: int, *keys: Any) -> np.random.Generator:
    """A generator keyed by the seed and names, so one null's draws never depend on another's."""
    words = [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng([random_state, *words])


def sequence_body(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each sequence's body lies: between its leading and trailing padding.

    Parameters
    ----------
    X : ndarray of shape (N, 4, L)
        One-hot sequences.

    Returns
    -------
    lo, hi : ndarray of shape (N,), int64
        The body is ``[lo, hi)``: lo is the first non-N column, hi one past the last; (0, 0) for a
        sequence that is all N.
    """
    present = X.any(axis=1)  # (N, L)
    any_base = present.any(axis=1)
    lo = np.where(any_base, present.argmax(axis=1), 0)
    hi = np.where(any_base, X.shape[2] - present[:, ::-1].argmax(axis=1), 0)
    return lo.astype(np.int64), hi.astype(np.int64)


def position_profile(X: np.ndarray) -> np.ndarray:
    """Position-specific base frequencies (the paper's profile model).

    Parameters
    ----------
    X : ndarray of shape (N, 4, L)
        One-hot sequences; N columns are left out of the counts.

    Returns
    -------
    profile : ndarray of shape (4, L), float64
        Columns sum to 1 where any sequence has a base there, and are all zero where every sequence has
        N (padding shared by all).
    """
    counts = X.sum(axis=0, dtype=np.float64)
    total = counts.sum(axis=0, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def _sample_profile(profile: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n one-hot draws, each position independent; all-zero profile columns give N."""
    codes = sample_columns(profile, rng, n)
    X = (codes[:, None, :] == np.arange(4)[:, None]).astype(np.float32)
    X[:, :, profile.sum(axis=0) == 0] = 0
    return X


def _pick(n_observed: int, n: int, rng: np.random.Generator, *, replace_all: bool) -> np.ndarray:
    """Indices of n observed sequences: a random subset; with ``replace_all`` every one, then again."""
    if n <= n_observed:
        return np.sort(rng.permutation(n_observed)[:n])
    if not replace_all:
        return np.arange(n_observed)
    reps = -(-n // n_observed)
    return np.concatenate([rng.permutation(n_observed) for _ in range(reps)])[:n]


def _shuffled(X: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Shuffle each sequence's body, leaving its padding where it is."""
    shuffler = dinucleotide_shuffle if kind == "dinuc" else shuffle
    seed = int(rng.integers(2**62))
    lo, hi = sequence_body(X)
    out = np.zeros_like(X)
    bodies = np.stack([lo, hi], axis=1)
    for a, b in np.unique(bodies, axis=0):
        rows = np.flatnonzero((lo == a) & (hi == b))
        if b - a > 0:
            part_seed = int(np.random.default_rng([seed, int(a), int(b)]).integers(2**62))
            out[rows, :, a:b] = shuffler(X[rows, :, a:b], random_state=part_seed)[:, 0]
    return out


def _quantile(kind: str) -> tuple[int, int] | None:
    match = _QUANTILE.match(kind)
    if match is None:
        return None
    i, q = int(match[1]), int(match[2] or 4)
    if not 1 <= i <= q:
        raise InputError(f"null {kind!r}: bin {i} of {q} does not exist; use quantile1 .. quantile{q}.")
    return i, q


def check_null_name(kind: Any) -> str:
    """Check a null model's name (see :data:`NULL_MODELS`); returns it.

    Raises
    ------
    InputTypeError
        If ``kind`` is not a str.
    InputError
        If it names no null model.
    """
    if not isinstance(kind, str):
        raise InputTypeError(f"null must be a str such as 'profile', got {type(kind).__name__}.")
    if kind in NULL_MODELS[:-1] or _quantile(kind) is not None:
        return kind
    raise InputError(f"null {kind!r} is unknown; use profile, shuffle, dinuc, observed, given, quantileI "
                     "(bin I of 4 by score, 1 = highest) or quantileI/Q, comma-separated for several.")


def make_null(X: Any, kind: str = "profile", *, n: int = 1000, scores: Any = None,
              random_state: int = 0) -> Null:
    """Build background sequences from observed sequences.

    Parameters
    ----------
    X : array-like of shape (N0, 4, L)
        The observed sequences (one-hot; N columns allowed).
    kind : str
        - "profile": n sequences drawn position by position from the base frequencies of X at each
          position (:func:`position_profile`; N left out, renormalised; positions that are N in every
          sequence stay N). Koo et al. (2021) use it for every main-text figure.
        - "shuffle": n mononucleotide shuffles of observed sequences (the body of each, padding kept);
          base composition of each is kept.
        - "dinuc": n dinucleotide shuffles (:func:`interpkit.sequences.dinucleotide_shuffle`, body
          only); every dinucleotide count is kept.
        - "observed": n observed sequences as they are, a random subset (all of them if N0 <= n).
        - "given": X exactly as given, in order (``n`` is ignored): the user's own backgrounds.
        - "quantileI" or "quantileI/Q": observed sequences of bin I of Q (default 4) after ranking by
          ``scores``, highest first (quantile1 = the top quartile). This follows the reference code,
          which sorts descending; the paper's text numbers the other way (its 1st quartile is the
          lowest 25%). A random subset of n if the bin is larger.

        Observed sequences are drawn without replacement; shuffles cycle through every sequence (in a
        fresh random order each pass) when n > N0. Default is "profile".
    n : int
        Number of backgrounds. Default is 1000 (the paper's).
    scores : array-like of shape (N0,) or None
        Measured or predicted score of each observed sequence, needed by quantile nulls.
    random_state : int
        Seed; the draws of each null kind are keyed by its name as well. Default is 0.

    Returns
    -------
    Null

    Raises
    ------
    InputError
        For an unknown kind, n < 1, a quantile null without scores (or with the wrong number), an empty
        quantile bin, or X that is not one-hot.
    """
    X = check_one_hot(X, "X")
    kind = check_null_name(kind)
    check_scalar(n, "n_backgrounds", int, min_val=1)
    check_scalar(random_state, "random_state", int, min_val=0)
    rng = _rng(random_state, kind)
    n0 = len(X)
    if kind == "profile":
        return Null(kind, _sample_profile(position_profile(X), n, rng), np.full(n, -1, dtype=np.int64),
                    description=f"{n} draws from the position-specific base frequencies of {n0} sequences")
    if kind == "given":
        return Null(kind, X.copy(), np.arange(n0, dtype=np.int64), description=f"the {n0} sequences as given")
    if kind in ("shuffle", "dinuc", "observed"):
        idx = _pick(n0, n, rng, replace_all=kind != "observed")
        one_hot = X[idx] if kind == "observed" else _shuffled(X[idx], kind, rng)
        what = {"shuffle": "mononucleotide shuffles", "dinuc": "dinucleotide shuffles",
                "observed": "observed sequences"}[kind]
        return Null(kind, one_hot, idx.astype(np.int64), description=f"{len(idx)} {what} of {n0} sequences")
    i, q = _quantile(kind)
    if scores is None:
        raise InputError(f"null {kind!r} ranks sequences by a score; pass scores= (one per sequence) or let gia "
                         "rank them by the model's prediction.")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.shape != (n0,) or not np.isfinite(scores).all():
        raise InputError(f"scores has {scores.size} values (or NaN/inf) for {n0} sequences; give one finite score "
                         "per sequence.")
    order = np.argsort(-scores, kind="stable")
    members = np.array_split(order, q)[i - 1]
    if len(members) == 0:
        raise InputError(f"null {kind!r} is empty: {n0} sequences cannot fill {q} bins; use fewer bins.")
    chosen = members[_pick(len(members), n, rng, replace_all=False)]
    return Null(kind, X[chosen], chosen.astype(np.int64),
                description=f"{len(chosen)} observed sequences of score bin {i} of {q} (1 = highest)")


def filter_null(null: Null, scores: Any, *, low: float = 10.0, high: float = 90.0) -> Null:
    """Keep the backgrounds whose score lies strictly between two percentiles of the null's scores.

    Parameters
    ----------
    null : Null
    scores : array-like of shape (N,)
        Typically the model's prediction for one output on each background.
    low, high : float
        Percentiles, 0 <= low < high <= 100. Defaults are 10 and 90 (the reference code's
        ``filter_null``), which drop about a fifth of the backgrounds.

    Returns
    -------
    Null
        With fewer backgrounds, in the same order; its name is unchanged and its description says so.

    Raises
    ------
    InputError
        For bad percentiles, a score count that differs from the null's size, or nothing left.
    """
    check_scalar(low, "low", (int, float), min_val=0, max_val=100)
    check_scalar(high, "high", (int, float), min_val=0, max_val=100)
    if low >= high:
        raise InputError(f"null_filter == ({low}, {high}): the low percentile must be below the high one.")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.shape != (len(null),):
        raise InputError(f"scores has {scores.size} values for {len(null)} backgrounds.")
    lo, hi = np.percentile(scores, [low, high])
    keep = (scores > lo) & (scores < hi)
    if not keep.any():
        raise InputError(f"no background of null {null.name!r} scores strictly between percentiles {low} and "
                         f"{high}; widen null_filter or use more backgrounds.")
    return replace(null, one_hot=null.one_hot[keep], source=null.source[keep],
                   description=f"{null.description}; kept {int(keep.sum())} scoring between percentiles "
                               f"{low:g} and {high:g}")


def check_stem(stem: Any, length: int) -> tuple[int, int, int]:
    """Check a stem-loop ``(left, right, size)`` for sequences of ``length`` bp; returns it.

    Raises
    ------
    InputTypeError
        If ``stem`` is not three ints (or "LEFT,RIGHT,SIZE").
    InputError
        If the arms overlap or run past the sequence.
    """
    if isinstance(stem, str):
        try:
            stem = tuple(int(v) for v in stem.split(","))
        except ValueError:
            raise InputError(f"stem {stem!r} must be LEFT,RIGHT,SIZE (three 0-based ints), e.g. '8,24,9'.") from None
    if not (isinstance(stem, Sequence) and len(stem) == 3 and all(isinstance(v, (int, np.integer)) for v in stem)):
        raise InputTypeError(f"stem must be (left, right, size), three ints, got {stem!r}.")
    left, right, size = (int(v) for v in stem)
    if size < 1 or left < 0 or left + size > right or right + size > length:
        raise InputError(f"stem == ({left}, {right}, {size}) does not fit: need size >= 1, 0 <= left, "
                         f"left + size <= right and right + size <= {length} (the sequence length).")
    return left, right, size


def default_stem(length: int, *, size: int = 9, loop: int = 7) -> tuple[int, int, int]:
    """A stem-loop centred in the sequence: two ``size``-bp arms around a ``loop``-bp loop.

    For 41 nt this is (8, 24, 9), the arms of the reference code's hairpin experiment (Koo et al. 2021,
    Fig 3c enforces pairing of positions 6-16 with 23-33, 1-based).

    Raises
    ------
    InputError
        If the sequence is shorter than 2 * size + loop.
    """
    total = 2 * size + loop
    if length < total:
        raise InputError(f"a stem-loop of {size}-bp arms and a {loop}-bp loop needs >= {total} bp; the sequences "
                         f"are {length} bp. Give stem=LEFT,RIGHT,SIZE.")
    left = centre(length, total)
    return left, left + size + loop, size


def stem_loop(null: Null, stem: Any) -> Null:
    """Enforce a stem-loop: the right arm becomes the reverse complement of the left arm.

    Position ``right + size - 1 - t`` gets the Watson-Crick partner of position ``left + t`` (A-T/U,
    C-G; an N stays N), in every background, so each background can fold into a hairpin whose loop is
    ``[left + size, right)``. Koo et al. (2021), Fig 3c and the reference code's ``set_hairpin_null``
    (made explicit here: a new Null is returned and nothing is changed in place).

    Parameters
    ----------
    null : Null
    stem : tuple of (int, int, int) or str
        ``(left, right, size)``: 0-based starts of the two arms and their length in bp, or "L,R,S".

    Returns
    -------
    Null
        Named ``<name>+stem``, with ``stem`` set; GIA re-imposes the pairing after each embedding.

    Raises
    ------
    InputError, InputTypeError
        If the stem does not fit the sequences (see :func:`check_stem`), or if an arm runs into the
        leading or trailing padding of any background: pairing would write bases into the padding or
        put N inside the body, so such backgrounds are refused rather than silently changed.
    """
    left, right, size = check_stem(stem, null.one_hot.shape[2])
    lo, hi = sequence_body(null.one_hot)
    bad = np.flatnonzero((lo > left) | (hi < right + size))
    if bad.size:
        raise InputError(f"stem == ({left}, {right}, {size}): its arms ({left}-{left + size - 1} and {right}-"
                         f"{right + size - 1}) run into the padding of {bad.size} background(s) of null "
                         f"{null.name!r} (e.g. #{bad[0]}, body {lo[bad[0]]}-{hi[bad[0]] - 1}); give a stem inside "
                         "every sequence's body or leave out the padded sequences.")
    X = null.one_hot.copy()
    X[:, :, right:right + size] = X[:, ::-1, left:left + size][:, :, ::-1]  # complement = reversed alphabet axis
    return replace(null, name=f"{null.name}+stem", one_hot=X, stem=(left, right, size),
                   description=f"{null.description}; stem-loop arms {left}-{left + size - 1} and "
                               f"{right}-{right + size - 1} paired")


#: Fewest sequences whose profile occlusion draws from without a warning.
MIN_PROFILE = 10


def replacement_profile(null: Null, background: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """The (4, L) profile occluded spans are drawn from, and any warning.

    Parameters
    ----------
    null : Null
        The sequences being occluded.
    background : None, "uniform", ndarray of shape (4, L) or (M, 4, L)
        As :func:`interpkit_gia.experiments.occlusion` reads it.

    Returns
    -------
    profile : ndarray of shape (4, L), float64
    warnings : tuple of str
        One warning when the profile would come from fewer than ``MIN_PROFILE`` (10) sequences (the
        null's or ``background``'s); uniform frequencies are used then.

    Raises
    ------
    InputError
        For a background of any other shape.
    """
    length = null.one_hot.shape[2]
    body = position_profile(null.one_hot).sum(axis=0) > 0
    uniform = np.where(body, 0.25, 0.0)[None].repeat(4, axis=0)
    if isinstance(background, str) and background == "uniform":
        return uniform, ()
    arr = np.asarray(null.one_hot if background is None else background, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[1:] == (4, length):
        if len(arr) >= MIN_PROFILE:
            return position_profile(arr), ()
        note = (f"occlusion: the background profile would come from {len(arr)} sequence(s), fewer than "
                f"{MIN_PROFILE}; replacement bases are drawn uniformly instead (pass background= a profile or "
                "more sequences).")
        return uniform, (note,)
    if arr.shape == (4, length):
        return arr, ()
    raise InputError(f"background has shape {arr.shape}; give a (4, {length}) profile, (M, 4, {length}) "
                     "one-hot sequences, 'uniform' or None.")
