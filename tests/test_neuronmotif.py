"""The ``neuronmotif`` method: the NeuronMotif demos' known answers, converted twins, a trained CNN, resume.

Oracles (../shared/research/neuronmotif.md, section 6): demo1 layer 1 has 899 / 903 / 435 positive 5-mers
(consensus TACAA, TGACT, CAGG[TG]); demo1 layer 2 has 1,323 positive 8-mers that demixing splits into
779 (CAGGTGGT, motif at offset 0, consensus activation = best) and 544 (offset 1, ratio 0.908 with 50
bins); the geometry tables of section 1.1; a CNN trained here on planted JASPAR motifs must have layer-1
neurons whose CRMs Tomtom matches to them.
"""

from __future__ import annotations

import numpy as np
import pytest
import twins
from interpkit_neuronmotif import neuronmotif as nm_module
from interpkit_neuronmotif.crm import binned_ppm, segments
from interpkit_neuronmotif.neuron import Neuron
from interpkit_neuronmotif.neuronmotif import neuronmotif
from interpkit_neuronmotif.sampling import cap_archive, population_size
from interpkit_neuronmotif.seeding import lower_consensus, seed_population
from interpkit_neuronmotif.stack import neuron_stack

import interpkit
from interpkit import InputError
from interpkit.motifs import information_content
from interpkit.probe import LayerInfo
from interpkit.testing import random_one_hot

DEMOS = "checkpoints/neuronmotif_demos"


@pytest.fixture(scope="module")
def demo1(shared):
    return interpkit.load(shared / DEMOS / "demo1" / "weight.hdf5")


@pytest.fixture(scope="module")
def demo2(shared):
    return interpkit.load(shared / DEMOS / "demo2" / "weight.hdf5")


# -- geometry ------------------------------------------------------------------------------------------
def test_geometry_of_the_demos(demo1, demo2):
    one = neuron_stack(demo1.layers(), "conv1d_2")
    assert [s.receptive_field for s in one.stages] == [5, 8] and one.facets == 2 and one.jump == 2
    assert one.positions(0, 0) == slice(0, 4)  # 4 positions x 3 channels = 12 features
    five = neuron_stack(demo2.layers(), "conv1d_5")
    assert [s.receptive_field for s in five.stages] == [7, 12, 22, 42, 82] and five.facets == 16
    assert [s.value_layer for s in five.stages][:2] == ["batch_normalization_1", "batch_normalization_2"]
    counts = [five.positions(level, 0).stop - five.positions(level, 0).start for level in range(4)]
    assert counts == [76, 36, 16, 6]  # research notes 6.1: 76 x 5, 36 x 5, 16 x 6, 6 x 6
    assert neuron_stack(demo2.layers(), "activation_3").target.conv == "conv1d_3"  # a layer of the stage
    assert population_size(82) == 4000 and population_size(19) == 2000 and population_size(144) == 5000


def test_stacks_that_demixing_cannot_handle_are_refused():
    conv = LayerInfo("c1", "conv", kernel_size=5, channels=4)
    with pytest.raises(InputError, match="stride 2; NeuronMotif's pool facets assume stride-1"):
        neuron_stack([LayerInfo("c0", "conv", kernel_size=5, stride=2, channels=4)], "c0")
    with pytest.raises(InputError, match="non-overlapping pools"):
        neuron_stack([conv, LayerInfo("p", "maxpool", kernel_size=3, stride=1), LayerInfo("c2", "conv")], "c2")
    with pytest.raises(InputError, match="dilation 2; NeuronMotif's demixing assumes"):
        neuron_stack([conv, LayerInfo("p", "maxpool", kernel_size=2, stride=2, dilation=2), LayerInfo("c2", "conv")],
                     "c2")
    dilated = neuron_stack([LayerInfo("c1", "conv", kernel_size=3, dilation=2, channels=2),
                            LayerInfo("p", "maxpool", kernel_size=2, stride=2), LayerInfo("c2", "conv", kernel_size=3)],
                           "c2")
    assert [s.receptive_field for s in dilated.stages] == [5, 10] and dilated.facets == 2  # 5, pool 6, + 2 x 2
    with pytest.raises(InputError, match="merges branches"):
        neuron_stack([conv, LayerInfo("a", "add", inputs=("c1", "<input>")), LayerInfo("c2", "conv")], "c2")
    with pytest.raises(InputError, match="NeuronMotif analyses convolutional neurons"):
        neuron_stack([conv, LayerInfo("d", "dense")], "d")
    with pytest.raises(InputError, match="no layer named 'c9'"):
        neuron_stack([conv], "c9")


