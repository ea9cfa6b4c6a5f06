"""interpkit explain: the embedded default, the real ExplaiNN checkpoint, Keras and ONNX models, the manifest."""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

import interpkit
from interpkit.cli import main
from interpkit.errors import InputError
from interpkit.explain import DEFAULT_MODEL, explain

pytest.importorskip("torch")
SHARED = Path(__file__).resolve().parents[2] / "shared"
EXPLAINN = SHARED / "checkpoints" / "explainn_tf_binding" / "model_epoch_best_4.pth"
P73 = SHARED / "data" / "peaks" / "TAp73alpha.fa"
needs_shared = pytest.mark.skipif(not EXPLAINN.exists(), reason="../shared is not beside the checkout")


def _check_manifest(out: Path) -> dict:
    """Every file results.json lists exists and parses (MEME by memelite, npz by numpy, TSV by csv, JSON)."""
    from memelite.io import read_meme

    manifest = json.loads((out / "results.json").read_text())
    for entry in manifest["files"]:
        path = out / entry["path"]
        assert path.is_file(), entry
        if path.suffix == ".meme":
            assert read_meme(str(path))
        elif path.suffix == ".npz":
            with np.load(path) as arrays:
                assert arrays.files
        elif path.suffix == ".tsv":
            with path.open() as handle:
                rows = list(csv.reader(handle, delimiter="\t"))
            assert rows and all(len(r) == len(rows[0]) for r in rows)
        elif path.suffix == ".json":
            json.loads(path.read_text())
    return manifest


def _tomtom_hits(run, prefix: str, q: float = 0.05) -> list[dict]:
    return [r for result in run.results.values() if "tomtom" in result.tables
            for r in result.tables["tomtom"].records() if r["Target_name"].upper().startswith(prefix)
            and r["q-value"] < q]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return explain(out=tmp_path_factory.mktemp("default"))


def test_default_run_finds_and_annotates_ctcf(default_run):
    assert DEFAULT_MODEL.is_file()
    assert _tomtom_hits(default_run, "CTCF"), {k: r.tables.get("tomtom") for k, r in default_run.results.items()}
    html = default_run.report.read_text()
    assert "CTCF" in html and "MA0139" in html
    assert {"predict", "deeplift", "filter_motifs", "unit_importance", "gia"} <= set(default_run.results)
    assert default_run.skipped["ism"].startswith("DeepLIFT gave the attributions")
    assert "--neuronmotif" in default_run.skipped["neuronmotif"]


def test_default_run_manifest_lists_every_file(default_run):
    manifest = _check_manifest(default_run.out)
    listed = {e["path"] for e in manifest["files"]} | {"results.json"}
    assert listed == {p.name for p in default_run.out.iterdir()}
    assert manifest["methods"]["saliency"]["status"] == "skipped"
    assert "motifs.meme" in listed and "report.html" in listed


@needs_shared
def test_real_explainn_top_units_are_ebox_forkhead_ap1(tmp_path):
    """Acceptance: explain on the reference checkpoint annotates the top units of outputs 0/1/2."""
    run = explain(EXPLAINN, P73, out=tmp_path, arch="explainn")
    units = run.results["unit_importance"].tables["units"].records()
    families = {0: ("MYC", "MAX", "MYCN", "MNT", "MLX", "TFE", "USF", "HEY", "BHLHE", "ARNT", "NPAS", "CLOCK"),
                1: ("FOX",), 2: ("JUN", "FOS", "ATF", "BATF", "NFE2", "BACH", "MAF")}
    weights = run.results["unit_importance"].arrays["final_weights"]
    for output, prefixes in families.items():
        top = int(np.nanargmax(weights[output]))
        name = str(next(r for r in units if r["unit"] == top)["match_name"]).upper()
        assert name.startswith(prefixes), (output, top, name)
    _check_manifest(tmp_path)


@needs_shared
def test_keras_model_runs_what_its_backend_supports(tmp_path):
    pytest.importorskip("tf_keras")
    from tal_gata import KERAS_JSON

    X = interpkit.read_sequences(P73)[1][:200]
    run = explain(SHARED / KERAS_JSON, X, out=tmp_path, options={"gia": {"n_backgrounds": 50}})
    assert "predict" in run.results and "filter_motifs" in run.results
    # its 50 filters and 50-unit dense layer look like units, but the sigmoid output is not linear in them
    assert "not a linear function" in run.skipped["unit_importance"]
    attribution = {"deeplift", "ism"} & set(run.results)
    assert attribution, run.skipped
    _check_manifest(tmp_path)


@needs_shared
def test_onnx_export_runs_and_says_what_it_skipped(tmp_path):
    pytest.importorskip("onnxruntime")
    from interpkit_torch.export import to_onnx

    model = interpkit.load(EXPLAINN, arch="explainn", output_names=["MAX", "FOXA1", "JUND"])
    onnx = to_onnx(model, tmp_path / "explainn.onnx")
    X = interpkit.read_sequences(P73)[1][:200]
    run = explain(onnx, X, out=tmp_path / "out", options={"gia": {"n_backgrounds": 50}})
    assert {"predict", "filter_motifs", "unit_importance"} <= set(run.results)
    assert set(run.skipped) >= {"saliency", "neuronmotif"}
    text = html.unescape(re.sub("<[^>]+>", "", run.report.read_text()))
    for name, reason in run.skipped.items():
        assert name in text and reason in text
    _check_manifest(tmp_path / "out")


def test_cli_explain_and_its_errors(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["explain", "-o", str(out), "--only", "predict,filter_motifs,saliency"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out / "report.html")
    assert "skipped deeplift: not among --only" in captured.err
    assert (out / "saliency.npz").is_file()  # off by default, but named
    assert main(["explain", "-o", str(out)]) == 2 and "not empty" in capsys.readouterr().err
    assert main(["explain", "-o", str(tmp_path / "x"), "--skip", "nosuch"]) == 2
    assert "no method named 'nosuch'" in capsys.readouterr().err
    assert main(["explain", "-o", str(tmp_path / "y"), "--option", "gia.n_backgrounds=many"]) == 2
    assert "n_backgrounds must be an integer" in capsys.readouterr().err
    assert main(["explain", "-o", str(tmp_path / "z"), "--option", "gia.backgrounds=5"]) == 2
    assert "has no option 'backgrounds'" in capsys.readouterr().err
    with pytest.raises(InputError, match="explain needs sequences"):
        explain(DEFAULT_MODEL, out=tmp_path / "v")
    with pytest.raises(InputError, match="no method named 'nope'"):
        explain(out=tmp_path / "w", options={"nope": {}})


def test_default_report_renders_in_headless_chromium(default_run, tmp_path):
    """Acceptance: the real report opens in Chromium with every section and no broken image; screenshot kept."""
    import os
    import shutil

    from test_report import CHROMIUM, _body, _chromium

    if CHROMIUM is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    body = _body(_chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", default_run.report.as_uri()))
    assert body.get("data-broken-images") == "0"
    assert body.get("data-sections") == str(len(default_run.results))
    shot = tmp_path / "explain_default.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", default_run.report.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = os.environ.get("INTERPKIT_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "explain_default_report.png")
        shutil.copy(default_run.report, Path(artifacts) / "explain_default_report.html")
