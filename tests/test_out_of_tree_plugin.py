"""A third-party plugin distribution, pip-installed by the test, is found, listed and runs.

The distribution lives in tests/plugin_example/ and registers method ``strand-gap``
through the ``interpkit`` entry-point group, exactly as the bundled plugins do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from interpkit_numpy.pwm_scan import PWMScanModel
from toy_models import match_pwm, revcomp, window_scores

import interpkit
from interpkit.plugins import clear_cache
from interpkit.sequences import one_hot_encode
from interpkit.tables import Table
from interpkit.testing import METHOD_CHECKS, check_id

EXAMPLE = Path(__file__).parent / "plugin_example"
DIST = "interpkit-strand-gap"
CLI = [sys.executable, "-m", "interpkit.cli"]
SEQS = ["TTACGGG", "TTACGTT", "GGGGGGG"]


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip-install the example distribution (from a copy, so the source tree stays clean); uninstall after."""
    src = tmp_path_factory.mktemp("dist") / "plugin_example"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    _pip("uninstall", "-y", DIST)  # a no-op, unless a killed run left it installed
    clear_cache()
    assert not any(p.name == "strand_gap" for p in interpkit.get_registry().plugins)
    _pip("install", "--no-deps", "--no-build-isolation", str(src))
    clear_cache()
    yield
    _pip("uninstall", "-y", DIST)
    clear_cache()


def _model(both_strands=False):
    return PWMScanModel([match_pwm("ACG")], ["acg"], both_strands=both_strands)


def test_unknown_without_the_plugin():
    with pytest.raises(interpkit.PluginError, match="no method named 'strand-gap'"):
        interpkit.run("strand-gap", _model(), one_hot_encode(SEQS), registry=interpkit.get_registry(autoload=False))


def test_listed_by_interpkit_plugins(installed):
    out = subprocess.run([*CLI, "plugins"], capture_output=True, text=True, check=True)
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    entry = plugins["strand_gap"]
    assert (entry["status"], entry["distribution"], entry["version"]) == ("ok", DIST, "0.3.0")
    (method,) = entry["methods"]
    assert (method["name"], method["requires"]) == ("strand-gap", ["predict"])
    assert method["summary"] == "Prediction gap between a sequence and its reverse complement."
    threshold = method["params"][1]
    assert (threshold["flag"], threshold["type"], threshold["default"], threshold["min"]) == \
        ("--threshold", "float", 0.0, 0.0)


def test_runs_from_python_with_known_answers(installed):
    result = interpkit.run("strand-gap", _model(), one_hot_encode(SEQS))
    for n, seq in enumerate(SEQS):  # oracle: max window score of the sequence minus that of its rc
        expected = max(window_scores(seq, match_pwm("ACG"))) - max(window_scores(revcomp(seq), match_pwm("ACG")))
        assert result.arrays["gap"][n, 0] == pytest.approx(expected)
    assert result.arrays["gap"][0, 0] == 2.0  # TTACGGG: ACG scores 3; best window of CCCGTAA is CCG, 1
    assert result.provenance["distribution"] == DIST and result.provenance["plugin_version"] == "0.3.0"
    symmetric = interpkit.run("strand-gap", _model(both_strands=True), one_hot_encode(SEQS))
    assert np.array_equal(symmetric.arrays["gap"], np.zeros((3, 1), dtype=np.float32))


def test_runs_from_cli_with_generated_options(installed, tmp_path):
    fasta = tmp_path / "s.fa"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQS)))
    meme = tmp_path / "acg.meme"
    from test_api import MEME

    meme.write_text(MEME)
    help_text = subprocess.run([*CLI, "run", "strand-gap", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--threshold FLOAT" in help_text and "[default: 0.0]" in help_text
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run([*CLI, "run", "strand-gap", str(meme), "-s", str(fasta), "-o", str(out), "--threshold", "0.5"],
                   check=True, capture_output=True, text=True, env=env)
    summary = Table.read_tsv(out / "strand-gap_summary.tsv")
    assert summary.columns == ("output", "mean_abs_gap", "asymmetric")
    assert summary.rows[0][0] == "acg ACG-box" and summary.rows[0][2] == "True"
    assert np.load(out / "strand-gap.npz")["gap"].shape == (3, 1)


@pytest.mark.parametrize("check", METHOD_CHECKS, ids=check_id)
def test_example_method_conformance(installed, check):
    check("strand-gap", _model(), one_hot_encode(SEQS * 2))


def test_third_party_method_joins_explain_and_its_report(installed, tmp_path):
    """A method without an explain hook joins `interpkit explain` on its defaults, with its own report section."""
    run = interpkit.explain(_model(), one_hot_encode(SEQS), out=tmp_path / "explain",
                            skip=["ism", "gia", "filter_motifs", "unit_importance"])
    assert "strand-gap" in run.results and "predict" in run.results
    html = run.report.read_text()
    assert "id='strand-gap'" in html or 'id="strand-gap"' in html
    manifest = json.loads((tmp_path / "explain" / "results.json").read_text())
    assert manifest["methods"]["strand-gap"]["status"] == "ran"
    assert all((tmp_path / "explain" / f).is_file() for f in manifest["methods"]["strand-gap"]["files"])
