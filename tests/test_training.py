"""Training ExplaiNN: the reference's JASPAR filter fitting, frozen filters, checkpoints that reload and export,
the CLI, and the acceptance run on 500 real CTCF peaks against dinucleotide shuffles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import interpkit
from interpkit.cli import main
from interpkit.errors import InputError, PluginError

torch = pytest.importorskip("torch")

SHARED = Path(__file__).resolve().parents[2] / "shared"
CTCF = SHARED / "data" / "peaks" / "Gm12878.CTCF.top500.w200.fa"
needs_data = pytest.mark.skipif(not CTCF.exists(), reason="../shared/data is not beside the checkout")


def test_motif_filter_pads_short_motifs_centred():
    from interpkit_explainn.train import motif_filter

    ppm = np.eye(4)[:, :3]  # A, C, G: 3 columns in a 5-wide filter
    got = motif_filter(ppm, 5)
    # 5 uniform columns each side (13); ties trim left, right, left, ... until 5 remain: U A C G U.
    expected = np.stack([np.full(4, 0.25), *np.eye(4)[:, :3].T, np.full(4, 0.25)], axis=1) - 0.25
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert got.dtype == np.float32 and got.shape == (4, 5)


def test_motif_filter_trims_the_weaker_end_of_long_motifs():
    from interpkit_explainn.train import motif_filter

    weak, strong = np.full(4, 0.25) + [0.15, -0.05, -0.05, -0.05], np.array([0.9, 0.05, 0.03, 0.02])
    ppm = np.stack([weak, strong, strong, strong, weak * 0 + [0.7, 0.1, 0.1, 0.1]], axis=1)
    got = motif_filter(ppm, 4)
    # the left end (max 0.4) is weaker than the right (0.7): the left column goes.
    np.testing.assert_allclose(got + 0.25, ppm[:, 1:], atol=1e-7)


def _planted(n=240, length=60, motif="CACGTG", seed=0):
    """Random DNA; half carry ``motif`` at a random position (label 1)."""
    from interpkit.datasets import LabelledSequences

    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]
    y = np.zeros((n, 1), np.float32)
    for i in range(0, n, 2):
        at = int(rng.integers(0, length - len(motif)))
        seqs[i] = seqs[i][:at] + motif + seqs[i][at + len(motif):]
        y[i] = 1
    X = interpkit.one_hot_encode(seqs)
    return LabelledSequences(X=X, y=y, names=tuple(f"s{i}" for i in range(n)), targets=("bound",), task="binary",
                             alphabet="ACGT")


@pytest.fixture(scope="module")
def small_data():
    return _planted()


def _train(data, out, **options):
    base = {"num_units": 4, "filter_size": 7, "max_epochs": 3, "batch_size": 32, "patience": 0}
    return interpkit.train("explainn", data, out=out, **{**base, **options})


def test_frozen_jaspar_filters_stay_bit_identical_and_unfrozen_ones_change(small_data, tmp_path):
    from interpkit_explainn.train import motif_filter

    from interpkit.jaspar import fetch_jaspar

    ids = ["MA0139.1", "MA0058.3"]  # CTCF, MAX (JASPAR 2020)
    start = np.stack([motif_filter(m.ppm, 7) for m in fetch_jaspar(release="JASPAR2020", ids=ids)])
    frozen = _train(small_data, tmp_path / "frozen", init_motifs=",".join(ids), freeze_filters=True)
    free = _train(small_data, tmp_path / "free", init_motifs=",".join(ids))
    w_frozen = torch.load(frozen.checkpoint, weights_only=True)
    w_free = torch.load(free.checkpoint, weights_only=True)
    np.testing.assert_array_equal(w_frozen["linears.0.weight"][:2].numpy(), start)  # bit-identical
    assert not np.array_equal(w_free["linears.0.weight"][:2].numpy(), start)
    # the rest of the frozen model did train: the random units' filters and every filter's bias left their
    # seeded initial values
    from interpkit_explainn.architecture import ExplaiNN

    torch.manual_seed(0)
    initial = ExplaiNN(4, 60, 1, filter_size=7).state_dict()
    assert not torch.equal(w_frozen["linears.0.weight"][2:], initial["linears.0.weight"][2:])
    assert not torch.equal(w_frozen["linears.0.bias"], initial["linears.0.bias"])
    record = interpkit.training.read_sidecar(frozen.checkpoint)
    assert record["frozen_filters"] == [0, 1] and [m["id"] for m in record["init_motifs"]] == ids


def test_checkpoint_reloads_without_arch_and_exports_to_onnx(small_data, tmp_path):
    from interpkit_torch.export import to_onnx

    result = _train(small_data, tmp_path / "run", max_epochs=2)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"model.pth", "model.json", "train.json", "train_history.tsv", "train_metrics.tsv", "train.npz"} <= files
    model = interpkit.load(result.checkpoint)  # arch from model.json
    assert model.output_names == ("bound",) and model.input_spec.length == 60
    state = torch.load(result.checkpoint, weights_only=True)
    from interpkit_explainn.architecture import ExplaiNN

    module = ExplaiNN(4, 60, 1, filter_size=7).eval()
    module.load_state_dict(state)
    with torch.no_grad():
        expected = module(torch.from_numpy(small_data.X)).numpy()
    np.testing.assert_allclose(model.predict(small_data.X), expected, rtol=1e-6, atol=1e-6)
    onnx = interpkit.load(to_onnx(model, tmp_path / "model.onnx"))
    np.testing.assert_allclose(onnx.predict(small_data.X), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="already exists"):
        to_onnx(model, tmp_path / "model.onnx")
    history = result.tables["history"]
    assert len(history) == 2 and result.params["best_epoch"] in (1, 2)
    assert 0.0 <= result.arrays["valid_metric"].min() <= 1.0


def test_seeded_training_is_reproducible(small_data, tmp_path):
    a = _train(small_data, tmp_path / "a", max_epochs=1)
    b = _train(small_data, tmp_path / "b", max_epochs=1)
    c = _train(small_data, tmp_path / "c", max_epochs=1, random_state=1)
    wa, wb, wc = (torch.load(r.checkpoint, weights_only=True)["final.weight"] for r in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_training_errors(small_data, tmp_path):
    with pytest.raises(InputError, match="monitor='pearson' does not suit a binary task"):
        _train(small_data, tmp_path / "a", monitor="pearson")
    with pytest.raises(InputError, match="freeze_filters=True needs init_motifs"):
        _train(small_data, tmp_path / "b", freeze_filters=True)
    with pytest.raises(InputError, match="gives 2 motifs for 1 units"):
        _train(small_data, tmp_path / "c", num_units=1, init_motifs="MA0139.1,MA0058.3")
    with pytest.raises(PluginError, match="'basset' has no trainer"):
        interpkit.train("basset", small_data, out=tmp_path / "d")
    with pytest.raises(InputError, match="has no option 'units'"):
        interpkit.train("explainn", small_data, out=tmp_path / "e", units=3)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        _train(small_data, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


@needs_data
def test_cli_train_writes_checkpoint_and_reports_metrics(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["train", "explainn", str(CTCF), "--negatives", "dinuc", "-o", str(out), "--num-units", "4",
                 "--max-epochs", "1", "--no-verbose"])
    assert code == 0
    captured = capsys.readouterr()
    assert str(out / "model.pth") in captured.out and "valid auroc" in captured.err
    record = interpkit.training.read_sidecar(out / "model.pth")
    assert record["arch"] == "explainn" and record["length"] == 200 and record["task"] == "binary"
    assert main(["train", "explainn", str(CTCF), "--negatives", "dinuc", "-o", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["train", "--help"]) == 0
    listing = capsys.readouterr().out
    assert "explainn" in listing and "basset" not in listing


@needs_data
def test_explainn_learns_ctcf_from_500_peaks_against_dinucleotide_shuffles(tmp_path):
    """Acceptance: test AUROC >= 0.9 and a unit whose PPM matches JASPAR CTCF (MA0139) with q < 0.01."""
    from interpkit.datasets import read_labelled

    data = read_labelled(CTCF, negatives="dinuc", random_state=0)
    result = interpkit.train("explainn", data, out=tmp_path / "ctcf", max_epochs=10, patience=4)
    auroc = [r["value"] for r in result.tables["metrics"].records() if r["split"] == "test" and r["metric"] == "auroc"]
    assert auroc[0] >= 0.9, result.tables["metrics"].records()
    model = interpkit.load(result.checkpoint)
    positives = data.X[data.y[:, 0] == 1]
    units = interpkit.run("unit_importance", model, positives, jaspar_release="JASPAR2020")
    hits = [r for r in units.tables["tomtom"].records()
            if r["Target_ID"].startswith("MA0139") and r["q-value"] < 0.01]
    assert hits, units.tables["units"].records()[:5]


def _rna_copies(n, rng, *, plant=True, motif="UGCAUG", length=41):
    """Random RNA; target = number of non-overlapping ``motif`` copies (0-3, anywhere) + N(0, 0.3) noise."""
    seqs, y = [], []
    for _ in range(n):
        seq, starts = list(rng.choice(list("ACGU"), length)), []
        copies = int(rng.integers(0, 4)) if plant else 0
        while len(starts) < copies:
            at = int(rng.integers(0, length - len(motif) + 1))
            if all(abs(at - b) >= len(motif) for b in starts):
                starts.append(at)
        for at in starts:
            seq[at:at + len(motif)] = list(motif)
        seqs.append("".join(seq))
        y.append(copies + rng.normal(0, 0.3))
    return interpkit.one_hot_encode(seqs, alphabet="ACGU"), np.array(y, np.float32)[:, None]


def test_residualbind_learns_additive_ugcaug_copies_and_gia_finds_the_6mer(tmp_path):
    """Acceptance: held-out Pearson >= 0.8 on synthetic RNA, and GIA's top 6-mer is the planted UGCAUG."""
    from interpkit.datasets import LabelledSequences

    rng = np.random.default_rng(0)
    X, y = _rna_copies(2000, rng)
    data = LabelledSequences(X=X, y=y, names=tuple(f"r{i}" for i in range(len(X))), targets=("binding",),
                             task="regression", alphabet="ACGU")
    result = interpkit.train("residualbind", data, out=tmp_path / "rb", max_epochs=20, patience=5)
    test_r = [r["value"] for r in result.tables["metrics"].records() if r["split"] == "test" and r["metric"] == "pearson"]
    assert test_r[0] >= 0.8, result.tables["metrics"].records()
    record = interpkit.training.read_sidecar(result.checkpoint)
    assert record["hyperparameters"]["dilations"] == [1, 2, 4, 8] and record["alphabet"] == "ACGU"
    model = interpkit.load(result.checkpoint)
    assert model.input_spec.alphabet == "ACGU" and model.output_names == ("binding",)
    backgrounds, _ = _rna_copies(200, rng, plant=False)
    gia = interpkit.run("gia", model, backgrounds, n_backgrounds=20, batch_size=512)
    top = gia.tables["top_kmers"].records()[0]
    assert top["kmer"] == "UGCAUG", gia.tables["top_kmers"].records()[:5]


