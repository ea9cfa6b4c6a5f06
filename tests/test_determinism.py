"""Determinism: one seed gives one answer, whatever the batch size, thread count, worker count or chunking.

Covered: DeepLIFT's dinucleotide-shuffled references, GIA's null models and per-background draws,
NeuronMotif's sampled windows. Oracles: whatever is drawn at random (references, backgrounds, every
sequence GIA predicts, NeuronMotif's windows) must be bit-for-bit equal across settings, and different
under another seed (so each test can fail). Model outputs computed from them may differ by float32
rounding only: the convolutions' summation order depends on the batch's shape and on the thread
count (measured on the ExplaiNN checkpoint: 2.4e-6 of the output scale between batch sizes 1 and
9, 1.8e-7 between 1 and 2 threads), so they are compared within 1e-5 of the output scale.
Models: the ExplaiNN checkpoint shipped with interpkit (CTCF, 200 bp) on real CTCF peaks, and the
PyTorch twin of tests/twins.py for NeuronMotif (conv2: a 21-bp receptive field, so the GA runs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from interpkit_deeplift import rescale
from interpkit_deeplift.deeplift import deeplift, deeplift_references
from interpkit_gia import interventions
from interpkit_gia.gia import gia
from interpkit_neuronmotif import neuron as neuron_module
from interpkit_neuronmotif import neuronmotif as nm_module
from interpkit_neuronmotif.neuronmotif import neuronmotif
from twins import LENGTH, torch_twin

import interpkit
from interpkit.data import CTCF_PEAKS
from interpkit.errors import InputError
from interpkit.explain import DEFAULT_MODEL
from interpkit.sequences import read_sequences
from interpkit.threads import one_torch_thread

#: Largest difference between model outputs of two settings, relative to the output scale.
RTOL = 1e-5


@contextmanager
def two_torch_threads() -> Iterator[None]:
    """PyTorch on two intra-op threads inside the block; the previous count restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def assert_close(ours: np.ndarray, theirs: np.ndarray, scale: float) -> None:
    """Equal up to float32 rounding: NaN at the same places, |difference| <= RTOL * scale."""
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.nanmax(np.abs(ours - theirs), initial=0.0) <= RTOL * scale


