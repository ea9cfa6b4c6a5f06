"""The ``neuronmotif`` method: CN CRMs of convolutional neurons, for one neuron, a list, or a whole layer.

Per neuron: forward sampling (enumeration or the genetic algorithm), backward demixing into CRMs with the
number of flexible motifs m chosen by the decoupling indicator, activation-binned PPMs, motif segments and
a quality ranking. Finished neurons are written to a checkpoint directory as they finish, so an
interrupted layer resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from interpkit import Motif, Predictor
from interpkit._io import atomic_write
from interpkit.chunks import make_checkpoint_dir
from interpkit.errors import InputError
from interpkit.threads import cpu_workers
from interpkit.validation import check_choice, check_scalar
from interpkit_neuronmotif import SAMPLINGS
from interpkit_neuronmotif.crm import CRM, binned_ppm, quality_scores, segments
from interpkit_neuronmotif.demix import DECOUPLED, MIN_SPLIT, demix
from interpkit_neuronmotif.neuron import Neuron, one_hot
from interpkit_neuronmotif.result import NeuronMotifResult, assemble, file_safe
from interpkit_neuronmotif.sampling import (
    ENUMERATE_BELOW,
    Samples,
    enumerate_windows,
    genetic_sampling,
    population_size,
)
from interpkit_neuronmotif.seeding import lower_consensus, seed_population
from interpkit_neuronmotif.stack import NeuronStack, neuron_stack

__all__ = ["NeuronReport", "analyse_neuron", "neuronmotif"]

#: Version of the checkpoint layout; a change makes old checkpoints refuse to load.
_CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class NeuronReport:
    """What one neuron's analysis produced (saved as one .npz per neuron).

    Attributes
    ----------
    channel : int
    method : str
        "enumeration", "ga" or "ga-gradient-free".
    generations, evaluated, samples : int
        GA generations, windows scored, unique positive windows kept.
    m : int
        Flexible motifs used by the demixing (0 for a dead neuron).
    undemixed : ndarray of shape (4, R), float64
        Binned PPM of all samples before demixing.
    crms : tuple of CRM
    quality : ndarray of shape (K,), float64
    """

    channel: int
    method: str
    generations: int
    evaluated: int
    samples: int
    m: int
    undemixed: np.ndarray
    crms: tuple[CRM, ...] = ()
    quality: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _neurons(value: Any, channels: int) -> list[int]:
    if value is None or (isinstance(value, str) and value.strip() == "all"):
        return list(range(channels))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        items = [int(value)]
    elif isinstance(value, str):
        try:
            text = value.strip()
            items = list(range(*map(int, text.split(":")))) if ":" in text else [int(v) for v in text.split(",")]
        except ValueError:
            raise InputError(f"neurons == {value!r} must be 'all', ints separated by ',' or START:STOP, "
                             "e.g. '0,3,7'.") from None
    else:
        items = [int(v) for v in value]
    bad = [k for k in items if not 0 <= k < channels]
    if bad or not items:
        raise InputError(f"neurons {bad or items} are not channels of the layer (0..{channels - 1}).")
    return sorted(set(items))


def _crms(neuron: Neuron, samples: Samples, stack: NeuronStack, *, m: int, bins: int, min_split: int,
          random_state: int) -> list[CRM]:
    pools = [s.pool for s in stack.stages[:-1]]
    widths = [stack.feature_width(level) for level in range(len(pools))]
    clusters = demix(samples.values, lambda idx, level: neuron.features(samples.codes[idx], level), pools, widths,
                     m=m, min_split=min_split, random_state=random_state)
    ppms = [binned_ppm(samples.codes[c], samples.values[c], bins=bins) for c in clusters]
    consensus = neuron.values(np.stack([p.argmax(axis=0) for p in ppms]).astype(np.uint8)) if ppms else []
    return [CRM(c, p, float(samples.values[c].max()), float(v), segments(p, len(c)))
            for c, p, v in zip(clusters, ppms, consensus)]


def analyse_neuron(neuron: Neuron, *, sampling: str = "auto", m: int | str = "auto", max_m: int = 3,
                   population: int | None = None, max_generations: int = 200, bins: int = 50,
                   min_split: int = MIN_SPLIT, random_state: int = 0, seeds: dict | None = None,
                   verbose: bool = False) -> NeuronReport:
    """Sample, demix and summarise one neuron (Wei et al. 2023; see :func:`neuronmotif` for the options).

    Parameters
    ----------
    neuron : Neuron
        The neuron, through its backend.
    seeds : dict or None
        The lower layer's CRM consensus sequences and motif spans
        (:func:`~interpkit_neuronmotif.seeding.lower_consensus`) for the GA's first population.
    sampling, m, max_m, population, max_generations, bins, min_split, random_state, verbose
        As :func:`neuronmotif`.

    Returns
    -------
    NeuronReport
        With no CRMs (and a 0 sample count) for a dead neuron, one that no window activates.
    """
    stack = neuron.stack
    rng = np.random.default_rng([random_state, neuron.channel])
    R = stack.receptive_field
    if sampling == "enumerate" or (sampling == "auto" and R < ENUMERATE_BELOW):
        samples = enumerate_windows(neuron)
    else:
        # A fused activation (Keras Conv1D(activation=...)) is read after it: no gradient below 0.
        free = sampling == "ga-gradient-free" or stack.target.fused_activation is not None
        initial = None
        if seeds:
            initial = seed_population(neuron, seeds, population or population_size(R), rng)
        samples = genetic_sampling(neuron, rng=rng, population=population, max_generations=max_generations,
                                   initial=initial, archive_bins=bins,
                                   gradient=False if free else None, verbose=verbose)
    report = NeuronReport(neuron.channel, samples.method, samples.generations, samples.evaluated,
                          len(samples.values), 0, np.full((4, R), 0.25))
    if not len(samples.values):
        return report
    tried = [m] if m != "auto" else list(range(1, max_m + 1))
    best: tuple[float, int, list[CRM]] | None = None
    for mm in tried:
        crms = _crms(neuron, samples, stack, m=mm, bins=bins, min_split=min_split, random_state=random_state)
        indicator = max(c.decoupling for c in crms)
        if best is None or indicator > best[0]:
            best = (indicator, mm, crms)
        if stack.facets == 1 or indicator > DECOUPLED:
            break
    _, chosen, crms = best
    return replace(report, m=chosen, undemixed=binned_ppm(samples.codes, samples.values, bins=bins),
                   crms=tuple(crms), quality=quality_scores(crms))


def _fingerprint(model: Predictor, stack: NeuronStack, options: dict) -> str:
    """What a checkpoint must have been computed with: the options, the stack, and the model's weights as
    seen through the layer's values on two fixed random inputs (model names repeat: "weight.hdf5")."""
    length = model.input_spec.length or stack.begin + stack.receptive_field
    probe = np.random.default_rng(12345).integers(0, 4, (2, length))
    values = model.activations(one_hot(probe.astype(np.uint8)), stack.target.value_layer)
    scaled = np.round(values / (np.abs(values).max() + 1e-12), 3)  # robust to float noise between runs
    text = json.dumps({"version": _CHECKPOINT_VERSION, "stack": [s.__dict__ for s in stack.stages], **options},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode() + scaled.astype(np.float32).tobytes()).hexdigest()[:16]


