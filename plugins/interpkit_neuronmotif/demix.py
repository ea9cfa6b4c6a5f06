"""Backward, layer-wise demixing of a neuron's samples by activation-weighted k-means (scikit-learn).

Wei et al. (2023), PNAS 120:e2216698120: a neuron above max-pools sees each lower motif in one of p slots
per pool, so its samples mix up to prod(p) arrangements. Going down from the deepest pool, the samples
are clustered on the feature map entering that pool (the stage's pre-activation values inside the
window), into p^m clusters (m "flexible motifs", usually 1), weighted by the neuron's activation; each
cluster is split again at the pool below, until the first stage or fewer than 50 samples (the reference
code's ``cluster_motif``). The decoupling indicator (consensus activation over best activation) chooses m.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from interpkit.errors import InputError

__all__ = ["DECOUPLED", "MIN_SPLIT", "demix", "weighted_kmeans"]

#: Clusters smaller than this are not split further (reference code, generic version).
MIN_SPLIT = 50
#: A neuron is decoupled when some CRM's consensus reaches this fraction of the best activation.
DECOUPLED = 0.95
#: k-means restarts (k-means++ seeds) per fit.
_RESTARTS = 3
#: Feature values held in memory for one k-means fit; above it the fit uses a subsample.
_FIT_BUDGET = 25_000_000


def _kmeans(k: int, random_state: int):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=_RESTARTS, random_state=random_state)


def weighted_kmeans(features: np.ndarray, weights: np.ndarray, k: int, *, random_state: int) -> np.ndarray:
    """k-means with sample weights (scikit-learn ``KMeans``, k-means++, 3 restarts, as the reference's
    ``MiniBatchKMeans`` defaults).

    Parameters
    ----------
    features : ndarray of shape (n, d), float32
    weights : ndarray of shape (n,)
        Positive (the neuron's activations).
    k : int
        Clusters, <= n.
    random_state : int

    Returns
    -------
    labels : ndarray of shape (n,), int64
        0..k-1.
    """
    return _kmeans(k, random_state).fit(features, sample_weight=weights).labels_.astype(np.int64)


def _labels(features: Callable[[np.ndarray], np.ndarray], index: np.ndarray, weights: np.ndarray, k: int,
            width: int, random_state: int) -> np.ndarray:
    """Cluster labels of ``index``; above the memory budget the fit uses a uniform random subsample (with its
    weights) and every sample is then assigned in chunks."""
    n = len(index)
    if n * width <= _FIT_BUDGET:
        return weighted_kmeans(features(index), weights, k, random_state=random_state)
    rng = np.random.default_rng(random_state)
    fit = np.sort(rng.choice(n, max(k, _FIT_BUDGET // width), replace=False))
    km = _kmeans(k, random_state).fit(features(index[fit]), sample_weight=weights[fit])
    step = max(1, _FIT_BUDGET // (4 * width))
    return np.concatenate([km.predict(features(index[a:a + step])) for a in range(0, n, step)]).astype(np.int64)


def demix(
    values: np.ndarray,
    features: Callable[[np.ndarray, int], np.ndarray],
    pools: list[int],
    widths: list[int],
    *,
    m: int = 1,
    min_split: int = MIN_SPLIT,
    random_state: int = 0,
) -> list[np.ndarray]:
    """Split a neuron's samples into clusters, one per arrangement of its lower motifs.

    Parameters
    ----------
    values : ndarray of shape (n,), float32
        The neuron's (positive) value on each sample; the k-means weights.
    features : callable (index (k,) int64, level) -> (k, d_level) float32
        The pre-pool feature map of stage ``level`` for the samples ``index``.
    pools : list of int
        Pool size after each stage below the target, bottom first (1 where there is none).
    widths : list of int
        d_level, the feature width of each stage (positions x channels).
    m : int
        Flexible motifs: each pool of size p splits into p^m clusters. Default is 1.
    min_split : int
        Clusters with fewer samples are not split. Default is 50 (the reference's generic code; its
        paper demos had none).
    random_state : int
        k-means seed. Default is 0.

    Returns
    -------
    list of ndarray of int64
        Sample indices of each cluster (CRM), depth first from the deepest pool; at each split the
        clusters are ordered by their best value (then size), so that the order does not depend on
        k-means' label numbering.

    Raises
    ------
    InputError
        If m < 1.
    """
    if m < 1:
        raise InputError(f"m == {m}: the number of flexible motifs must be >= 1.")

    def split(index: np.ndarray, level: int) -> list[np.ndarray]:
        if level < 0:
            return [index]
        k = pools[level] ** m
        if k == 1:
            return split(index, level - 1)
        if len(index) < max(k, min_split):
            return [index]
        labels = _labels(lambda i: features(i, level), index, values[index], k, widths[level], random_state)
        groups = [index[labels == c] for c in range(k) if (labels == c).any()]
        groups.sort(key=lambda g: (-float(values[g].max()), -len(g)))
        return [part for g in groups for part in split(g, level - 1)]

    return split(np.arange(len(values)), len(pools) - 1)