@pytest.fixture(scope="module")
def explainn():
    return interpkit.load(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def peaks() -> np.ndarray:
    return read_sequences(CTCF_PEAKS)[1]


# -- DeepLIFT: references seeded per sequence by (random_state, start_index + i) -------------------------------
def deeplift_with_references(model, X, monkeypatch, **kw):
    """deeplift's result and the references that went into it, (N, R, 4, L), read at the rescale rule's door."""
    seen = []
    original = rescale.paired_graph

    def spy(forward, x, r):
        seen.append(r.detach().cpu().numpy().reshape(len(x), -1, *x.shape[1:]))
        return original(forward, x, r)

    with monkeypatch.context() as patch:
        patch.setattr(rescale, "paired_graph", spy)
        result = deeplift(model, X, n_references=4, **kw)
    return result, np.concatenate(seen)


def test_deeplift_references_do_not_depend_on_batch_size_or_threads(explainn, peaks, monkeypatch):
    X = peaks[:9]
    with two_torch_threads():
        base, refs = deeplift_with_references(explainn, X, monkeypatch)
    np.testing.assert_array_equal(refs, deeplift_references(X, n_references=4))  # the documented references
    scale = float(np.abs(base.arrays["hypothetical"]).max())
    runs = {"batch_size=1": {"batch_size": 1}, "batch_size=7": {"batch_size": 7}}  # 7: a short last batch
    for name, kw in runs.items():
        with two_torch_threads():
            other, other_refs = deeplift_with_references(explainn, X, monkeypatch, **kw)
        np.testing.assert_array_equal(other_refs, refs, err_msg=name)
        assert_close(other.arrays["hypothetical"], base.arrays["hypothetical"], scale)
    with one_torch_thread():
        other, other_refs = deeplift_with_references(explainn, X, monkeypatch, batch_size=7)
    np.testing.assert_array_equal(other_refs, refs)
    assert_close(other.arrays["hypothetical"], base.arrays["hypothetical"], scale)
    np.testing.assert_array_equal(other.arrays["one_hot"], X)
    _, reseeded = deeplift_with_references(explainn, X, monkeypatch, random_state=1)
    assert not (reseeded == refs).all(axis=(1, 2, 3)).any()  # another seed: every sequence's references change


def test_deeplift_in_chunks_with_start_index_equals_one_run(explainn, peaks, monkeypatch):
    X, k = peaks[:7], 3
    whole, refs = deeplift_with_references(explainn, X, monkeypatch)
    head, head_refs = deeplift_with_references(explainn, X[:k], monkeypatch)
    tail, tail_refs = deeplift_with_references(explainn, X[k:], monkeypatch, start_index=k)
    np.testing.assert_array_equal(np.concatenate([head_refs, tail_refs]), refs)
    np.testing.assert_array_equal(deeplift_references(X[k:], n_references=4, start_index=k), refs[k:])
    joined = np.concatenate([head.arrays["hypothetical"], tail.arrays["hypothetical"]])
    assert_close(joined, whole.arrays["hypothetical"], float(np.abs(whole.arrays["hypothetical"]).max()))
    assert "start_index" not in tail.params  # bookkeeping of a chunked run, not an option: a chunk's manifest is the run's
    _, unaligned = deeplift_with_references(explainn, X[k:], monkeypatch)  # without start_index: seeded as rows 0..
    np.testing.assert_array_equal(unaligned, deeplift_references(X[k:], n_references=4))
    assert not (unaligned == refs[k:]).all(axis=(1, 2, 3)).any()
    with pytest.raises(InputError, match="start_index"):
        deeplift(explainn, X, start_index=-1)


# -- GIA: nulls and draws keyed by (seed, what is drawn), never by batch ------------------------------------------
def gia_with_inputs(model, X, monkeypatch, **kw):
    """gia's result and every sequence it predicted, in order (the backgrounds with each intervention)."""
    seen = []
    original = model.predict

    def spy(Z, **options):
        seen.append(np.array(Z, dtype=np.float32))  # a copy: GIA reuses its buffer
        return original(Z, **options)

    with monkeypatch.context() as patch:
        patch.setattr(model, "predict", spy)
        result = gia(model, X, n_backgrounds=16, **kw)
    return result, np.concatenate(seen)


GIA_RUNS = {
    # IUPAC bases, a random start and a random strand drawn per background, on every seeded null family
    "embed": {"experiment": "embed", "pattern": "CCASYAGRKGGCRS,CACGTG@random", "strand": "random",
              "null": "profile,dinuc,quantile1"},
    # spans resampled from the profile of all the sequences, on a random subset of them and on shuffles
    "occlusion": {"experiment": "occlusion", "null": "observed,shuffle", "width": 40},
}


@pytest.mark.parametrize("experiment", GIA_RUNS)
def test_gia_nulls_and_draws_do_not_depend_on_batch_size_or_threads(explainn, peaks, monkeypatch, experiment):
    X, kw = peaks[:40], GIA_RUNS[experiment]
    with two_torch_threads():
        base, inputs = gia_with_inputs(explainn, X, monkeypatch, **kw)
    scale = float(np.nanmax(np.abs(base.arrays["null_predictions"])))
    settings = {  # name: threads, options, sequences GIA builds per chunk (None: as many as fit in 16 MiB)
        "batch_size=1": (two_torch_threads, {"batch_size": 1}, None),
        "chunks of 5": (two_torch_threads, {}, 5),
        "batch_size=7, chunks of 7": (two_torch_threads, {"batch_size": 7}, 5),
        "1 thread": (one_torch_thread, {"batch_size": 7}, None),
    }
    for name, (threads, options, chunk) in settings.items():
        with threads(), monkeypatch.context() as patch:
            if chunk:
                patch.setattr(interventions, "_CHUNK_BYTES", chunk * 16 * X.shape[2])
            other, other_inputs = gia_with_inputs(explainn, X, monkeypatch, **kw, **options)
        np.testing.assert_array_equal(other_inputs, inputs, err_msg=name)  # nulls, positions, strands, bases
        for key in ("backgrounds", "null_size", "n_backgrounds"):
            np.testing.assert_array_equal(other.arrays[key], base.arrays[key], err_msg=f"{name}: {key}")
        for key in ("null_predictions", "local_importance", "global_importance", "standard_error"):
            assert_close(other.arrays[key], base.arrays[key], scale)
    reseeded, reseeded_inputs = gia_with_inputs(explainn, X, monkeypatch, **kw, random_state=1)
    assert reseeded_inputs.shape != inputs.shape or not np.array_equal(reseeded_inputs, inputs)
    assert not np.array_equal(reseeded.arrays["backgrounds"], base.arrays["backgrounds"])


# -- NeuronMotif: each neuron's generator seeded by (random_state, channel) ---------------------------------------
@pytest.fixture(scope="module")
def twin():
    return interpkit.load(torch_twin(), length=LENGTH)


def sampled(model, monkeypatch, **kw) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Channel -> (windows, values, GA's first population or None) of a neuronmotif run on layer conv2."""
    seen = {}
    original = nm_module.genetic_sampling

    def spy(neuron, **options):
        samples = original(neuron, **options)
        seen[neuron.channel] = (samples.codes, samples.values, options.get("initial"))
        return samples

    options = {"neurons": "0:3", "population": 300, "max_generations": 3, "m": 1, "motif_db": "none", **kw}
    with monkeypatch.context() as patch:
        patch.setattr(nm_module, "genetic_sampling", spy)
        neuronmotif(model, layer="conv2", **options)
    return seen


def assert_same_samples(ours: dict, theirs: dict) -> None:
    for channel, (codes, values, initial) in ours.items():
        np.testing.assert_array_equal(codes, theirs[channel][0], err_msg=f"neuron {channel}")
        np.testing.assert_array_equal(values, theirs[channel][1], err_msg=f"neuron {channel}")
        if initial is not None:
            np.testing.assert_array_equal(initial, theirs[channel][2], err_msg=f"neuron {channel}")


def test_neuronmotif_samples_do_not_depend_on_workers_threads_chunks_or_other_neurons(twin, monkeypatch):
    with two_torch_threads():
        base = sampled(twin, monkeypatch)
    assert sorted(base) == [0, 1, 2] and all(len(codes) > 100 for codes, _, _ in base.values())
    with two_torch_threads():
        assert_same_samples(sampled(twin, monkeypatch, n_jobs=2), base)  # neurons finish in any order
        alone = sampled(twin, monkeypatch, neurons="2")
        assert sorted(alone) == [2]
        assert_same_samples(alone, base)
        with monkeypatch.context() as patch:
            patch.setattr(neuron_module, "_CHUNK", 64)  # windows per model call
            assert_same_samples(sampled(twin, monkeypatch), base)
    with one_torch_thread():
        assert_same_samples(sampled(twin, monkeypatch), base)
    reseeded = sampled(twin, monkeypatch, random_state=1)
    assert all(not np.array_equal(reseeded[c][0], base[c][0]) for c in base)


def test_neuronmotif_seeded_populations_do_not_depend_on_workers_or_other_neurons(twin, monkeypatch):
    lower = neuronmotif(twin, layer="conv1", neurons="0:4", motif_db="none")  # enumerated: no randomness
    base = sampled(twin, monkeypatch, seed_from=lower, neurons="0:2")
    assert all(initial is not None and len(initial) == 300 for _, _, initial in base.values())
    assert_same_samples(sampled(twin, monkeypatch, seed_from=lower, neurons="0:2", n_jobs=2), base)
    assert_same_samples(sampled(twin, monkeypatch, seed_from=lower, neurons="1"), base)
    reseeded = sampled(twin, monkeypatch, seed_from=lower, neurons="1", random_state=1)
    assert not np.array_equal(reseeded[1][2], base[1][2])
