"""Interrupted training resumes exactly, and training splits do not depend on threads or batch size.

Known answers: a training run killed (SIGKILL) at a random moment after a finished epoch, then resumed,
ends with the same weights (bit for bit), model.json and history as the same run never interrupted; the
finished epochs are not run again; the kill leaves only files that load, or temporary ``.part`` files.
The split of the data is a function of the seed alone (numpy), so torch's thread count and the batch
size cannot change it.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _cli import assert_complete_or_partial, kill_after
from test_training import _planted

import interpkit
from interpkit.cli import main
from interpkit.errors import InputError
from interpkit.training import RESUME_STATE

torch = pytest.importorskip("torch")
from interpkit_torch import training

OPTIONS = {"num_units": 4, "filter_size": 7, "batch_size": 32, "patience": 0}


@pytest.fixture(scope="module")
def data():
    return _planted()


@pytest.fixture(autouse=True)
def _torch_threads():
    """Tests here change torch's thread count; give the next test the one it had."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert list(wa) == list(wb)
    assert all(torch.equal(wa[k], wb[k]) for k in wa), [k for k in wa if not torch.equal(wa[k], wb[k])]


def _same_outputs(out: Path, expected: Path) -> None:
    """Bit-identical weights; the same model.json (metrics, best epoch, sha256), history and metrics tables."""
    _same_weights(out / "model.pth", expected / "model.pth")
    for name in ("model.json", "train_history.tsv", "train_metrics.tsv"):
        assert (out / name).read_text() == (expected / name).read_text(), name
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in expected.iterdir())


def _interrupt_after(monkeypatch, epoch: int) -> None:
    """Make the run stop as if killed right after epoch ``epoch``'s resume state was written."""
    write = training._write_state

    def write_then_stop(path, module, optimizer, generator, dev, progress, fingerprint):
        write(path, module, optimizer, generator, dev, progress, fingerprint)
        if progress.epoch == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_write_state", write_then_stop)


def _count_epochs(monkeypatch) -> list[int]:
    calls: list[int] = []
    run_epoch = training._train_epoch

    def counted(*args, **kwargs):
        calls.append(1)
        return run_epoch(*args, **kwargs)

    monkeypatch.setattr(training, "_train_epoch", counted)
    return calls


def test_resume_continues_exactly_without_running_finished_epochs(data, tmp_path, monkeypatch):
    """ExplaiNN with dropout: weights, Adam's moments, batch order and dropout masks all carry over."""
    whole = interpkit.train("explainn", data, out=tmp_path / "whole", max_epochs=5, **OPTIONS)
    out = tmp_path / "cut"
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            interpkit.train("explainn", data, out=out, max_epochs=5, **OPTIONS)
    state = torch.load(out / RESUME_STATE, weights_only=True)  # tensors, dicts, lists, numbers, strings only
    assert state["progress"]["epoch"] == 2 and [row[0] for row in state["progress"]["history"]] == [1, 2]
    assert not (out / "train.json").exists()
    calls = _count_epochs(monkeypatch)
    resumed = interpkit.train("explainn", data, out=out, max_epochs=5, resume=True, **OPTIONS)
    assert len(calls) == 3  # epochs 3, 4, 5 only
    _same_outputs(out, tmp_path / "whole")
    assert [r["epoch"] for r in resumed.tables["history"].records()] == [1, 2, 3, 4, 5]
    assert resumed.provenance["resumed_after_epochs"] == [2] and "resumed_after_epochs" not in whole.provenance
    assert not (out / RESUME_STATE).exists()  # removed once the run is complete


def test_resume_keeps_the_learning_rate_schedule_and_early_stopping(data, tmp_path, monkeypatch):
    """Validation AUPRC scripted per epoch (best at 2, decay after 4 and 6, stop after 7), cut after epoch 5."""
    script = [0.5, 0.9, 0.8, 0.85, 0.7, 0.6, 0.9, 0.95, 0.99]
    epoch = [0]

    def scripted(module, valid, loss, batch_size, device):
        value = script[epoch[0]] if epoch[0] < len(script) else 0.0
        epoch[0] += 1
        return {"auprc": [value], "auroc": [value], "mean_auprc": value, "mean_auroc": value, "loss": 1 - value}

    monkeypatch.setattr(training, "_validate", scripted)
    schedule = training.Schedule(lr=0.01, batch_size=32, max_epochs=9, patience=5, monitor="auprc", lr_decay=0.5,
                                 decay_patience=2)

    def fit(out, **kwargs):
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.2), torch.nn.Linear(4 * 60, 1))
        out.mkdir(exist_ok=True)
        return training.fit(module, data, data, None, arch="test", hyperparameters={}, schedule=schedule, out=out,
                            **kwargs)

    whole = fit(tmp_path / "whole")
    epoch[0] = 0
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 5)
        with pytest.raises(KeyboardInterrupt):
            fit(tmp_path / "cut")
    epoch[0] = 5
    resumed = fit(tmp_path / "cut", resume=True)
    assert resumed.params["epochs_run"] == whole.params["epochs_run"] == 7 and resumed.params["best_epoch"] == 2
    np.testing.assert_array_equal(resumed.arrays["learning_rate"], [0.01] * 4 + [0.005] * 2 + [0.0025])
    for key in ("train_loss", "valid_loss", "valid_metric", "learning_rate"):
        np.testing.assert_array_equal(resumed.arrays[key], whole.arrays[key], err_msg=key)
    _same_weights(tmp_path / "cut" / "model.pth", tmp_path / "whole" / "model.pth")