def _checkpoint_path(directory: Path, stack: NeuronStack, channel: int) -> Path:
    return directory / f"{file_safe(stack.target.conv)}_neuron{channel}.npz"


def _save(path: Path, report: NeuronReport, fingerprint: str) -> None:
    crms = report.crms
    arrays = {
        "fingerprint": np.array(fingerprint), "channel": np.array(report.channel),
        "method": np.array(report.method), "generations": np.array(report.generations),
        "evaluated": np.array(report.evaluated), "samples": np.array(report.samples),
        "m": np.array(report.m), "undemixed": report.undemixed, "quality": report.quality,
        "n_crms": np.array(len(crms)),
    }
    for i, c in enumerate(crms):
        arrays[f"crm{i}_index"] = c.index
        arrays[f"crm{i}_ppm"] = c.ppm
        arrays[f"crm{i}_values"] = np.array([c.max_value, c.consensus_value])
        arrays[f"crm{i}_segments"] = np.array(c.segments, dtype=np.int64).reshape(-1, 2)
    with atomic_write(path, mode="wb", overwrite=True) as handle:
        np.savez(handle, **arrays)


def _load(path: Path, fingerprint: str) -> NeuronReport:
    with np.load(path, allow_pickle=False) as f:
        if str(f["fingerprint"]) != fingerprint:
            raise InputError(f"checkpoint {path} was computed with other options or another model; give a new "
                             "checkpoint directory (or delete that file to recompute the neuron).")
        crms = [CRM(f[f"crm{i}_index"], f[f"crm{i}_ppm"], float(f[f"crm{i}_values"][0]),
                    float(f[f"crm{i}_values"][1]), tuple(map(tuple, f[f"crm{i}_segments"].tolist())))
                for i in range(int(f["n_crms"]))]
        return NeuronReport(int(f["channel"]), str(f["method"]), int(f["generations"]), int(f["evaluated"]),
                            int(f["samples"]), int(f["m"]), f["undemixed"], tuple(crms), f["quality"])


