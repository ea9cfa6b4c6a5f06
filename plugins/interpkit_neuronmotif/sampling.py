"""Forward sampling of windows that activate a neuron: exhaustive enumeration or a genetic algorithm.

Wei et al. (2023), PNAS 120:e2216698120 (NeuronMotif), forward sampling; constants of the reference code
(wzthu/NeuronMotif ``vis.py`` and ``utils.py``): enumeration below 11 bp; population
clamp(floor(R / 20) * 1000, 2000, 5000); gradient-guided mutation with step 1; elite 10 % of the mutated
batch; two circularly shifted copies of the elite (shift 1..J-1, J the jump of the neuron's input) when
there are pools below; one-point crossover of roulette-drawn parents (fitness e^v below 0, v + 1 above);
at most 200 generations, stopping after more than 10 without a better mean activation; an archive of
unique positive windows, capped at 100,000 with activation-stratified subsampling.

Everything is vectorised over the population (no per-position Python loops); windows are uint8 codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interpkit.errors import InputError
from interpkit_neuronmotif.neuron import Neuron, one_hot

__all__ = ["ENUMERATE_BELOW", "Samples", "cap_archive", "enumerate_windows", "genetic_sampling", "population_size"]

#: Windows shorter than this many bp are enumerated (all 4^R), as in the reference code.
ENUMERATE_BELOW = 11
#: Largest archive kept (unique positive windows).
ARCHIVE_CAP = 100_000


@dataclass(frozen=True)
class Samples:
    """Windows that activate a neuron.

    Attributes
    ----------
    codes : ndarray of shape (n, R), uint8
        Unique windows with a positive value, codes 0-3 (A, C, G, T).
    values : ndarray of shape (n,), float32
        The neuron's value on each (pre-activation, > 0).
    method : str
        "enumeration", "ga" or "ga-gradient-free".
    generations : int
        GA generations run (0 for enumeration).
    evaluated : int
        Windows evaluated in all.
    """

    codes: np.ndarray
    values: np.ndarray
    method: str
    generations: int = 0
    evaluated: int = 0


def population_size(receptive_field: int) -> int:
    """The reference's population size: clamp(floor(R / 20) * 1000, 2000, 5000)."""
    return int(min(max(receptive_field // 20 * 1000, 2000), 5000))


def _all_codes(length: int, start: int, stop: int) -> np.ndarray:
    """Windows ``start .. stop - 1`` of all 4^length in base-4 order (most significant digit at position 0)."""
    n = np.arange(start, stop, dtype=np.int64)
    shifts = 2 * np.arange(length - 1, -1, -1, dtype=np.int64)
    return ((n[:, None] >> shifts[None, :]) & 3).astype(np.uint8)


def enumerate_windows(neuron: Neuron, *, chunk: int = 1 << 16) -> Samples:
    """Every window of the neuron's receptive field, scored once; the positive ones are kept (Wei et al.
    2023, the reference's exhaustive branch for receptive fields under 11 bp).

    Parameters
    ----------
    neuron : Neuron
    chunk : int
        Windows scored per call. Default is 65,536.

    Returns
    -------
    Samples
        ``codes`` in base-4 order (position 0 most significant), only windows with value > 0.

    Raises
    ------
    InputError
        If the receptive field is 13 bp or more (4^13 = 67 M windows; use the genetic algorithm).
    """
    R = neuron.stack.receptive_field
    if R > 12:
        raise InputError(f"enumerating a {R}-bp receptive field means 4^{R} windows; use the genetic algorithm "
                         f"(sampling='ga') for receptive fields of {ENUMERATE_BELOW} bp or more.")
    codes, values = [], []
    for a in range(0, 4**R, chunk):
        batch = _all_codes(R, a, min(a + chunk, 4**R))
        v = neuron.values(batch)
        keep = v > 0
        codes.append(batch[keep])
        values.append(v[keep])
    return Samples(np.concatenate(codes), np.concatenate(values), "enumeration", 0, 4**R)


def cap_archive(codes: np.ndarray, values: np.ndarray, cap: int, *, bins: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Unique positive windows, at most ``cap``, stratified by value (the reference's ``val_uniq_seq``).

    Windows with value <= 0 are dropped and duplicates keep their first occurrence. Above ``cap``, values
    are binned into ``bins`` equal bins over (0, max]; a bin with more than cap // bins windows keeps a
    uniform random subset of that many, so high values stay over-represented.

    Returns
    -------
    (codes, values) : (n, R) uint8 and (n,) float32
    """
    keep = values > 0
    codes, values = codes[keep], values[keep]
    _, first = np.unique(codes, axis=0, return_index=True)
    first.sort()
    codes, values = codes[first], values[first]
    if len(codes) <= cap:
        return codes, values
    per_bin = cap // bins
    which = np.minimum(np.ceil(values / values.max() * bins).astype(np.int64), bins) - 1
    chosen = []
    for b in range(bins):
        members = np.flatnonzero(which == b)
        if len(members) > per_bin:
            members = np.sort(rng.choice(members, per_bin, replace=False))
        chosen.append(members)
    pick = np.sort(np.concatenate(chosen))
    return codes[pick], values[pick]


def _fitness(v: np.ndarray) -> np.ndarray:
    """Roulette weights: e^v below 0, v + 1 at or above 0 (continuous at 0)."""
    return np.where(v < 0, np.exp(np.minimum(v, 0)), v + 1.0)


def _mutate_by_gradient(codes: np.ndarray, grad: np.ndarray, rng: np.random.Generator, step: float) -> np.ndarray:
    """Sample each position from max(one-hot + step * gradient, 0), normalised (all zero: uniform)."""
    p = np.maximum(one_hot(codes) + step * grad, 0.0)  # (N, 4, R)
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1.0), 0.25)
    cdf = np.cumsum(p, axis=1)
    u = rng.random((len(codes), 1, codes.shape[1]))
    return np.minimum((u >= cdf[:, :3, :]).sum(axis=1), 3).astype(np.uint8)


def _mutate_at_random(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gradient-free mutation: each position replaced by a uniform base with probability 1 / R."""
    R = codes.shape[1]
    hit = rng.random(codes.shape) < 1.0 / R
    return np.where(hit, rng.integers(0, 4, codes.shape, dtype=np.uint8), codes)


def _shifted(codes: np.ndarray, jump: int, rng: np.random.Generator, sign: int) -> np.ndarray:
    """Each row rolled circularly by its own s in 1..jump-1 (left for sign +1, right for -1)."""
    R = codes.shape[1]
    s = rng.integers(1, jump, len(codes))
    idx = (np.arange(R)[None, :] + sign * s[:, None]) % R
    return np.take_along_axis(codes, idx, axis=1)


def _children(parents: np.ndarray, weights: np.ndarray, pairs: int, rng: np.random.Generator) -> np.ndarray:
    """One-point crossover of ``pairs`` roulette-drawn parent pairs -> 2 * pairs children."""
    R = parents.shape[1]
    p = weights / weights.sum()
    a = parents[rng.choice(len(parents), pairs, p=p)]
    b = parents[rng.choice(len(parents), pairs, p=p)]
    cut = rng.integers(0, R, pairs)
    tail = np.arange(R)[None, :] >= cut[:, None]
    return np.concatenate([np.where(tail, b, a), np.where(tail, a, b)])


def genetic_sampling(neuron: Neuron, *, rng: np.random.Generator, population: int | None = None,
                     initial: np.ndarray | None = None, max_generations: int = 200, patience: int = 10,
                     step: float = 1.0, archive_cap: int = ARCHIVE_CAP, archive_bins: int = 50,
                     gradient: bool | None = None, verbose: bool = False) -> Samples:
    """Sample windows that activate the neuron with NeuronMotif's genetic algorithm.

    Parameters
    ----------
    neuron : Neuron
    rng : numpy.random.Generator
        Every draw comes from it (seeded by the caller).
    population : int or None
        N; None is :func:`population_size` of the receptive field. Default is None.
    initial : ndarray of shape (M, R), uint8, or None
        Starting windows (e.g. consensus sequences of the lower layer's CRMs); topped up with uniform
        random windows to N. Default is None (all random).
    max_generations, patience : int
        Stop after ``max_generations``, or after more than ``patience`` generations without a higher
        mean value of the mutated population. Defaults are 200 and 10 (the reference's).
    step : float
        Gradient step of the mutation (the reference's 1). Default is 1.0.
    archive_cap, archive_bins : int
        Unique positive windows kept, and the value strata when thinning (:func:`cap_archive`; the
        reference's generic code uses 20 bins, its paper demos 50). Defaults are 100,000 and 50.
    gradient : bool or None
        Gradient-guided mutation; None uses it when the backend has gradients. Without, each position
        mutates to a uniform base with probability 1/R (a plain GA, slower to converge). Default is None.
    verbose : bool
        Progress bar over generations. Default is False.

    Returns
    -------
    Samples
        The archive (initial population included), unique and positive.
    """
    from tqdm.auto import tqdm

    R = neuron.stack.receptive_field
    N = population or population_size(R)
    use_grad = neuron.has_gradient if gradient is None else gradient
    X = rng.integers(0, 4, (N, R), dtype=np.uint8)
    if initial is not None and len(initial):
        X[:min(N, len(initial))] = initial[:N]
    v = neuron.values(X)
    archive_codes, archive_values = [X], [v]
    stored = len(X)
    best, stale, generation, evaluated = -np.inf, 0, 0, N
    jump = neuron.stack.jump
    elite_n = N // 10  # then 2 shifted copies of the elite (if jump > 1) and crossover children fill N
    bar = tqdm(range(max_generations), desc="GA generations", leave=False, disable=not verbose)
    for generation in bar:
        Y = _mutate_by_gradient(X, neuron.gradients(X), rng, step) if use_grad else _mutate_at_random(X, rng)
        v = neuron.values(Y)
        evaluated += N
        positive = v > 0
        archive_codes.append(Y[positive])
        archive_values.append(v[positive])
        stored += int(positive.sum())
        if stored > archive_cap and generation % 5 == 4:
            c, w = cap_archive(np.concatenate(archive_codes), np.concatenate(archive_values), archive_cap,
                               bins=archive_bins, rng=rng)
            archive_codes, archive_values, stored = [c], [w], len(c)
        elite = Y[np.argsort(-v, kind="stable")[:elite_n]]
        parts = [elite]
        if jump > 1:
            parts += [_shifted(elite, jump, rng, 1), _shifted(elite, jump, rng, -1)]
        pairs = (N - sum(len(p) for p in parts) + 1) // 2
        parts.append(_children(Y, _fitness(v.astype(np.float64)), pairs, rng))
        X = np.concatenate(parts)[:N]
        mean = float(v.mean())
        if mean > best:
            best, stale = mean, 0
        else:
            stale += 1
            if stale > patience:
                break
    codes, values = cap_archive(np.concatenate(archive_codes), np.concatenate(archive_values), archive_cap,
                                bins=archive_bins, rng=rng)
    return Samples(codes, values, "ga" if use_grad else "ga-gradient-free", generation + 1, evaluated)
