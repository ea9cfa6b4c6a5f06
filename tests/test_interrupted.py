"""Long runs that stop half-way: chunked attributions and NeuronMotif resume; a full disk loses nothing.

Known answers: a chunked, killed (SIGKILL) and resumed run writes the same files as one uninterrupted
run; finished chunks are not recomputed; a failed write leaves the output directory as it was.
"""

from __future__ import annotations

import errno
import json
import os
import random
import resource
from pathlib import Path

import numpy as np
import pytest
from _cli import assert_complete_or_partial, cli_error, kill_after, out_files, run_cli

import interpkit
import interpkit.api
from interpkit.chunks import run_chunked
from interpkit.cli import main
from interpkit.data import CTCF_PEAKS
from interpkit.errors import InputError

MODEL = Path(interpkit.__file__).parent / "data" / "default_model" / "model.pth"  # ExplaiNN, 200 bp, 1 output
OPTIONS = {"n_references": 2}


@pytest.fixture(scope="module")
def model():
    return interpkit.load(MODEL)


@pytest.fixture(scope="module")
def fasta(tmp_path_factory):
    """The first 120 embedded CTCF peaks."""
    lines = CTCF_PEAKS.read_text().splitlines()[:240]
    path = tmp_path_factory.mktemp("seqs") / "peaks.fa"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def whole(model, fasta, tmp_path_factory):
    """The uninterrupted run's files, written by Result.write: the known answer."""
    out = tmp_path_factory.mktemp("whole")
    interpkit.run("deeplift", model, fasta, **OPTIONS).write(out)
    return out


def assert_same_outputs(out: Path, expected: Path) -> None:
    names = sorted(p.name for p in expected.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        if name.endswith(".npz"):
            got, want = np.load(out / name), np.load(expected / name)
            assert sorted(got.files) == sorted(want.files), name
            for key in want.files:
                if key == "delta":  # |f(x) - f(r) - sum|: float32 rounding, which varies with the batch
                    np.testing.assert_allclose(got[key], want[key], atol=1e-5)
                else:
                    np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}:{key}")
    got, want = json.loads((out / "deeplift.json").read_text()), json.loads((expected / "deeplift.json").read_text())
    assert got["arrays"] == want["arrays"] and got["files"] == want["files"] and got["params"] == want["params"]


def test_a_chunked_run_writes_what_one_run_writes(model, fasta, whole, tmp_path):
    files = run_chunked("deeplift", model, fasta, tmp_path / "out", chunk_size=50, **OPTIONS)
    assert [f.name for f in files][-1] == "deeplift.json" and not (tmp_path / "out" / "checkpoints").exists()
    assert_same_outputs(tmp_path / "out", whole)
    names = np.load(tmp_path / "out" / "deeplift.npz")["sequence_names"]
    assert len(names) == 120 and names[0] == Path(fasta).read_text().split()[0][1:]
    # in-memory and .npy input: the same arrays (names then default to seq0, seq1, ...)
    X = np.load(whole / "deeplift_ohe.npz")["arr_0"]
    np.save(tmp_path / "X.npy", X)
    for source, out in ((X, tmp_path / "mem"), (tmp_path / "X.npy", tmp_path / "npy")):
        run_chunked("deeplift", model, source, out, chunk_size=32, **OPTIONS)
        got = np.load(out / "deeplift_hyp_0.npz")["arr_0"]
        np.testing.assert_array_equal(got, np.load(whole / "deeplift_hyp_0.npz")["arr_0"])
        assert np.load(out / "deeplift.npz")["sequence_names"][-1] == "seq119"


def test_resume_keeps_finished_chunks(model, fasta, whole, tmp_path, monkeypatch):
    calls = []
    original = interpkit.api.run

    def killed_at_the_third_chunk(*args, start_index=0, **kw):
        if start_index == 80:
            raise KeyboardInterrupt
        calls.append(start_index)
        return original(*args, start_index=start_index, **kw)

    monkeypatch.setattr(interpkit.api, "run", killed_at_the_third_chunk)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_chunked("deeplift", model, fasta, out, chunk_size=40, **OPTIONS)
    assert calls == [0, 40] and sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        ".interpkit", "chunk_000000.npz", "chunk_000001.npz", "run.json"]
    with pytest.raises(InputError, match="interrupted run.*pass --resume.*--force to start it over"):
        run_chunked("deeplift", model, fasta, out, chunk_size=40, **OPTIONS)
    with pytest.raises(InputError, match="cannot resume.*options differ"):
        run_chunked("deeplift", model, fasta, out, chunk_size=40, resume=True, n_references=3)
    with pytest.raises(InputError, match="cannot resume.*chunk_size differ"):
        run_chunked("deeplift", model, fasta, out, chunk_size=30, resume=True, **OPTIONS)
    calls.clear()
    monkeypatch.setattr(interpkit.api, "run", lambda *a, start_index=0, **kw: calls.append(start_index) or original(
        *a, start_index=start_index, **kw))
    run_chunked("deeplift", model, fasta, out, chunk_size=40, resume=True, **OPTIONS)
    assert calls == [80]  # only the unfinished chunk ran
    assert_same_outputs(out, whole)


