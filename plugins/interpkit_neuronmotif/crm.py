"""CN CRMs (convolutional-neuron cis-regulatory modules): activation-weighted PPMs of demixed clusters,
their motif segments, and a quality score.

Wei et al. (2023), PNAS 120:e2216698120. Formulas of the reference code (wzthu/NeuronMotif ``kmeans.py``,
``segment.py``, ``build_dict.py``):

- PPM: the cluster's samples are binned by activation into B equal bins over (0, max]; each non-empty
  bin's position frequency matrix counts with the bin's mean activation as weight (an empty bin reuses
  the bin above with its mid value), and the weighted sum is normalised per position. High activations
  dominate whatever their numbers.
- Decoupling indicator: the neuron's value on the PPM's consensus over the cluster's best value
  (near 1 when the cluster is one arrangement; lower for a blend).
- Segments: information content of the PPM smoothed towards uniform with pseudo-count weight 30,
  averaged over 3 bp, above a threshold, widened by 1 bp each side, kept when >= 4 bp.
- Quality: (mean segment IC - background IC) / max + decoupling indicator + max activation / max,
  each term scaled to a maximum of 1 over the neuron's CRMs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from interpkit.motifs import information_content
from interpkit_neuronmotif.neuron import one_hot

__all__ = ["CRM", "SEGMENT_IC", "binned_ppm", "quality_scores", "segments"]

#: Segment threshold in bits. The reference compares 2 - H (H in nats) with 1, i.e. entropy below one
#: nat: information content above 2 - 1/ln 2 = 0.557 bits. Kept, in bits.
SEGMENT_IC = 2 - 1 / math.log(2)


@dataclass(frozen=True)
class CRM:
    """One CN CRM of a neuron.

    Attributes
    ----------
    index : ndarray of shape (n,), int64
        The samples (rows of the neuron's archive) in the cluster.
    ppm : ndarray of shape (4, R), float64
        Activation-binned weighted PPM over the receptive field.
    max_value : float
        Best activation in the cluster (pre-activation units of the layer).
    consensus_value : float
        The neuron's activation on the PPM's consensus sequence.
    segments : tuple of (int, int)
        Motif segments [start, end) in bp of the window.
    """

    index: np.ndarray
    ppm: np.ndarray
    max_value: float
    consensus_value: float
    segments: tuple[tuple[int, int], ...] = ()

    @property
    def n(self) -> int:
        """Number of samples."""
        return len(self.index)

    @property
    def decoupling(self) -> float:
        """consensus_value / max_value (Wei et al. 2023's decoupling indicator for one CRM)."""
        return self.consensus_value / self.max_value if self.max_value > 0 else float("nan")


def binned_ppm(codes: np.ndarray, values: np.ndarray, *, bins: int = 50) -> np.ndarray:
    """Activation-binned weighted PPM of windows.

    Parameters
    ----------
    codes : ndarray of shape (n, R), uint8
        Windows (codes 0-3), n >= 1.
    values : ndarray of shape (n,)
        Their activations, > 0.
    bins : int
        B, equal bins over (0, max(values)]. Default is 50 (the reference's paper demos; its generic
        code uses 20).

    Returns
    -------
    ppm : ndarray of shape (4, R), float64
        Columns sum to 1.
    """
    values = np.asarray(values, dtype=np.float64)
    top = values.max()
    which = np.clip(np.ceil(values / top * bins).astype(np.int64), 1, bins)
    onehot = one_hot(codes)
    total = np.zeros((4, codes.shape[1]))
    previous = None
    for j in range(bins, 0, -1):
        members = which == j
        if members.any():
            previous, weight = onehot[members].mean(axis=0), values[members].mean()
        elif previous is not None:
            weight = top * (j - 0.5) / bins
        else:
            continue
        total += weight * previous
    return total / total.sum(axis=0, keepdims=True)


def _smoothed(ppm: np.ndarray, n: int, pseudo: float) -> np.ndarray:
    return (ppm * n + pseudo * 0.25) / (n + pseudo)


def segments(ppm: np.ndarray, n: int, *, pseudo: float = 30.0, threshold: float = SEGMENT_IC, flank: int = 1,
             min_length: int = 4) -> tuple[tuple[int, int], ...]:
    """Motif segments of a CRM: runs of informative positions.

    Parameters
    ----------
    ppm : ndarray of shape (4, R)
    n : int
        Samples behind the PPM (the smoothing weighs it against ``pseudo`` uniform counts).
    pseudo : float
        Pseudo-count weight towards uniform before the information content. Default is 30.
    threshold : float
        Bits the 3-bp mean information content must exceed. Default is :data:`SEGMENT_IC` (0.557).
    flank : int
        bp added on each side of a run. Default is 1.
    min_length : int
        Shortest segment kept, bp. Default is 4.

    Returns
    -------
    tuple of (start, end)
        Half-open bp intervals of the window, left to right.
    """
    ic = information_content(_smoothed(ppm, n, pseudo))
    R = len(ic)
    mean = np.zeros(R)
    if R >= 3:
        mean[1:-1] = (ic[:-2] + ic[1:-1] + ic[2:]) / 3
    hot = mean > threshold
    grown = hot.copy()
    for d in range(1, flank + 1):
        grown[:-d] |= hot[d:]
        grown[d:] |= hot[:-d]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], grown.astype(np.int8), [0]])))
    return tuple((int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_length)


def quality_scores(crms: list[CRM]) -> np.ndarray:
    """Quality of each CRM of one neuron (higher is better), shape (K,), float64.

    score = segment IC gain / its max + decoupling indicator + max value / its max, where the segment IC
    gain is the mean information content (PPM smoothed with one uniform count) inside segments minus that
    outside. A CRM without segments has gain 0 (the reference code gave NaN).
    """
    if not crms:
        return np.zeros(0)
    gain = np.zeros(len(crms))
    for i, c in enumerate(crms):
        ic = information_content(_smoothed(c.ppm, c.n, 1.0))
        inside = np.zeros(len(ic), dtype=bool)
        for a, b in c.segments:
            inside[a:b] = True
        if inside.any() and (~inside).any():
            gain[i] = ic[inside].mean() - ic[~inside].mean()
        elif inside.any():
            gain[i] = ic.mean()
    top = np.array([c.max_value for c in crms])
    decoupling = np.nan_to_num(np.array([c.decoupling for c in crms]))
    scale = gain.max() if gain.max() > 0 else 1.0
    return gain / scale + decoupling + top / top.max()