def neuronmotif(
    model: Predictor,
    X: np.ndarray | None = None,
    *,
    layer: str | int | None = None,
    neurons: Any = "all",
    sampling: str = "auto",
    m: int | str = "auto",
    max_m: int = 3,
    population: int | None = None,
    max_generations: int = 200,
    bins: int = 50,
    min_split: int = MIN_SPLIT,
    checkpoint_dir: str | os.PathLike | None = None,
    seed_from: Any = None,
    n_jobs: int = 1,
    motif_db: str | os.PathLike | None = "jaspar",
    random_state: int = 0,
    verbose: bool = False,
) -> NeuronMotifResult:
    """NeuronMotif: the CN CRMs (motif arrangements) that activate convolutional neurons, on any CNN.

    For each neuron (channel) of ``layer``: windows of its receptive field that activate it are sampled
    (all 4^R when R < 11 bp, else a genetic algorithm with gradient-guided mutation), demixed backwards
    through the max-pools below it by activation-weighted k-means into CRMs, and each CRM summarised as
    an activation-binned PPM with motif segments, a decoupling indicator and a quality score.

    Parameters
    ----------
    model : Predictor with LayerProbe
        Any backend with layers and single neurons (PyTorch, Keras, ONNX); gradients speed up sampling.
    X : None
        Not used: NeuronMotif samples its own sequences. Default is None.
    layer : str or int
        The convolution (or its normalisation or activation layer), by name or layer-table index
        (``interpkit info MODEL`` lists them).
    neurons : "all", int, sequence of int or str
        Channels to analyse: "all", "0,3,7" or "0:16". Default is "all".
    sampling : {"auto", "enumerate", "ga", "ga-gradient-free"}
        "auto" enumerates receptive fields under 11 bp and runs the GA otherwise (gradient-guided when the
        backend has gradients). Default is "auto".
    m : int or "auto"
        Flexible motifs per pool (each pool of size p splits into p^m clusters). "auto" tries 1, 2, ...
        ``max_m`` and keeps the first whose decoupling indicator (its best CRM's consensus activation over
        the neuron's best activation) exceeds 0.95, else the m with the highest indicator. The reference
        applies the 0.95 rule to a whole layer (a t-test over its neurons) in an unbounded loop; here it is
        per neuron, so neurons stay independent (resumable, parallel). Default is "auto".
    max_m : int
        Largest m tried by "auto". Default is 3.
    population : int or None
        GA population; None is the reference's clamp(floor(R / 20) * 1000, 2000, 5000). Default is None.
    max_generations : int
        GA generations at most. Default is 200.
    bins : int
        Activation bins of the PPMs and of the archive strata. Default is 50 (the paper's demos).
    min_split : int
        Clusters smaller than this are not split. Default is 50.
    checkpoint_dir : path or None
        Each finished neuron is written there (``<conv>_neuron<k>.npz``, atomically) and read back on a
        rerun with the same options instead of being recomputed. Default is None (no checkpoints).
    seed_from : NeuronMotifResult, path or None
        The result (or output directory) of this method on the layer below: the GA's first population
        then holds its CRMs' consensus sequences where they raise the neuron
        (:mod:`~interpkit_neuronmotif.seeding`), as the reference code seeds layer by layer. Default is
        None (random windows).
    n_jobs : int
        Neurons analysed at once, on worker threads (-1: one per CPU core). Model calls still run one at
        a time (layer probes are not thread-safe; each uses the framework's own threads), and a neuron's
        sampling, k-means and PPMs overlap other neurons' model calls; results equal n_jobs=1's.
        Default is 1.
    motif_db : "jaspar", path, "none" or None
        Motifs to annotate CRM segments and dictionary motifs with (Tomtom, both strands): "jaspar" is
        the newest JASPAR CORE vertebrates release shipped with pyjaspar (no network), a path a MEME
        file, "none" or None no annotation. Default is "jaspar".
    random_state : int
        Seed of the sampling and of k-means. Default is 0.
    verbose : bool
        Progress bars. Default is False.

    Returns
    -------
    NeuronMotifResult
        Arrays (K CRMs over all neurons, R = receptive field in bp, U neurons):

        - ``crm_ppm``: (K, 4, R), float64; ``crm_neuron``: (K,), int64, the channel of each;
        - ``crm_n``, (K,) int64; ``crm_max_activation``, ``crm_consensus_activation``,
          ``crm_decoupling``, ``crm_quality``: (K,) float64 (activations in the layer's pre-activation
          units);
        - ``undemixed_ppm``: (U, 4, R), float64, each neuron's samples before demixing;
        - ``neurons``, ``samples``, ``m``, ``generations``: (U,), int64.

        Tables: ``crms`` (neuron, crm, n, max_activation, consensus_activation, decoupling, quality,
        rank (1 = best quality in its neuron), consensus, segments, and the best database match of its
        segments with q <= 0.05, else empty: match_id, match_name, q_value); ``neurons`` (with the number of dictionary motifs and the main syntax tree);
        ``dictionary`` (neuron, motif, consensus, segments, best match, q_value, orientation);
        ``syntax`` (neuron, word, crms, gaps_bp, tree), see
        :mod:`~interpkit_neuronmotif.dictionary` and :mod:`~interpkit_neuronmotif.syntax`.
        Motifs: every CRM (id ``<conv>_n<k>_crm<i>``), segment (``..._<start>_<end>``) and dictionary
        motif (``<conv>_n<k>_m<i>``, named by its match when q < 0.01).

    Raises
    ------
    InputError
        For a layer that is not a convolution in a plain chain (see
        :func:`~interpkit_neuronmotif.stack.neuron_stack`), bad neurons or options, X given, or a
        checkpoint computed with other options.

    Notes
    -----
    Source: Wei, Zhang, Wang et al. (2023), PNAS 120:e2216698120, and its reference code
    (wzthu/NeuronMotif), whose constants are kept. Differences: any backend through LayerProbe; codes and
    arrays are vectorised over the population; m is bounded; a CRM without segments scores 0 (not NaN).
    """
    if X is not None:
        raise InputError("neuronmotif samples its own windows; leave out the sequences (X / --sequences).")
    if layer is None:
        raise InputError("neuronmotif needs a layer, e.g. layer='conv1d_2' (--layer); `interpkit info MODEL` "
                         "lists them.")
    check_choice(sampling, "sampling", SAMPLINGS)
    if m != "auto":
        m = check_scalar(int(m) if isinstance(m, str) and m.isdigit() else m, "m", int, min_val=1)
    for name, value, low in (("max_m", max_m, 1), ("max_generations", max_generations, 1), ("bins", bins, 1),
                             ("min_split", min_split, 2), ("random_state", random_state, 0)):
        check_scalar(value, name, int, min_val=low)
    if population is not None:
        check_scalar(population, "population", int, min_val=10)
    stack = neuron_stack(model.layers(), layer)
    channels = _neurons(neurons, stack.target.channels)
    database, database_name = _database(motif_db)  # before the work: a bad path must not cost a layer
    options = {"sampling": sampling, "m": m, "max_m": max_m, "population": population,
               "max_generations": max_generations, "bins": bins, "min_split": min_split, "random_state": random_state}
    directory = None if checkpoint_dir is None else Path(checkpoint_dir)
    if directory is not None:  # marked as interpkit's, so that --force may delete it and --resume trust it
        make_checkpoint_dir(directory)
    seeds = None if seed_from is None else lower_consensus(seed_from, stack)
    seeded = {str(c): [codes.tolist(), spans.tolist()] for c, (codes, spans) in (seeds or {}).items()}
    fingerprint = _fingerprint(model, stack, {**options, "seeds": seeded})

    def one(k: int) -> tuple[NeuronReport, float, int]:
        path = None if directory is None else _checkpoint_path(directory, stack, k)
        if path is not None and path.exists():
            return _load(path, fingerprint), 0.0, 0
        neuron = Neuron(model, stack, k, lock)
        report = analyse_neuron(neuron, **options, seeds=seeds, verbose=verbose and n_jobs == 1)
        if path is not None:
            _save(path, report, fingerprint)  # as each finishes: an interrupted layer resumes here
        return report, neuron.passes, neuron.calls

    workers = min(cpu_workers(n_jobs), len(channels))
    lock = threading.Lock() if workers > 1 else None  # model calls one at a time; the rest overlaps
    if workers == 1:
        done = [one(k) for k in channels]
    else:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(workers)
        try:
            done = [f.result() for f in [pool.submit(one, k) for k in channels]]
        except BaseException:  # an error or Ctrl-C: drop the neurons not started (finished ones are saved)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
    reports = [d[0] for d in done]
    passes = [d[1] for d in done]
    evaluated = sum(d[2] for d in done)
    warnings = []
    if stack.target.fused_activation:
        warnings.append(f"layer {stack.target.conv!r} has a fused {stack.target.fused_activation} activation: its "
                        "neurons are read after it (the positive windows are the same), and the GA mutates without "
                        "gradients, which vanish below 0 there.")
    params = {"layer": stack.target.conv, "neurons": channels, **options, "motif_db": database_name,
              "seed_from": None if seed_from is None else str(getattr(seed_from, "layer", seed_from)), "n_jobs": n_jobs,
              "checkpoint_dir": None if directory is None else str(directory)}
    return assemble(stack, reports, params=params, warnings=warnings, database=database,
                    timing={"model_seconds": float(sum(passes)), "windows_evaluated": evaluated, "workers": workers})


def _database(motif_db: Any) -> tuple[list[Motif] | None, str]:
    """The annotation motifs named by ``motif_db`` (see :func:`neuronmotif`) and what they are."""
    if motif_db is None or motif_db == "none":
        return None, "none"
    if motif_db == "jaspar":
        from interpkit.jaspar import fetch_jaspar, jaspar_releases

        release = jaspar_releases()[0]
        return fetch_jaspar(release=release), f"{release} CORE vertebrates (pyjaspar)"
    from interpkit.meme import read_meme

    if not Path(motif_db).is_file():
        from interpkit.errors import MissingFileError

        raise MissingFileError(f"motif_db {motif_db} is not a file; give a MEME file, 'jaspar' or 'none'.")
    return list(read_meme(motif_db).motifs), str(motif_db)