# -- demo1: enumeration and demixing -------------------------------------------------------------------
def test_demo1_layer1_enumeration_reproduces_the_three_filters(demo1):
    result = neuronmotif(demo1, layer="conv1d_1")
    assert result.arrays["samples"].tolist() == [899, 903, 435]
    consensus = result.tables["crms"].column("consensus")
    assert consensus[:2] == ["TACAA", "TGACT"] and consensus[2] in ("CAGGT", "CATGT")  # column 3 G/T nearly tied
    assert result.arrays["crm_neuron"].tolist() == [0, 1, 2]  # no pool below: one CRM per neuron
    np.testing.assert_array_equal(result.arrays["crm_ppm"], result.arrays["undemixed_ppm"])


def test_demo1_layer2_demixing_splits_the_two_offsets(demo1):
    result = neuronmotif(demo1, layer="conv1d_2")
    a = result.arrays
    assert a["samples"].tolist() == [1323] and a["crm_n"].tolist() == [779, 544]
    table = result.tables["crms"]
    first, second = ({c: v for c, v in zip(table.columns, row)} for row in table.rows)
    assert first["consensus"] == "CAGGTGGT" and first["max_activation"] == pytest.approx(9.016, abs=1e-3)
    assert first["decoupling"] == pytest.approx(1.0) and first["rank"] == 1  # consensus = best: decoupled
    assert second["consensus"].startswith("GCAGGTG") and second["decoupling"] == pytest.approx(0.908, abs=0.005)
    ic = [information_content(p) for p in a["crm_ppm"]]
    assert np.all(ic[0][0:6] > 1.1) and np.all(ic[1][1:7] > 0.9)  # motif at offset 0, then at offset 1
    blurred = information_content(a["undemixed_ppm"][0])
    assert blurred[0] < 0.7 < ic[0][0]  # the undemixed stack blends both offsets
    for seed in (1, 2):  # k-means restarts do not change the split
        assert neuronmotif(demo1, layer="conv1d_2", random_state=seed).arrays["crm_n"].tolist() == [779, 544]
    assert "undemixed" in result.report_section() and result.report_section().count("<img") == 4  # + syntax tree


