"""The command line, in process through main(argv), reading outputs back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_api import MEME

from interpkit.cli import main
from interpkit.tables import Table


@pytest.fixture
def meme_file(tmp_path):
    path = tmp_path / "acg.meme"
    path.write_text(MEME)
    return path


@pytest.fixture
def fasta(tmp_path):
    path = tmp_path / "s.fa"
    path.write_text(">one\nTTACGTT\n>two\nTTTTTTT\n")
    return path


def test_plugins_json(capsys):
    assert main(["plugins"]) == 0
    plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert plugins["predict"]["methods"][0]["name"] == "predict"
    assert plugins["predict"]["kinds"] == ["methods"] and plugins["numpy"]["kinds"] == ["backends", "models"]
    assert plugins["numpy"]["backends"][0]["capabilities"] == ["gradient", "layers", "neuron", "predict"]
    assert {p["status"] for p in plugins.values()} == {"ok"}


def test_info_text_and_json(capsys, meme_file):
    assert main(["info", str(meme_file)]) == 0
    text = capsys.readouterr().out
    assert "backend: numpy" in text and "outputs (1): acg ACG-box" in text and "receptive_field" in text
    assert main(["info", str(meme_file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layers"][0]["receptive_field"] == 3 and info["layers"][1]["receptive_field"] == "all"
    assert info["input"]["length"] == "any"


def test_run_predict_writes_known_values(tmp_path, meme_file, fasta):
    out = tmp_path / "out"
    assert main(["run", "predict", str(meme_file), "--sequences", str(fasta), "--out", str(out)]) == 0
    table = Table.read_tsv(out / "predict_predictions.tsv")
    assert table.columns == ("name", "acg ACG-box")
    matched = np.log2((1 + 0.0025) / 1.01 / 0.25)
    values = {name: float(v) for name, v in table.rows}
    assert values["one"] == pytest.approx(3 * matched, rel=1e-6)
    manifest = json.loads((out / "predict.json").read_text())
    assert manifest["provenance"]["plugin"] == "predict"
    assert set(manifest["files"]) == {"predict.npz", "predict_predictions.tsv", "predict_summary.tsv"}
    assert np.load(out / "predict.npz")["predictions"].shape == (2, 1)


def test_cli_user_errors_exit_2_without_traceback(tmp_path, meme_file, fasta, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    cases = [
        (["run", "predict", str(meme_file), "-s", str(fasta), "-o", str(out)], "not empty"),
        (["run", "predict", str(tmp_path / "nope.meme"), "-s", str(fasta), "-o", str(tmp_path / "o2")],
         "does not exist"),
        (["info", str(fasta)], "no backend recognises"),
        (["run", "predict", str(meme_file), "-s", str(meme_file), "-o", str(tmp_path / "o3")], "accepted"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err
        assert err.count("\n") == 1
    assert (out / "keep.txt").read_text() == "mine"


def test_run_help_shows_declared_options(capsys):
    assert main(["run", "predict", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--batch-size" in text and "--sequences" in text


def test_run_verbose_shows_progress(tmp_path, meme_file, fasta, capsys):
    argv = ["run", "predict", str(meme_file), "-s", str(fasta), "-o", str(tmp_path / "o"), "--verbose"]
    assert main(argv) == 0
    assert "predict" in capsys.readouterr().err  # the tqdm bar's label


def test_failed_run_creates_no_output_directory(tmp_path, meme_file, fasta, capsys):
    out = tmp_path / "never"
    assert main(["run", "predict", str(meme_file), "-s", str(fasta), "-o", str(out), "--batch-size", "0"]) == 2
    assert "batch_size == 0" in capsys.readouterr().err
    assert not out.exists()


def test_cli_prints_interpkit_warnings_as_one_line(shared, capsys):
    # Xpresso has an extra input the user did not give: one "warning:" line, no source path.
    assert main(["info", str(shared / "checkpoints/xpresso/human_trainepoch.11-0.426.h5")]) == 0
    err = capsys.readouterr().err
    assert "warning: model human_trainepoch.11-0.426.h5 has extra input(s) halflife" in err
    assert ".py:" not in err


def test_extra_input_from_the_cli_changes_xpresso(shared, tmp_path, capsys):
    # Xpresso's second input (6 half-life features) from --extra-input NAME=FILE.npy.
    model = str(shared / "checkpoints/xpresso/human_trainepoch.11-0.426.h5")
    features = tmp_path / "halflife.npy"
    np.save(features, np.full(6, 2.0, dtype=np.float32))
    fasta = tmp_path / "promoters.fa"
    rng = np.random.default_rng(0)
    fasta.write_text("".join(f">p{i}\n{''.join(rng.choice(list('ACGT'), 10500))}\n" for i in range(2)))
    outputs = {}
    for label, extra in (("zeros", []), ("given", ["--extra-input", f"halflife={features}"])):
        out = tmp_path / label
        assert main(["run", "predict", model, "-s", str(fasta), "-o", str(out), *extra]) == 0, capsys.readouterr().err
        outputs[label] = np.load(out / "predict.npz")["predictions"]
    assert not np.allclose(outputs["zeros"], outputs["given"])
    assert main(["info", model, "--extra-input", "halflife"]) == 2
    assert "must be NAME=FILE.npy" in capsys.readouterr().err


def test_trust_must_be_a_real_bool(tmp_path):
    import interpkit
    from interpkit.errors import InputTypeError

    with pytest.raises(InputTypeError, match="trust must be bool"):
        interpkit.load(tmp_path, trust="false")