@pytest.mark.parametrize(("method", "options"), [("saliency", {}), ("ism", {"start": 40, "end": 60})])
def test_other_per_sequence_methods_chunk_alike(model, fasta, method, options, tmp_path):
    interpkit.run(method, model, fasta, **options).write(tmp_path / "whole")
    run_chunked(method, model, fasta, tmp_path / "out", chunk_size=45, **options)
    for name in sorted(p.name for p in (tmp_path / "whole").glob("*.npz")):
        got, want = np.load(tmp_path / "out" / name), np.load(tmp_path / "whole" / name)
        assert sorted(got.files) == sorted(want.files)
        for key in want.files:
            if want[key].dtype.kind == "f":  # float32 rounding may vary with the batch
                np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=f"{name}:{key}")
            else:
                np.testing.assert_array_equal(got[key], want[key])


def test_a_run_is_refused_rather_than_mixed_or_deleted(model, fasta, tmp_path, monkeypatch):
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "my_model_epoch3.pt").write_text("weights")  # the user's own folder of that name
    for kw in ({}, {"force": True}, {"resume": True}):
        with pytest.raises(InputError, match="interpkit did not make it"):
            run_chunked("saliency", model, fasta, out, **kw)
    assert out_files(out) == {"checkpoints/my_model_epoch3.pt": 7}
    with pytest.raises(InputError, match="pass only one of them"):
        run_chunked("saliency", model, fasta, tmp_path / "o2", resume=True, force=True)
    # an interrupted run resumed with another input encoding: refused, naming the model
    original = interpkit.api.run

    def killed_at_the_second_chunk(*args, start_index=0, **kw):
        if start_index:
            raise KeyboardInterrupt
        return original(*args, start_index=start_index, **kw)

    monkeypatch.setattr(interpkit.api, "run", killed_at_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        run_chunked("saliency", model, fasta, tmp_path / "o3", chunk_size=60)
    monkeypatch.setattr(interpkit.api, "run", original)
    with pytest.raises(InputError, match="cannot resume.*its model differ"):
        run_chunked("saliency", interpkit.load(MODEL, alphabet="TGCA"), fasta, tmp_path / "o3", chunk_size=60,
                    resume=True)
    run_chunked("saliency", model, fasta, tmp_path / "o3", chunk_size=60, resume=True, verbose=True)  # not recorded


def test_a_kill_while_deleting_finished_checkpoints_leaves_a_finished_run(model, fasta, tmp_path, monkeypatch):
    import shutil

    out = tmp_path / "out"
    real_rmtree = shutil.rmtree

    def killed(path, *a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        run_chunked("saliency", model, fasta, out, chunk_size=50)
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert not (out / "checkpoints").exists() and (out / ".checkpoints.done" / ".interpkit").is_file()
    assert np.load(out / "saliency.npz")["hypothetical"].shape == (120, 1, 4, 200)  # the outputs are complete
    with pytest.raises(InputError, match="nothing to resume"):
        run_chunked("saliency", model, fasta, out, chunk_size=50, resume=True)
    run_chunked("saliency", model, fasta, out, chunk_size=50, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["saliency.json", "saliency.npz", "saliency_hyp_0.npz",
                                                     "saliency_ohe.npz"]


def test_every_sequence_is_checked_before_any_work(model, fasta, tmp_path):
    bad = tmp_path / "bad.fa"
    bad.write_text(fasta.read_text() + ">last\n" + "ACGTZ" * 40 + "\n")
    with pytest.raises(InputError, match=r"bad.fa: .*'last'.*'Z'"):
        run_chunked("saliency", model, bad, tmp_path / "out", chunk_size=20)
    assert not (tmp_path / "out").exists()


def test_memory_does_not_grow_with_the_number_of_sequences(model, whole, tmp_path):
    """Python-side peak (numpy included) of 16 chunks against 64: one chunk at a time, whatever N.

    (Above 1 MiB of input, so that the fingerprint's 1 MiB read blocks are full in both runs.)
    """
    import tracemalloc

    X = np.load(whole / "deeplift_ohe.npz")["arr_0"]  # 120 sequences
    peaks = []
    for n in (16, 64):
        np.save(tmp_path / f"X{n}.npy", np.concatenate([X] * 16)[: 30 * n])  # n chunks of 30
        tracemalloc.start()
        run_chunked("saliency", model, tmp_path / f"X{n}.npy", tmp_path / f"out{n}", chunk_size=30)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert np.load(tmp_path / "out64" / "saliency.npz")["hypothetical"].shape == (1920, 1, 4, 200)
    assert peaks[1] < 1.10 * peaks[0], peaks  # holding the whole run would be 4x (12 MiB more)


def test_sigkill_then_resume_gives_the_uninterrupted_attributions(fasta, whole, tmp_path):
    out = tmp_path / "out"
    args = ["run", "deeplift", str(MODEL), "-s", str(fasta), "-o", str(out), "--chunk-size", "10",
            "--n-references", "2"]
    reached = random.randint(1, 5)  # of 12 chunks: a random moment while chunks are being computed
    kill_after(args, out / "checkpoints" / f"chunk_{reached:06d}.npz", delay=random.uniform(0, 0.03))
    assert_complete_or_partial(out)
    kept = sorted(p.name for p in (out / "checkpoints").glob("chunk_*.npz"))
    assert reached + 1 <= len(kept) < 12
    cli_error(args, "interrupted run", "--resume")  # never continued or overwritten unasked
    proc = run_cli([*args, "--resume"])
    assert proc.returncode == 0, proc.stderr
    assert f"resuming: {len(kept)} finished chunk(s) kept" in proc.stderr
    assert_same_outputs(out, whole)


def test_sigkill_then_resume_neuronmotif(shared, tmp_path, monkeypatch):
    import interpkit_neuronmotif.neuronmotif as nm_module

    weights = shared / "checkpoints" / "neuronmotif_demos" / "demo1" / "weight.hdf5"
    expected = interpkit.run("neuronmotif", interpkit.load(weights), layer="conv1d_1", neurons="0,1")
    out = tmp_path / "out"
    args = ["run", "neuronmotif", str(weights), "--layer", "conv1d_1", "--neurons", "0,1", "-o", str(out)]
    kill_after(args, out / "checkpoints" / "conv1d_1_neuron0.npz", delay=random.uniform(0, 0.1))
    assert_complete_or_partial(out)
    done = sorted(int(p.stem[-1]) for p in (out / "checkpoints").glob("conv1d_1_neuron*.npz"))
    ran = []
    original = nm_module.analyse_neuron
    monkeypatch.setattr(nm_module, "analyse_neuron", lambda neuron, **kw: ran.append(neuron.channel) or original(
        neuron, **kw))
    assert main([*args, "--resume"]) == 0  # in this process, to see which neurons run
    assert ran == [c for c in (0, 1) if c not in done] and 0 in done  # finished neurons are not recomputed
    got = np.load(out / "neuronmotif.npz")
    for key in ("crm_ppm", "crm_n", "samples", "neurons"):
        np.testing.assert_array_equal(got[key], expected.arrays[key])
    assert not (out / "checkpoints").exists()


# -- a full disk ---------------------------------------------------------------------------------------
def test_disk_full_removes_partial_files_and_touches_nothing_else(fasta, whole, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    writes = []
    real_fsync = os.fsync

    def fills_up(fd):
        writes.append(fd)
        if len(writes) == 5:  # the marker, run.json and chunks 0-1 fit, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fills_up)
    args = ["run", "deeplift", str(MODEL), "-s", str(fasta), "-o", str(out), "--chunk-size", "40",
            "--n-references", "2"]
    assert main([*args, "--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no room left to write") and "partial file was removed" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    kept = (".interpkit", "run.json", "chunk_000000.npz", "chunk_000001.npz")
    assert out_files(out) == {"notes.txt": 19, **{f"checkpoints/{n}": (out / "checkpoints" / n).stat().st_size
                                                  for n in kept}}
    monkeypatch.setattr(os, "fsync", real_fsync)  # space freed: resume finishes the run
    assert main([*args, "--resume"]) == 0
    assert (out / "notes.txt").read_text() == "the user's own file"
    (out / "notes.txt").unlink()
    assert_same_outputs(out, whole)


def test_a_real_file_size_limit_through_the_cli(fasta, tmp_path):
    """The kernel refuses writes past RLIMIT_FSIZE (EFBIG, Python ignores SIGXFSZ): no partial output stays."""
    out = tmp_path / "out"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))

    proc = run_cli(["run", "saliency", MODEL, "-s", fasta, "-o", out], preexec_fn=limit)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no room left to write")
    assert not [p for p in out.rglob("*") if p.is_file() and p.parent == out]  # no output file, whole or partial
    assert not list(out.rglob(".*.part"))