def test_a_run_cut_after_its_last_epoch_only_writes_its_outputs(data, tmp_path, monkeypatch):
    expected = tmp_path / "whole"
    interpkit.train("explainn", data, out=expected, max_epochs=2, **OPTIONS)
    out = tmp_path / "cut"
    with monkeypatch.context() as patch:  # killed while writing the outputs: train.npz is there, the rest not
        def cut_short(result, folder, overwrite=False):
            (folder / "train.npz").touch()
            raise KeyboardInterrupt

        patch.setattr(interpkit.TrainingResult, "write", cut_short)
        with pytest.raises(KeyboardInterrupt):
            interpkit.train("explainn", data, out=out, max_epochs=2, **OPTIONS)
    assert (out / RESUME_STATE).exists() and not (out / "train.json").exists()
    calls = _count_epochs(monkeypatch)
    interpkit.train("explainn", data, out=out, max_epochs=2, resume=True, **OPTIONS)
    assert calls == []
    _same_outputs(out, expected)


def test_resume_refuses_other_data_options_and_missing_or_broken_state(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cut"
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            interpkit.train("explainn", data, out=out, max_epochs=3, **OPTIONS)
    with pytest.raises(InputError, match="holds an interrupted training run.*pass --resume.*or --force"):
        interpkit.train("explainn", data, out=out, max_epochs=3, **OPTIONS)
    with pytest.raises(InputError, match=r"other data or options \(schedule.lr: 0.003 -> 0.01\)"):
        interpkit.train("explainn", data, out=out, max_epochs=3, lr=0.01, resume=True, **OPTIONS)
    with pytest.raises(InputError, match=r"options \(random_state: 0 -> 1; the test/train/valid data: other seq"):
        interpkit.train("explainn", data, out=out, max_epochs=3, random_state=1, resume=True, **OPTIONS)
    with pytest.raises(InputError, match="--resume continues .* --force starts it over"):
        interpkit.train("explainn", data, out=out, max_epochs=3, resume=True, force=True, **OPTIONS)
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.pth", RESUME_STATE]  # untouched
    with pytest.raises(InputError, match="nothing to resume"):
        interpkit.train("explainn", data, out=tmp_path / "new", max_epochs=3, resume=True, **OPTIONS)
    # the CLI: one line, before any data is read
    fasta = tmp_path / "absent.fa"
    assert main(["train", "explainn", str(fasta), "--negatives", "dinuc", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "pass --resume to continue it or --force" in err and "\n" not in err
    assert main(["train", "explainn", str(fasta), "--negatives", "dinuc", "-o", str(tmp_path / "x"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    (out / RESUME_STATE).write_bytes((out / RESUME_STATE).read_bytes()[:100])  # not ours to write: a broken file
    with pytest.raises(InputError, match="does not load.*pass --force to start the run over"):
        interpkit.train("explainn", data, out=out, max_epochs=3, resume=True, **OPTIONS)
    forced = interpkit.train("explainn", data, out=out, max_epochs=3, force=True, **OPTIONS)  # starts over
    assert forced.params["epochs_run"] == 3 and not (out / RESUME_STATE).exists()


# --- SIGKILL through the command line -------------------------------------------------------------------------


def _write_dataset(folder: Path) -> tuple[Path, Path]:
    """200 planted-motif sequences of 60 bp as FASTA plus a targets TSV."""
    labelled = _planted(n=200)
    fasta, targets = folder / "seqs.fa", folder / "targets.tsv"
    seqs = interpkit.one_hot_decode(labelled.X)
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in zip(labelled.names, seqs)))
    targets.write_text("name\tbound\n" + "".join(f"{n}\t{int(v)}\n" for n, v in zip(labelled.names, labelled.y[:, 0])))
    return fasta, targets


#: One torch thread in every run (results depend on the thread count: see below).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def test_sigkill_at_a_random_moment_then_resume_gives_the_uninterrupted_model(tmp_path, capsys):
    """Killed in its own process, resumed by the CLI in this one (so that only one run pays the imports)."""
    fasta, targets = _write_dataset(tmp_path)
    epochs = 40  # ~0.05 s each
    args = [str(fasta), "--targets", str(targets), "--num-units", "4", "--filter-size", "7", "--batch-size", "32",
            "--max-epochs", str(epochs), "--patience", "0", "--no-verbose", "-o"]
    expected, out = tmp_path / "whole", tmp_path / "out"
    reference = subprocess.Popen([sys.executable, "-m", "interpkit", "train", "explainn", *args, str(expected)],
                                 env={**os.environ, **ONE_THREAD}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)  # the known answer, alongside
    delay = random.uniform(0, 0.3)
    try:
        kill_after(["train", "explainn", *args, str(out)], out / RESUME_STATE, delay=delay, env=ONE_THREAD)
        partial = assert_complete_or_partial(out)
        assert {"model.pth", "model.json"} <= {p.name for p in out.iterdir()}  # written at epoch 1, then replaced
        done = torch.load(out / RESUME_STATE, weights_only=True)["progress"]["epoch"]
        assert 1 <= done <= epochs, (done, delay)
        torch.set_num_threads(1)
        assert main(["train", "explainn", "--resume", *args, str(out)]) == 0, capsys.readouterr().err
        assert reference.wait(timeout=300) == 0, reference.stderr.read()
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.wait()
    _same_outputs(out, expected)  # partial files removed, train_state.pt removed
    history = (out / "train_history.tsv").read_text().splitlines()[1:]
    assert [int(row.split("\t")[0]) for row in history] == list(range(1, epochs + 1)), (done, delay, partial)


# --- Determinism of splits and training across threads and batch sizes --------------------------------------------


def test_split_depends_on_the_seed_only(data):
    from interpkit.datasets import split

    def names(threads):
        torch.set_num_threads(threads)
        return [part.names for part in split(data, valid=0.2, test=0.1, random_state=7)]

    one, two = names(1), names(2)
    assert one == two and sum(map(len, one)) == len(data) and len(one[1]) == 48
    assert [part.names for part in split(data, valid=0.2, test=0.1, random_state=8)] != one


def test_train_split_ignores_threads_and_batch_size_and_weights_agree_across_threads(data, tmp_path, monkeypatch):
    """The splits the trainer gets are identical. The weights are bit-identical for one thread count (see
    test_training.test_seeded_training_is_reproducible), but not across thread counts on CPU: oneDNN's
    convolution backward and BatchNorm's batch statistics on (N, C, 1) inputs sum over the batch in
    per-thread chunks, so gradients differ in the last bit. Weights that carry a gradient then agree to
    ~1e-6 relative after an epoch (1e-5 tested). The convolution biases that feed a BatchNorm carry none (the
    batch mean removes them), nor does the first BatchNorm's shift (after exp it scales the unit's pooled
    activations, which the next BatchNorm divides out), so Adam turns that rounding noise into steps of ~lr:
    they, and the running statistics that follow them, are not compared."""
    splits = []
    fit = training.fit

    def recording(module, train, valid, test, **kwargs):
        splits.append([train.names, valid.names, test.names])
        return fit(module, train, valid, test, **kwargs)

    monkeypatch.setattr(training, "fit", recording)
    runs = {}
    for threads, batch_size in ((1, 32), (2, 32), (2, 16)):
        torch.set_num_threads(threads)
        runs[threads, batch_size] = interpkit.train("explainn", data, out=tmp_path / f"{threads}_{batch_size}",
                                                    max_epochs=1, **{**OPTIONS, "batch_size": batch_size})
    assert splits[0] == splits[1] == splits[2] and len(splits[0][1]) == 24
    one, two = (torch.load(runs[t, 32].checkpoint, weights_only=True) for t in (1, 2))
    no_gradient = {"linears.0.bias", "linears.1.bias", "linears.6.bias", "linears.10.bias"}
    compared = [k for k in one if k not in no_gradient and "running" not in k and "num_batches" not in k]
    assert len(compared) == 10
    for key in compared:
        scale = float(one[key].abs().max())
        np.testing.assert_allclose(two[key].numpy(), one[key].numpy(), rtol=0, atol=1e-5 * scale, err_msg=key)