def test_transfer_learning_keeps_pretrained_units_fixed_and_reloads(tmp_path):
    """Units = two pretrained single-motif ExplaiNNs; the head learns 'either motif' (Novakovsky et al. Fig. 5)."""
    from interpkit.datasets import LabelledSequences

    units = [_train(_planted(n=400, motif=m, seed=s), tmp_path / m, max_epochs=10).checkpoint
             for m, s in (("CACGTG", 1), ("TGACTCA", 2))]
    a, b = _planted(motif="CACGTG", seed=3), _planted(motif="TGACTCA", seed=4)
    both = LabelledSequences(X=np.concatenate([a.X, b.X]), y=np.concatenate([a.y, b.y]),
                             names=tuple(f"t{i}" for i in range(len(a) + len(b))), targets=("either",),
                             task="binary", alphabet="ACGT")
    for fc in (True, False):
        out = tmp_path / f"tl_{fc}"
        result = interpkit.train("explainn", both, out=out, pretrained=",".join(map(str, units)), per_unit_fc=fc,
                                 max_epochs=10, batch_size=32, lr=0.01)  # the paper's transfer-learning rate
        state = torch.load(result.checkpoint, weights_only=True)
        for i, unit in enumerate(units):  # the pretrained weights are carried unchanged
            original = torch.load(unit, weights_only=True)
            assert all(torch.equal(state[f"units.{i}.{k}"], v) for k, v in original.items())
        record = interpkit.training.read_sidecar(result.checkpoint)
        assert record["arch"] == "explainn-transfer" and record["hyperparameters"]["num_units"] == 2
        assert ("linears.1.weight" in state) is fc
        model = interpkit.load(result.checkpoint)
        module = model.module
        with torch.no_grad():
            x = torch.from_numpy(both.X[:50])
            expected = module.final(module.unit_outputs(x)).numpy()
        np.testing.assert_allclose(model.predict(both.X[:50]), expected, rtol=1e-6, atol=1e-6)
        auroc = [r["value"] for r in result.tables["metrics"].records() if r["metric"] == "auroc"]
        assert min(auroc) > 0.85, result.tables["metrics"].records()
    with pytest.raises(InputError, match="exclude each other"):
        interpkit.train("explainn", both, out=tmp_path / "x", pretrained=str(units[0]), init_motifs="MA0139.1")
    (tmp_path / "CACGTG" / "model.pth").rename(tmp_path / "moved.pth")
    with pytest.raises(InputError, match="pass pretrained="):
        interpkit.load(tmp_path / "tl_True" / "model.pth")


