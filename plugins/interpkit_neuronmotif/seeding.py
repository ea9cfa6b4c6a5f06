"""The GA's first population for a layer-L neuron, built from the CN CRMs of layer L-1.

Wei et al. (2023), PNAS 120:e2216698120 (reference code ``vis.py``): instead of random windows, each
starting window holds consensus sequences of lower-layer CRMs at the places where the neuron weighs them,
so the search starts near the motifs the neuron combines. The reference reads those weights from the
neuron's convolution kernel; here, through LayerProbe only, the weight of lower channel c at lower
position t is measured: the mean gain of the neuron's value when c's best CRM consensus is written at
t into random windows. Pairs (c, t) with a positive gain are drawn in proportion to it, as many per window
as the pool below the neuron is wide; a drawn CRM whose motif span (columns over 1 bit) would overlap one
already written is skipped, and its other columns fill only places no motif holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from interpkit.errors import InputError
from interpkit.motifs import information_content
from interpkit_neuronmotif.neuron import Neuron
from interpkit_neuronmotif.stack import NeuronStack

__all__ = ["lower_consensus", "seed_population"]

#: Random windows per (channel, position) when measuring the neuron's weights.
_PROBES = 8


def lower_consensus(result: Any, stack: NeuronStack) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Consensus codes of the activating CRMs of each lower-layer neuron, from that layer's result.

    Parameters
    ----------
    result : NeuronMotifResult, path or None
        The ``neuronmotif`` result of layer L-1 (or the directory it was written to).
    stack : NeuronStack
        The target neuron's stack (layer L).

    Returns
    -------
    dict of int to (ndarray of shape (k, R_{L-1}), uint8; ndarray of shape (k, 2), int64)
        Lower channel -> the consensus codes of its CRMs whose consensus activates it, best first, and
        each one's motif span [first, last + 1) of columns with more than 1 bit of information.

    Raises
    ------
    InputError
        If the result is not of the stage below the target (another layer or receptive field).
    """
    if len(stack.stages) < 2:
        raise InputError("seed_from: the first convolution has no layer below it; leave seed_from out.")
    below = stack.stages[-2]
    if isinstance(result, (str, bytes)) or hasattr(result, "__fspath__"):
        import json
        from pathlib import Path

        folder = Path(result)
        try:
            params = json.loads((folder / "neuronmotif.json").read_text())["params"]
            with np.load(folder / "neuronmotif.npz") as f:
                arrays = {k: f[k] for k in ("crm_ppm", "crm_neuron", "crm_consensus_activation")}
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"seed_from {folder} is not a neuronmotif output directory ({exc}).") from None
        layer = params.get("layer")
    else:
        arrays, layer = result.arrays, result.layer
    ppm = arrays["crm_ppm"]
    if layer != below.conv or ppm.shape[2] != below.receptive_field:
        raise InputError(f"seed_from holds layer {layer!r} ({ppm.shape[2]} bp); seeding layer {stack.target.conv!r} "
                         f"needs the layer below it, {below.conv!r} ({below.receptive_field} bp).")
    out: dict[int, list[tuple[np.ndarray, tuple[int, int]]]] = {}
    order = np.argsort(-arrays["crm_consensus_activation"], kind="stable")
    for i in order:
        informative = np.flatnonzero(information_content(ppm[i]) > 1.0)  # the motif span (reference: > 1 bit)
        if arrays["crm_consensus_activation"][i] > 0 and len(informative):
            span = (int(informative[0]), int(informative[-1]) + 1)
            out.setdefault(int(arrays["crm_neuron"][i]), []).append((ppm[i].argmax(axis=0).astype(np.uint8), span))
    return {c: (np.stack([v[0] for v in items]), np.array([v[1] for v in items], dtype=np.int64))
            for c, items in out.items()}


def seed_population(neuron: Neuron, consensus: dict[int, np.ndarray], n: int, rng: np.random.Generator
                    ) -> np.ndarray:
    """n starting windows for the neuron's GA, seeded with lower-layer CRM consensus sequences.

    Parameters
    ----------
    neuron : Neuron
        Of layer L.
    consensus : dict of int to (codes, spans)
        From :func:`lower_consensus`.
    n : int
        Population size.
    rng : numpy.random.Generator

    Returns
    -------
    codes : ndarray of shape (n, R), uint8
        Random windows with up to p consensus sequences written in each (p = the pool size below the
        neuron); all random when no lower CRM raises the neuron.
    """
    stack = neuron.stack
    below = stack.stages[-2]
    R, r, jump = stack.receptive_field, below.receptive_field, below.jump
    slots = stack.count(len(stack.stages) - 2)
    channels = sorted(consensus)
    X = rng.integers(0, 4, (n, R), dtype=np.uint8)
    if not channels:
        return X
    probes = rng.integers(0, 4, (_PROBES, R), dtype=np.uint8)
    base = neuron.values(probes).mean()
    trial = np.repeat(probes[None, None], len(channels), axis=0).repeat(slots, axis=1)  # (C, T, B, R)
    for i, c in enumerate(channels):
        for t in range(slots):
            trial[i, t, :, t * jump:t * jump + r] = consensus[c][0][0]
    gain = neuron.values(trial.reshape(-1, R)).reshape(len(channels), slots, _PROBES).mean(axis=2) - base
    weights = np.maximum(gain, 0).ravel()
    if not weights.any():
        return X
    taken = np.zeros((n, R), dtype=bool)  # motif spans written so far
    rows = np.arange(n)[:, None]
    for _ in range(min(below.pool, int((weights > 0).sum()))):
        chan, slot = np.divmod(rng.choice(weights.size, n, p=weights / weights.sum()), slots)
        which = [rng.integers(len(consensus[channels[c]][0])) for c in chan]
        codes = np.stack([consensus[channels[c]][0][w] for c, w in zip(chan, which)])  # (n, r)
        spans = np.stack([consensus[channels[c]][1][w] for c, w in zip(chan, which)])  # (n, 2)
        cols = slot[:, None] * jump + np.arange(r)[None, :]  # (n, r) window columns of each drawn CRM
        in_span = (np.arange(r)[None, :] >= spans[:, :1]) & (np.arange(r)[None, :] < spans[:, 1:])
        fits = ~(taken[rows, cols] & in_span).any(axis=1)  # a motif span over another one: skip that CRM
        write = fits[:, None] & ~taken[rows, cols]  # its other columns go where no motif is yet
        X[rows, cols] = np.where(write, codes, X[rows, cols])
        taken[rows, cols] |= fits[:, None] & in_span
    return X