def test_converted_twins_give_the_same_crms(demo1, tmp_path):
    import torch

    net = twins.demo_to_torch(demo1.keras_model)
    torch.onnx.export(net, (torch.zeros(2, 4, 8),), str(tmp_path / "demo1.onnx"), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, opset_version=17,
                      dynamo=False, training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    keras = neuronmotif(demo1, layer=3)
    for model in (interpkit.load(net, length=8), interpkit.load(tmp_path / "demo1.onnx")):
        other = neuronmotif(model, layer=3)
        assert other.tables["crms"].column("n") == keras.tables["crms"].column("n")
        assert other.tables["crms"].column("consensus") == keras.tables["crms"].column("consensus")
        np.testing.assert_allclose(other.arrays["crm_ppm"], keras.arrays["crm_ppm"], atol=1e-6)


# -- resuming a layer ----------------------------------------------------------------------------------
def test_an_interrupted_layer_resumes_without_redoing_finished_neurons(demo1, tmp_path, monkeypatch):
    fresh = neuronmotif(demo1, layer="conv1d_1")
    done = []
    original = nm_module.analyse_neuron

    def dies_on_the_third(neuron, **kw):
        if neuron.channel == 2:
            raise KeyboardInterrupt  # the run is killed while neuron 2 is sampled
        done.append(neuron.channel)
        return original(neuron, **kw)

    monkeypatch.setattr(nm_module, "analyse_neuron", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        neuronmotif(demo1, layer="conv1d_1", checkpoint_dir=tmp_path)
    assert done == [0, 1] and sorted(p.name for p in tmp_path.iterdir()) == [".interpkit", "conv1d_1_neuron0.npz",
                                                                            "conv1d_1_neuron1.npz"]
    done.clear()
    monkeypatch.setattr(nm_module, "analyse_neuron", lambda neuron, **kw: done.append(neuron.channel) or original(
        neuron, **kw))
    resumed = neuronmotif(demo1, layer="conv1d_1", checkpoint_dir=tmp_path)
    assert done == [2]  # only the unfinished neuron ran
    for name in ("crm_ppm", "crm_n", "crm_max_activation", "crm_consensus_activation", "samples"):
        np.testing.assert_array_equal(resumed.arrays[name], fresh.arrays[name])
    with pytest.raises(InputError, match="computed with other options"):
        neuronmotif(demo1, layer="conv1d_1", checkpoint_dir=tmp_path, bins=20)


# -- the genetic algorithm on a CNN trained on planted JASPAR motifs -----------------------------------
def test_layer1_crms_of_a_trained_cnn_match_the_planted_jaspar_motifs(shared):
    import torch
    from torch import nn

    from interpkit.meme import read_meme
    from interpkit.tomtom import tomtom

    jaspar = list(read_meme(shared / "data" / "jaspar" / "JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt")
                  .motifs)
    planted = [m for m in jaspar if m.id in ("MA0035.4", "MA0139.1")]  # GATA1, CTCF
    assert len(planted) == 2
    length, n = 100, 6000
    rng = np.random.default_rng(0)
    X = random_one_hot(n, length, random_state=11)
    y = np.zeros((n, 2), dtype=np.float32)
    for i in range(n):
        task = i % 3  # a third with each motif, a third with neither
        if task < 2:
            ppm = planted[task].ppm
            start = rng.integers(0, length - ppm.shape[1] + 1)
            bases = (rng.random(ppm.shape[1])[None] >= np.cumsum(ppm, axis=0)[:3]).sum(axis=0)
            X[i, :, start:start + ppm.shape[1]] = np.eye(4, dtype=np.float32)[bases].T
            y[i, task] = 1
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(4, 12, 19), nn.BatchNorm1d(12), nn.ReLU(), nn.MaxPool1d(3),
                        nn.Conv1d(12, 8, 11), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(4),
                        nn.Flatten(), nn.Linear(8 * 4, 2))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(600):  # about 5 s on two cores; AUROC 0.997 (CTCF), 0.97 (GATA1)
        idx = torch.from_numpy(rng.integers(0, n, 128))
        loss = nn.functional.binary_cross_entropy_with_logits(net(Xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model = interpkit.load(net.eval(), length=length)
    result = neuronmotif(model, layer=0, max_generations=40)
    crm_ids = {f"0_n{k}_crm0" for k in range(12)}
    assert {m.id for m in result.motifs} >= crm_ids  # one CRM per neuron: no pool below layer 1
    segs = [m for m in result.motifs if m.id not in crm_ids]  # the informative parts, as the reference compares
    hits = tomtom(segs, jaspar, thresh=0.01)
    targets = set(hits.column("Target_ID"))
    assert {"MA0035.4", "MA0139.1"} <= targets, targets  # q < 0.01 for both planted motifs
    names = set(result.tables["crms"].column("match_name"))  # the result's own annotation (newest JASPAR)
    assert "CTCF" in names and any(n.startswith("GATA") for n in names), names
    # Layer 2 seeded from layer 1: the first population already activates the neuron far more than random.
    stack = neuron_stack(model.layers(), 4)
    neuron = Neuron(model, stack, 0)
    seeded = seed_population(neuron, lower_consensus(result, stack), 500, np.random.default_rng(0))
    plain = np.random.default_rng(0).integers(0, 4, seeded.shape, dtype=np.uint8)
    assert neuron.values(seeded).mean() > neuron.values(plain).mean() + 1.0
    two = neuronmotif(model, layer=4, neurons="0,1", seed_from=result, max_generations=5, n_jobs=2, motif_db="none")
    assert two.arrays["neurons"].tolist() == [0, 1] and two.params["seed_from"] == "0"
    with pytest.raises(InputError, match="needs the layer below it"):
        neuronmotif(model, layer=8 - 4, neurons="0", seed_from=two)


# -- parts ---------------------------------------------------------------------------------------------
def test_ga_steps_follow_the_reference():
    from interpkit_neuronmotif.sampling import _children, _fitness, _mutate_by_gradient, _shifted

    np.testing.assert_allclose(_fitness(np.array([-2.0, 0.0, 3.0])), [np.exp(-2), 1.0, 4.0])
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (200, 12)).astype(np.uint8)
    grad = np.zeros((200, 4, 12), np.float32)
    np.testing.assert_array_equal(_mutate_by_gradient(codes, grad, rng, 1.0), codes)  # no gradient: stays
    grad[:, 2] = 100.0  # G is far better everywhere: every base switches to G (stay weight 1 vs 100)
    assert (_mutate_by_gradient(codes, grad, rng, 1.0) == 2).mean() > 0.98
    left, right = _shifted(codes, 4, rng, 1), _shifted(codes, 4, rng, -1)
    for rolled, sign in ((left, 1), (right, -1)):  # each row a circular shift by 1..3 bp
        shifts = [next(s for s in range(1, 4) if np.array_equal(np.roll(c, -sign * s), r)) for c, r in zip(codes, rolled)]
        assert set(shifts) <= {1, 2, 3} and len(set(shifts)) > 1
    kids = _children(codes, np.ones(200), 700, rng)
    assert kids.shape == (1400, 12)  # the reference's N = 4000 with pools below: 400 + 400 + 400 + 2 x 1400


def test_gradient_free_sampling_runs_without_gradients(demo2):
    result = neuronmotif(demo2, layer="conv1d_2", neurons="0", sampling="ga-gradient-free", max_generations=3,
                         motif_db="none")
    assert result.tables["neurons"].rows[0][2] == "ga-gradient-free" and result.arrays["samples"][0] > 0


def test_binned_ppm_weighs_bins_by_their_mean_activation():
    codes = np.array([[0, 0], [0, 1], [1, 1]], dtype=np.uint8)
    values = np.array([4.0, 4.0, 1.0])  # two bins of 4 used: (0, 1] and (3, 4]; the empty ones reuse the bin above
    ppm = binned_ppm(codes, values, bins=4)
    top, low = np.array([[1, 0.5], [0, 0.5]]), np.array([[0, 0], [1, 1]])
    total = 4 * top + 2.5 * top + 1.5 * top + 1 * low  # bins 4, 3 (empty: mid 2.5), 2 (empty: 1.5), 1
    expected = np.zeros((4, 2))
    expected[:2] = total / total.sum(axis=0)
    np.testing.assert_allclose(ppm, expected)


def test_segments_and_archive_cap():
    ppm = np.full((4, 20), 0.25)
    ppm[:, 6:12] = np.eye(4)[[0, 1, 2, 3, 0, 1]].T
    # 6..11 hold ~1.8 bits after smoothing, so the 3-bp mean (0.6 at 5 and 12) exceeds 0.557 over 5..12; +1 bp.
    assert segments(ppm, 1000) == ((4, 14),)
    assert segments(np.full((4, 20), 0.25), 1000) == ()
    codes = np.array([[0, 1], [0, 1], [2, 3], [1, 1]], dtype=np.uint8)
    kept, values = cap_archive(codes, np.array([1.0, 2.0, -1.0, 3.0]), 10, bins=2, rng=np.random.default_rng(0))
    assert kept.tolist() == [[0, 1], [1, 1]] and values.tolist() == [1.0, 3.0]  # unique, positive, first kept
    many = np.arange(1000, dtype=np.int64)[:, None] // np.array([[1, 4, 16, 64, 256]]) % 4
    kept, values = cap_archive(many.astype(np.uint8), np.linspace(0.01, 1, 1000), 100, bins=10,
                               rng=np.random.default_rng(0))
    assert len(kept) == 100 and np.histogram(values, bins=10, range=(0, 1))[0].tolist() == [10] * 10


def test_parallel_neurons_give_the_same_results(demo2):
    kw = {"layer": "conv1d_2", "neurons": "0:4", "max_generations": 3, "motif_db": "none"}  # GA and k-means
    one = neuronmotif(demo2, **kw)
    three = neuronmotif(demo2, **kw, n_jobs=3)
    assert three.provenance["timing"]["workers"] == 3
    for name in ("crm_ppm", "crm_n", "crm_consensus_activation", "neurons", "samples"):
        np.testing.assert_array_equal(three.arrays[name], one.arrays[name])
    assert len(set(one.arrays["crm_neuron"].tolist())) > 1 and one.arrays["crm_n"].size > 4


def test_options_are_checked(demo1):
    with pytest.raises(InputError, match="leave out the sequences"):
        neuronmotif(demo1, np.zeros((1, 4, 8), np.float32), layer="conv1d_1")
    with pytest.raises(InputError, match="needs a layer"):
        neuronmotif(demo1)
    with pytest.raises(InputError, match=r"neurons \[5\] are not channels of the layer \(0..2\)"):
        neuronmotif(demo1, layer="conv1d_1", neurons="0,5")
    with pytest.raises(InputError, match="sampling == 'mcmc', must be one of"):
        neuronmotif(demo1, layer="conv1d_1", sampling="mcmc")
    with pytest.raises(InputError, match="makes its own sequences"):
        interpkit.run("neuronmotif", demo1, np.zeros((1, 4, 8), np.float32), layer="conv1d_1")
    result = interpkit.run("neuronmotif", demo1, layer="conv1d_1", neurons="1")
    assert result.arrays["neurons"].tolist() == [1] and result.params["layer"] == "conv1d_1"


def test_cli_resumes_in_its_output_directory(demo1, shared, tmp_path):
    from interpkit.cli import main

    out = tmp_path / "nm"
    first = neuronmotif(demo1, layer="conv1d_1", neurons="0", checkpoint_dir=out / "checkpoints")  # "killed" after 0
    args = ["run", "neuronmotif", str(shared / DEMOS / "demo1" / "weight.hdf5"), "--layer", "conv1d_1", "-o", str(out)]
    assert main(args) == 2  # an interrupted run is continued only when asked
    assert main([*args, "--resume"]) == 0
    assert not (out / "checkpoints").exists()  # finished: nothing left to resume
    arrays = np.load(out / "neuronmotif.npz")
    assert arrays["neurons"].tolist() == [0, 1, 2] and arrays["samples"].tolist() == [899, 903, 435]
    np.testing.assert_array_equal(arrays["crm_ppm"][0], first.arrays["crm_ppm"][0])
    assert (out / "neuronmotif_conv1d_1_n2.meme").read_text().count("MOTIF") == 3  # CRM, segment 0-5, dictionary
    assert main(args) == 2  # finished outputs are never overwritten without --force


# -- demo2: the spacing grammar ------------------------------------------------------------------------
def test_demo2_layer5_finds_ctcf_gap_ctcf(demo2):
    result = neuronmotif(demo2, layer="conv1d_5")
    neurons = result.tables["neurons"].rows[0]
    assert neurons[2] == "ga" and 10 < neurons[3] < 200 and neurons[6] > 0.95  # converged; decoupled at m = 1
    (motif,) = result.tables["dictionary"].rows  # one dictionary motif ...
    assert motif[5] == "CTCF" and motif[6] < 1e-4 and motif[7] == "-"  # ... JASPAR CTCF, planted reversed
    syntax = result.syntax[0][0]
    assert syntax.word == ("CTCF", "CTCF") and len(syntax.crms) >= len(result.arrays["crm_n"]) // 2
    (lo, hi), = syntax.gaps
    assert 10 <= lo <= hi <= 40  # the grammar: sites at 0-15 and 44-59 (research notes 6.4)
    assert syntax.starts[0] < 16 and 40 < syntax.starts[1] < 62
    assert result.tables["syntax"].rows[0][4].startswith("(CTCF -[") and "syntax" in result.report_section()
    # The PyTorch conversion (its values differ from Keras' at float precision, so the GA's path may too)
    # finds the same grammar: one CTCF dictionary motif and CTCF-gap-CTCF in most CRMs.
    twin = neuronmotif(interpkit.load(twins.demo_to_torch(demo2.keras_model), length=82), layer="conv1d_5")
    assert [row[5] for row in twin.tables["dictionary"].rows] == ["CTCF"]
    main = twin.syntax[0][0]
    assert main.word == ("CTCF", "CTCF") and len(main.crms) >= len(twin.arrays["crm_n"]) // 2
    assert 10 <= main.gaps[0][0] <= main.gaps[0][1] <= 40