def test_early_stopping_and_learning_rate_decay_follow_the_scripted_metric(small_data, tmp_path, monkeypatch):
    """Validation AUPRC scripted per epoch: best at epoch 2, decay after 2 flat epochs, stop after 5."""
    from interpkit_torch import training

    script = iter([0.5, 0.9, 0.8, 0.85, 0.7, 0.6, 0.9, 0.95, 0.99])
    snapshots = {}

    def scripted(module, data, loss, batch_size, device):
        value = next(script, 0.0)
        snapshots.setdefault(value, {k: v.clone() for k, v in module.state_dict().items()})
        return {"auprc": [value], "auroc": [value], "mean_auprc": value, "mean_auroc": value, "loss": 1 - value}

    monkeypatch.setattr(training, "_validate", scripted)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 60, 1))
    schedule = training.Schedule(lr=0.01, batch_size=32, max_epochs=9, patience=5, monitor="auprc", lr_decay=0.5,
                                 decay_patience=2)
    tmp_path.mkdir(exist_ok=True)
    result = training.fit(module, small_data, small_data, None, arch="test", hyperparameters={}, schedule=schedule,
                          out=tmp_path)
    lr = result.arrays["learning_rate"]
    assert result.params["epochs_run"] == 7 and result.params["best_epoch"] == 2  # 5 epochs after the best
    np.testing.assert_allclose(lr, [0.01, 0.01, 0.01, 0.01, 0.005, 0.005, 0.0025])  # after epochs 4 and 6
    best = snapshots[0.9]  # the weights validated at epoch 2 are the ones kept (module and file)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in best.items())
    saved = torch.load(tmp_path / "model.pth", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in best.items())


