"""interpkit.load and interpkit.run: dispatch, capability refusal, provenance."""

from __future__ import annotations

import numpy as np
import pytest
from interpkit_numpy.pwm_scan import PWMScanModel
from toy_models import SumModel, match_pwm

import interpkit
from interpkit import (
    BackendSpec,
    CapabilityError,
    InputError,
    MethodSpec,
    MissingFileError,
    PluginError,
    Result,
    get_registry,
    hookimpl,
)
from interpkit.sequences import one_hot_encode

MEME = """MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.25 C 0.25 G 0.25 T 0.25

MOTIF acg ACG-box
letter-probability matrix: alength= 4 w= 3 nsites= 20 E= 0
1 0 0 0
0 1 0 0
0 0 1 0
"""


@pytest.fixture
def meme_file(tmp_path):
    path = tmp_path / "acg.meme"
    path.write_text(MEME)
    return path


def test_load_meme_by_suffix_and_by_arch(meme_file):
    by_suffix = interpkit.load(meme_file)
    by_arch = interpkit.load(meme_file, arch="pwm-scan")
    assert isinstance(by_suffix, PWMScanModel) and isinstance(by_arch, PWMScanModel)
    assert by_suffix.output_names == ("acg ACG-box",)
    # PWM with pseudocount 0.01: log2((1 + 0.0025) / (1.01 * 0.25)) per matched base.
    matched = np.log2((1 + 0.01 * 0.25) / 1.01 / 0.25)
    y = by_suffix.predict(one_hot_encode(["TTACGTT"]))
    assert y[0, 0] == pytest.approx(3 * matched, rel=1e-6)
    assert interpkit.load(by_suffix) is by_suffix


def test_run_predict_provenance_and_names(ctcf_fasta, meme_file):
    result = interpkit.run("predict", meme_file, ctcf_fasta)
    assert result.arrays["predictions"].shape == (500, 1)
    assert result.sequence_names[0] == "chr11:190037-190237"
    assert result.provenance["plugin"] == "predict" and result.provenance["backend"] == "numpy"
    assert result.provenance["interpkit"] == interpkit.__version__
    assert result.params == {"batch_size": None, "verbose": False}
    assert result.tables["predictions"].rows[0][0] == "chr11:190037-190237"


def test_run_refuses_missing_capability_before_work():
    calls = []

    def needs_gradient(model, X):
        calls.append(1)
        return Result("grad")

    class Plugin:
        @hookimpl
        def register_methods(self):
            return [MethodSpec("needs-grad", needs_gradient, "x", requires={"predict", "gradient"})]

    registry = get_registry([Plugin()], autoload=False)
    with pytest.raises(CapabilityError, match="needs gradient, which model SumModel"):
        interpkit.run("needs-grad", SumModel(), one_hot_encode(["ACGT"]), registry=registry)
    assert calls == []


def test_run_with_sum_model_known_answer():
    X = one_hot_encode(["AACGTN", "GGGGGG"])
    y = interpkit.run("predict", SumModel(), X).arrays["predictions"]
    assert y.tolist() == [[2, 1, 1, 1], [0, 0, 6, 0]]
    assert y.sum() == X.sum()


def test_api_raises(tmp_path, meme_file):
    with pytest.raises(MissingFileError, match="does not exist"):
        interpkit.load(tmp_path / "nope.pth")
    (tmp_path / "model.xyz").write_text("x")
    with pytest.raises(PluginError, match=r"no backend recognises .*known file types: .*\.meme"):
        interpkit.load(tmp_path / "model.xyz")
    with pytest.raises(PluginError, match="no method named 'predcit'. Did you mean 'predict'"):
        interpkit.run("predcit", meme_file, one_hot_encode(["ACGT"]))
    with pytest.raises(InputError, match="no option 'batchsize'"):
        interpkit.run("predict", meme_file, one_hot_encode(["ACGT"]), batchsize=2)
    with pytest.raises(InputError, match=r"must be \(N, 4, L\)"):
        interpkit.run("predict", meme_file, np.zeros((2, 10, 4)))

    class Missing:
        @hookimpl
        def register_backends(self):
            return [BackendSpec("ghost", "x:y", "needs a missing module", suffixes=(".ghost",),
                                requires=("no_such_module_xyz",), extra="ghost")]

    (tmp_path / "m.ghost").write_text("x")
    registry = get_registry([Missing()], autoload=False)
    with pytest.raises(CapabilityError, match=r"needs no_such_module_xyz \(pip install 'interpkit\[ghost\]'\)"):
        interpkit.load(tmp_path / "m.ghost", registry=registry)


def test_pwm_model_from_arrays_runs_through_run():
    m = PWMScanModel([match_pwm("ACG")], ["acg"])
    result = interpkit.run("predict", m, one_hot_encode(["TTACGTT"]), batch_size=1)
    assert result.arrays["predictions"].tolist() == [[3.0]]


def test_run_and_load_raise_on_bad_arguments(meme_file):
    X = one_hot_encode(["ACGTAC", "TTTTTT", "GGGGGG"])
    with pytest.raises(InputError, match="names has 1 entries for 3 sequences"):
        interpkit.run("predict", meme_file, X, names=["a"])
    with pytest.raises(InputError, match=r"backend 'numpy' does not take option\(s\) foo; it takes: pseudocount"):
        interpkit.load(meme_file, foo=1)
    with pytest.raises(InputError, match="architecture 'pwm-scan' does not take option"):
        interpkit.load(meme_file, arch="pwm-scan", foo=1)
    with pytest.raises(InputError, match="pseudocount == nan, must be a finite number"):
        interpkit.load(meme_file, pseudocount=float("nan"))
    assert interpkit.run("predict", meme_file, X, batch_size=np.int64(2)).params["batch_size"] == 2


def test_method_crash_names_the_plugin():
    def broken(model, X):
        return {}["missing"]

    class Plugin:
        @hookimpl
        def register_methods(self):
            return [MethodSpec("broken", broken, "always fails")]

    registry = get_registry([Plugin()], autoload=False)
    with pytest.raises(PluginError, match=r"method 'broken' from plugin .* failed: KeyError: 'missing'") as err:
        interpkit.run("broken", SumModel(), one_hot_encode(["ACGT"]), registry=registry)
    assert isinstance(err.value.__cause__, KeyError)


def test_spec_names_and_reserved_options_raise():
    with pytest.raises(PluginError, match="method name 'weird/name'"):
        MethodSpec("weird/name", len, "x")
    with pytest.raises(PluginError, match="option names must be unique and not one of"):
        MethodSpec("ok", len, "x", params=(interpkit.Param("out", str, None, "clashes with --out"),))
    with pytest.raises(PluginError, match="backend name ''"):
        BackendSpec("", len, "x")
