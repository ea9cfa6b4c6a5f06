"""The GIA engine: apply interventions to every background, predict, and average the paired differences.

Global importance of an intervention phi (Koo et al. 2021, PLoS Comput. Biol. 17:e1008925, Eq. 2):

    I(phi) = 1/N sum_n [ f(x_n with phi) - f(x_n) ]

where x_n are the N backgrounds of a null model. The per-background terms are the *local* importances.
Every (intervention, background) pair is built on the fly into one reused float32 buffer and predicted
in large batches, so the cost is that of the forward passes: no (R, N, 4, L) array is ever formed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interpkit import Predictor, resolve_targets
from interpkit.errors import InputError
from interpkit.motifs import Motif
from interpkit.progress import batch_slices
from interpkit.tables import Table
from interpkit.validation import check_scalar
from interpkit_gia.nulls import Null, position_profile, sequence_body
from interpkit_gia.patterns import Intervention, Pattern, Placement, check_fits

__all__ = ["Effects", "global_importance"]

#: Bytes of float32 one-hot per chunk built and predicted at once (16 MiB: 5,242 sequences of 200 bp).
_CHUNK_BYTES = 1 << 24


@dataclass(frozen=True)
class Effects:
    """Global and local importances of R interventions on one null model, for K outputs.

    Attributes
    ----------
    rows : tuple of str
        The R row labels (e.g. ``CACGTG@97``).
    global_importance : ndarray of shape (R, K), float64
        Mean of the local importances over the backgrounds where the intervention fits (Eq. 2), in the
        model's output units; NaN where it fits none.
    standard_error : ndarray of shape (R, K), float64
        Sample standard deviation of the local importances (ddof 1) over sqrt(n).
    n : ndarray of shape (R,), int64
        Backgrounds that count for each row (a pattern never writes into padding; a background whose
        body cannot hold it is left out).
    local_importance : ndarray of shape (R, N, K), float32, or None
        f(x_n with phi_r) - f(x_n); NaN for left-out backgrounds. None when not kept (k-mer scans).
    null_predictions : ndarray of shape (N, K), float32
        f(x_n).
    null : Null
        The backgrounds used.
    targets : tuple of int
        The K output indices.
    extras : mapping of str to ndarray
        Experiment-specific arrays (documented by each experiment).
    tables : mapping of str to Table
        Experiment-specific tables.
    motifs : tuple of Motif
        Motifs an experiment derived (k-mer alignment motifs).
    warnings : tuple of str
    """

    rows: tuple[str, ...]
    global_importance: np.ndarray
    standard_error: np.ndarray
    n: np.ndarray
    local_importance: np.ndarray | None
    null_predictions: np.ndarray
    null: Null
    targets: tuple[int, ...]
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    tables: Mapping[str, Table] = field(default_factory=dict)
    motifs: tuple[Motif, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass
class _Draw:
    """What one placement writes into backgrounds [0, N): fixed (codes (w,), position int) or per row."""

    codes: np.ndarray  # (w,) or (N, w), int8, -1 = keep
    position: int | np.ndarray  # int or (N,)
    valid: np.ndarray  # (N,) bool

    @property
    def fixed(self) -> bool:
        return self.codes.ndim == 1


def _words(*parts: Any) -> list[int]:
    """Two 32-bit words that name ``parts`` (bytes or text), for seeding a generator."""
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        h.update(part if isinstance(part, bytes) else repr(part).encode())
        h.update(b"|")
    d = h.digest()
    return [int.from_bytes(d[:4], "little"), int.from_bytes(d[4:], "little")]


def _keys(row: Intervention) -> list[tuple[list[int], list[int]]]:
    """Per placement: the key of its strand and start draws, and the key of its base draws.

    Keys name what is placed, never the row: the strand and start draws depend on (strand, position,
    width, occurrence), the base draws also on the pattern's content, so the same placement draws the
    same in every row (A alone and A+B; a wild type and its mutants share strand and start).
    """
    seen: dict[tuple, int] = {}
    out = []
    for p in row.placements:
        where = (p.strand, p.position, p.pattern.width)
        slot = seen[where] = seen.get(where, -1) + 1
        arr = p.pattern.allowed if p.pattern.allowed is not None else p.pattern.ppm
        kind = b"allowed" if p.pattern.allowed is not None else b"ppm"
        out.append((_words(*where, slot), _words(*where, slot, kind, arr.shape, np.ascontiguousarray(arr).tobytes())))
    return out


class _Plan:
    """Draws of every intervention, made on demand and keyed by (seed, what is placed), not by row."""

    def __init__(self, null: Null, interventions: Sequence[Intervention], random_state: int,
                 occlusion_profile: np.ndarray | None = None) -> None:
        self.X = null.one_hot
        self.length = self.X.shape[2]
        self.lo, self.hi = sequence_body(self.X)
        self.interventions = interventions
        self.seed = random_state
        self._profile = occlusion_profile
        self._cache: tuple[int, list[_Draw]] | None = None
        for row in interventions:
            for p in row.placements:
                if p.position is not None:
                    check_fits(p.pattern, p.position, self.length)
            for a, b in row.occlude or ():
                if not 0 <= a < b <= self.length:
                    raise InputError(f"occluded span [{a}, {b}) is not inside the {self.length}-bp sequence; give "
                                     f"0 <= start < end <= {self.length}.")

    def profile(self) -> np.ndarray:
        if self._profile is None:
            self._profile = position_profile(self.X)
        return self._profile

    def _fits(self, first: int, last: int) -> np.ndarray:
        return (self.lo <= first) & (last < self.hi)

    def _placement(self, p: Placement, where: np.random.Generator, rng: np.random.Generator) -> _Draw:
        n, w = len(self.X), p.pattern.width
        minus = None
        if p.strand == "-":
            pattern: Pattern = p.pattern.reverse_complement()
        else:
            pattern = p.pattern
            if p.strand == "random":
                minus = where.random(n) < 0.5
        if p.position is None:
            room = self.hi - self.lo - w + 1
            position = self.lo + np.floor(where.random(n) * np.maximum(room, 0)).astype(np.int64)
            valid = room > 0
        else:
            position, valid = p.position, None
        if pattern.fixed and minus is None:
            codes = pattern.codes()
        else:
            codes = pattern.sample(rng, n)
            if minus is not None:
                other = pattern.reverse_complement().sample(rng, n)
                codes = np.where(minus[:, None], other, codes)
        if isinstance(position, np.ndarray) and codes.ndim == 1:
            codes = np.broadcast_to(codes, (n, w))
        if valid is None:
            written = np.flatnonzero((codes >= 0).reshape(-1, w).any(axis=0))
            valid = self._fits(position + written.min(), position + written.max())
        return _Draw(codes, position, valid)

    def _occlusion(self, a: int, b: int, rng: np.random.Generator) -> _Draw:
        probs = self.profile()[:, a:b]
        empty = probs.sum(axis=0) == 0
        ppm = np.where(empty, 0.25, probs)
        codes = Pattern("occlusion", ppm=ppm).sample(rng, len(self.X))
        codes[:, empty] = -1
        return _Draw(codes, a, self._fits(a, b - 1))

    def draws(self, r: int) -> list[_Draw]:
        if self._cache is None or self._cache[0] != r:
            row = self.interventions[r]
            out = []
            for a, b in row.occlude or ():
                out.append(self._occlusion(a, b, np.random.default_rng([self.seed, *_words("occlude", a, b)])))
            for p, (where, what) in zip(row.placements, _keys(row)):
                out.append(self._placement(p, np.random.default_rng([self.seed, *where]),
                                           np.random.default_rng([self.seed, *what])))
            self._cache = (r, out)
        return self._cache[1]


def _write(out: np.ndarray, draw: _Draw, rows: slice, ok: np.ndarray, written: np.ndarray | None) -> None:
    """Write one placement into ``out`` (the backgrounds ``rows``), only where ``ok``."""
    if draw.fixed:
        cols = np.flatnonzero(draw.codes >= 0)
        block = (draw.codes[cols][None, :] == np.arange(4)[:, None]).astype(np.float32)  # (4, c)
        cols = cols + draw.position
        if ok.all():
            out[:, :, cols] = block
            if written is not None:
                written[:, cols] = True
        else:
            keep = np.flatnonzero(ok)
            out[keep[:, None], :, cols[None, :]] = block.T[None]
            if written is not None:
                written[keep[:, None], cols[None, :]] = True
        return
    codes = draw.codes[rows]
    position = draw.position[rows] if isinstance(draw.position, np.ndarray) else draw.position
    r, j = np.nonzero((codes >= 0) & ok[:, None])
    c = (position[r] if isinstance(position, np.ndarray) else position) + j
    out[r, :, c] = 0
    out[r, codes[r, j], c] = 1
    if written is not None:
        written[r, c] = True


def _pair_stem(out: np.ndarray, background: np.ndarray, written: np.ndarray, stem: tuple[int, int, int]) -> None:
    """Re-impose Watson-Crick pairing where a pattern changed one arm of the stem (not the other)."""
    left, right, size = stem
    for t in range(size):
        i, j = left + t, right + size - 1 - t
        for src, dst in ((i, j), (j, i)):
            rows = np.flatnonzero(written[:, src] & ~written[:, dst] & background[:, :, dst].any(axis=1))
            if rows.size:
                out[rows, :, dst] = out[rows, ::-1, src]


def _build(plan: _Plan, out: np.ndarray, r: int, start: int, stop: int, stem: tuple[int, int, int] | None
           ) -> np.ndarray:
    """Backgrounds [start, stop) with intervention r applied, into ``out``; returns which rows count."""
    rows = slice(start, stop)
    background = plan.X[rows]
    np.copyto(out, background)
    draws = plan.draws(r)
    ok = np.ones(stop - start, dtype=bool)
    for draw in draws:
        ok &= draw.valid[rows]
    written = np.zeros((stop - start, plan.length), dtype=bool) if stem is not None else None
    for draw in draws:
        _write(out, draw, rows, ok, written)
    if stem is not None:
        _pair_stem(out, background, written, stem)
    return ok


class _Moments:
    """Running count, mean and sum of squared deviations per row (Chan et al. 1979 pairwise update)."""

    def __init__(self, rows: int, k: int) -> None:
        self.n = np.zeros(rows, dtype=np.int64)
        self.mean = np.zeros((rows, k))
        self.m2 = np.zeros((rows, k))

    def add(self, r: int, d: np.ndarray) -> None:
        nb = len(d)
        if nb == 0:
            return
        mb = d.mean(axis=0)
        m2b = ((d - mb) ** 2).sum(axis=0)
        na = self.n[r]
        delta = mb - self.mean[r]
        total = na + nb
        self.mean[r] += delta * nb / total
        self.m2[r] += m2b + delta**2 * na * nb / total
        self.n[r] = total

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n[:, None].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, self.mean, np.nan)
            se = np.where(n > 1, np.sqrt(self.m2 / np.maximum(n - 1, 1) / np.maximum(n, 1)), np.nan)
        return mean, se


def global_importance(
    model: Predictor,
    null: Null,
    interventions: Sequence[Intervention],
    *,
    target: Any = None,
    keep_local: bool = True,
    null_predictions: np.ndarray | None = None,
    occlusion_profile: np.ndarray | None = None,
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = False,
) -> Effects:
    """Global importance of each intervention on one null model (Koo et al. 2021, Eq. 2).

    Parameters
    ----------
    model : Predictor
        Any backend; only ``predict`` is used.
    null : Null
        The N backgrounds (see :func:`interpkit_gia.nulls.make_null`).
    interventions : sequence of Intervention
        The R rows. Fixed positions must keep the pattern inside the sequence. A background counts for a
        row only if every written base falls inside its body (between its leading and trailing N
        padding); for a random position, a start is drawn among those that keep the pattern inside the
        body. When ``null.stem`` is set, pairing is re-imposed after embedding: a base written into one
        arm sets its partner in the other arm to the complement (unless both were written).
    target : None, int, str or sequence
        Outputs, as :func:`interpkit.resolve_targets` reads them. Default is None (every output).
    keep_local : bool
        Keep the (R, N, K) local importances; False keeps only their running moments (memory O(R K)),
        as k-mer scans need. Default is True.
    null_predictions : ndarray of shape (N, K) or None
        f(x_n) for the chosen outputs if already computed. Default is None (predicted here).
    occlusion_profile : ndarray of shape (4, L) or None
        Base frequencies that occluded spans are drawn from (columns summing to 1; an all-zero column
        keeps the background base). Default is None (the null's own position-specific profile).
    batch_size : int or None
        Sequences per forward pass; None lets the backend choose. Sequences are built in chunks of
        about 16 MiB, a whole number of batches (at least one). Default is None.
    random_state : int
        Seed of the draws (random positions, strands, IUPAC and PPM sampling, occlusion). Draws are
        keyed by what is placed, not by the row: a placement's strand and start come from a generator
        seeded by (random_state, strand, position, width, occurrence in the row) and its bases from one
        that also names the pattern's content, so identical placements draw identically in every row
        (paired comparisons between rows) and nothing depends on batching. Default is 0.
    verbose : bool
        Progress bar over the R * N sequences. Default is False.

    Returns
    -------
    Effects

    Raises
    ------
    InputError
        For an unknown target, a fixed position that runs outside the sequence, ``null_predictions``
        or ``occlusion_profile`` of the wrong shape, or backgrounds whose length the model does not take.
    """
    check_scalar(random_state, "random_state", int, min_val=0)
    if batch_size is not None:
        check_scalar(batch_size, "batch_size", int, min_val=1)
    targets = resolve_targets(target, model.output_names)
    cols = list(targets)
    X0 = null.one_hot
    n, _, length = X0.shape
    if occlusion_profile is not None:
        occlusion_profile = np.asarray(occlusion_profile, dtype=np.float64)
        if occlusion_profile.shape != (4, length) or (occlusion_profile < 0).any():
            raise InputError(f"occlusion_profile has shape {occlusion_profile.shape}; give base frequencies of "
                             f"shape (4, {length}), e.g. nulls.position_profile(X).")
    plan = _Plan(null, interventions, random_state, occlusion_profile)
    if null_predictions is None:
        y0 = model.predict(X0, batch_size=batch_size)[:, cols].astype(np.float64)
    else:
        y0 = np.asarray(null_predictions, dtype=np.float64)
        if y0.shape != (n, len(cols)):
            raise InputError(f"null_predictions has shape {y0.shape}; it must be (N, K) == ({n}, {len(cols)}), "
                             "f(x_n) of the null's backgrounds for the chosen outputs (or None to predict them).")
    rows = len(interventions)
    moments = _Moments(rows, len(cols))
    local = np.full((rows, n, len(cols)), np.nan, dtype=np.float32) if keep_local else None
    chunk = max(1, _CHUNK_BYTES // (16 * length))
    if batch_size is not None:  # whole batches per chunk, so the model never runs a needlessly short one
        chunk = max(batch_size, chunk // batch_size * batch_size)
    buf = np.empty((min(chunk, max(rows * n, 1)), 4, length), dtype=np.float32)
    ok = np.empty(len(buf), dtype=bool)
    for sl in batch_slices(rows * n, len(buf), verbose=verbose, desc="gia", unit="seq"):
        segments = []
        for r in range(sl.start // n, (sl.stop - 1) // n + 1):
            start, stop = max(sl.start, r * n) - r * n, min(sl.stop, (r + 1) * n) - r * n
            at = r * n + start - sl.start
            ok[at:at + stop - start] = _build(plan, buf[at:at + stop - start], r, start, stop, null.stem)
            segments.append((r, start, stop, at))
        m = sl.stop - sl.start
        if ok[:m].all():
            y = model.predict(buf[:m], batch_size=batch_size)[:, cols]
        else:  # backgrounds that cannot hold a pattern are not run at all
            y = np.full((m, len(cols)), np.nan, dtype=np.float32)
            if ok[:m].any():
                y[ok[:m]] = model.predict(buf[:m][ok[:m]], batch_size=batch_size)[:, cols]
        for r, start, stop, at in segments:
            d = y[at:at + stop - start] - y0[start:stop]
            good = ok[at:at + stop - start]
            moments.add(r, d[good])
            if local is not None:
                local[r, start:stop] = np.where(good[:, None], d, np.nan)
    mean, se = moments.result()
    warnings = ()
    empty = [interventions[r].label for r in np.flatnonzero(moments.n == 0)]
    if empty:
        warnings = ((f"{len(empty)} row(s) fit no background of null {null.name!r} (the pattern would write into "
                    f"padding), e.g. {empty[0]}; their global importance is NaN."),)
    return Effects(tuple(i.label for i in interventions), mean, se, moments.n, local, y0.astype(np.float32), null,
                   targets, warnings=warnings)