def test_undefined_metric_and_bad_schedules_are_refused(small_data, tmp_path):
    from interpkit_torch.training import Schedule

    from interpkit.datasets import LabelledSequences

    one_class = LabelledSequences(X=small_data.X[1::2][:20], y=small_data.y[1::2][:20], names=small_data.names[:20],
                                  targets=("bound",), task="binary", alphabet="ACGT")
    with pytest.raises(InputError, match="undefined on every epoch.*monitor='loss'"):
        interpkit.train("explainn", (small_data, one_class), out=tmp_path / "nan", num_units=2, filter_size=7,
                        max_epochs=2)
    with pytest.raises(InputError, match="valid= and test= split data here"):
        interpkit.train("explainn", (small_data, one_class), out=tmp_path / "x", valid=0.2)
    for bad, match in (({"lr": 0}, "lr=0 must be > 0"), ({"batch_size": 1}, "batch_size=1 must be >= 2"),
                       ({"lr_decay": 0.0}, r"lr_decay=0.0 must be in \(0, 1\)")):
        with pytest.raises(InputError, match=match):
            Schedule(**{"lr": 0.1, "batch_size": 8, "max_epochs": 1, "patience": 0, "monitor": "loss", **bad})


def test_sidecar_names_its_checkpoint_and_onnx_beside_it_loads_as_onnx(small_data, tmp_path):
    from interpkit_torch.export import to_onnx

    result = _train(small_data, tmp_path / "run", max_epochs=1)
    record = interpkit.training.read_sidecar(result.checkpoint)
    assert record["checkpoint"]["file"] == "model.pth" and len(record["checkpoint"]["sha256"]) == 64
    model = interpkit.load(result.checkpoint)
    onnx_path = to_onnx(model, tmp_path / "run" / "model.onnx")  # beside model.json, which is not about it
    onnx = interpkit.load(onnx_path)
    assert onnx.backend_name == "onnx" and onnx.output_names == ("bound",)
    np.testing.assert_allclose(onnx.predict(small_data.X[:8]), model.predict(small_data.X[:8]), atol=1e-5)
    state = torch.load(result.checkpoint, weights_only=True)
    state["final.bias"] += 1
    torch.save(state, result.checkpoint)
    with pytest.warns(interpkit.InterpkitWarning, match="differs from the file model.json describes"):
        interpkit.load(result.checkpoint)


def test_multilabel_rna_explainn_reloads_with_its_alphabet(tmp_path):
    from interpkit.datasets import LabelledSequences

    a, b = _planted(motif="CACGTG", seed=5), _planted(motif="TGACTCA", seed=6)
    X = np.concatenate([a.X, b.X])
    y = np.concatenate([np.hstack([a.y, np.zeros_like(a.y)]), np.hstack([np.zeros_like(b.y), b.y])])
    data = LabelledSequences(X=X, y=y, names=tuple(f"m{i}" for i in range(len(X))), targets=("E-box", "AP-1"),
                             task="multilabel", alphabet="ACGU")
    result = _train(data, tmp_path / "rna", max_epochs=2, reverse_complement=False)
    model = interpkit.load(result.checkpoint)
    assert model.input_spec.alphabet == "ACGU" and model.output_names == ("E-box", "AP-1")
    rows = {(r["split"], r["target"], r["metric"]) for r in result.tables["metrics"].records()}
    assert ("test", "AP-1", "auprc") in rows and ("valid", "E-box", "auroc") in rows
    with pytest.raises(InputError, match="needs DNA"):
        _train(data, tmp_path / "rc", max_epochs=1)


@needs_data
def test_cli_trains_on_bed_windows_against_gc_matched_negatives(tmp_path, capsys):
    genome = SHARED / "data" / "genome" / "test_grch37_chr10_0-110kb.fa"
    bed = tmp_path / "peaks.bed"  # made-up intervals in chr10:60,000-110,000 (0-60,000 is N)
    bed.write_text("".join(f"chr10\t{s}\t{s + 100}\n" for s in range(61_000, 107_000, 1_000)))
    out = tmp_path / "gc"
    assert main(["train", "explainn", "--bed", str(bed), "--genome", str(genome), "--length", "100",
                 "--negatives", "gc", "-o", str(out), "--num-units", "2", "--filter-size", "9", "--max-epochs", "1",
                 "--monitor", "loss", "--no-verbose"]) == 0, capsys.readouterr().err
    record = interpkit.training.read_sidecar(out / "model.pth")
    assert record["length"] == 100 and record["hyperparameters"]["num_units"] == 2
    history = (out / "train_history.tsv").read_text().splitlines()
    assert history[0].split("\t") == ["epoch", "train_loss", "valid_loss", "learning_rate"] and len(history) == 2
