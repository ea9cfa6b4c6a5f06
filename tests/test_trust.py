"""Hostile checkpoints: no code from a model file runs unless the user passes --trust (trust=True).

Each file below would write a marker file when its code ran (a pickle's ``__reduce__``, a Keras Lambda
layer's function). Oracle: the marker's existence. Without --trust the CLI must refuse with one
``error:`` line naming --trust, and the marker must not exist; with --trust the marker is written,
which shows that the file really does run code when loaded (so the first half of each test could fail).
ONNX files carry no Python code; the risk there is a custom-op library (native code), which interpkit
never loads unless the user names it and trusts it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from _cli import cli_error, out_files, run_cli

import interpkit
from interpkit import InputError

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytestmark = [  # Keras' own saving on numpy 2 and tf_keras' HDF5 saving warn; not this code's warnings
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file:UserWarning"),
]


class _WritesAFile:
    """Unpickling this object calls ``Path.write_text(target, "pwned")``: the attack of a hostile pickle."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (self.target, "pwned"))


@pytest.fixture(scope="module")
def pickles(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (model file, marker its unpickling would write): a torch.save file and a plain pickle."""
    folder = tmp_path_factory.mktemp("pickles")
    evil_pth, evil_pkl = folder / "evil.pth", folder / "evil.pkl"
    torch.save({"weights": torch.zeros(2), "payload": _WritesAFile(folder / "pth_ran")}, evil_pth)
    with open(evil_pkl, "wb") as handle:
        pickle.dump(_WritesAFile(folder / "pkl_ran"), handle)
    return {"pth": (evil_pth, folder / "pth_ran"), "pkl": (evil_pkl, folder / "pkl_ran")}


@pytest.fixture
def fasta(tmp_path) -> Path:
    path = tmp_path / "seqs.fa"
    path.write_text(">s1\n" + "ACGT" * 5 + "\n")
    return path


@pytest.mark.parametrize("kind", ["pth", "pkl"])
def test_pickle_runs_only_with_trust(pickles, kind):
    path, marker = pickles[kind]
    cli_error(["info", path], path.name, "holds a pickle of Python objects", "pathlib", "--trust")
    assert not marker.exists()
    if kind == "pth":
        run_cli(["info", path, "--trust"])  # trusted: the pickle runs (it holds no model, so loading fails after)
    else:
        with pytest.raises(InputError, match="holds int, not an nn.Module"):  # what Path.write_text returned
            interpkit.load(path, trust=True)
    assert marker.read_text() == "pwned"
    marker.unlink()


def test_pickle_not_run_by_predict_or_an_architecture(pickles, fasta, tmp_path):
    path, marker = pickles["pth"]
    out = tmp_path / "out"
    cli_error(["run", "predict", path, "-s", fasta, "-o", out], "evil.pth", "--trust")
    assert not marker.exists() and not out.exists()
    assert list(out_files(tmp_path)) == ["seqs.fa"]  # nothing written beside the input
    # An architecture reads weights only, whatever trust says, and says how to re-save the weights.
    with pytest.raises(InputError, match=r"arch='basset' \(--arch\) reads weights only and never runs code.*"
                                         r"torch.save\(model.state_dict\(\), path\)"):
        interpkit.load(path, arch="basset", trust=True)
    assert not marker.exists()


# -- Keras: Lambda layers carry Python bytecode ----------------------------------------------------------
def _lambda_model(framework, marker: Path):
    """Conv1D -> Lambda (identity that writes ``marker`` when called) -> GlobalMaxPooling1D, on (20, 4) input."""
    writes = eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).write_text('pwned'), t)[1]")
    inputs = framework.Input((20, 4))
    x = framework.layers.Conv1D(3, 5, name="conv")(inputs)
    x = framework.layers.Lambda(writes, name="writer")(x)
    return framework.Model(inputs, framework.layers.GlobalMaxPooling1D(name="gmax")(x))


@pytest.fixture(scope="module")
def lambda_files(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (file, marker): a Keras 3 .keras, a tf_keras legacy .h5 and a tf_keras JSON + HDF5 weights.

    Building a model calls the Lambda once, so each marker is removed after saving.
    """
    keras = pytest.importorskip("keras")
    tf_keras = pytest.importorskip("tf_keras")
    folder = tmp_path_factory.mktemp("keras")
    files = {}
    for name, framework, file in (("keras", keras, "lambda.keras"), ("h5", tf_keras, "lambda.h5"),
                                  ("json", tf_keras, "lambda_modelJson.json")):
        marker = folder / f"{name}_ran"
        model = _lambda_model(framework, marker)
        if name == "json":
            (folder / file).write_text(model.to_json())
            model.save_weights(folder / "lambda_modelWeights.h5")
        else:
            model.save(folder / file)
        marker.unlink()
        files[name] = (folder / file, marker)
    return files


@pytest.mark.parametrize("kind", ["keras", "h5", "json"])
def test_keras_lambda_runs_only_with_trust(lambda_files, kind):
    # The refusal comes before TensorFlow is imported; the trusted load runs here (a CLI run would add
    # seconds of TensorFlow start-up; the --trust flag's plumbing is tested with the pickles above).
    # "json" goes through tf_keras (Keras 3 cannot read a tf_keras JSON config).
    path, marker = lambda_files[kind]
    cli_error(["info", path], path.name, "Lambda layer(s) writer", "would run Python code", "--trust")
    assert not marker.exists()
    model = interpkit.load(path, trust=True)
    assert marker.read_text() == "pwned"
    assert model.framework == ("tf_keras" if kind == "json" else "keras")
    marker.unlink()


def test_keras_custom_class_is_named_and_never_imported(tmp_path):
    # A class the config names is code interpkit does not have: the message names it and how to give it.
    keras = pytest.importorskip("keras")

    class Doubler(keras.layers.Layer):  # a local class: reachable only through custom_objects
        def call(self, x):
            return 2.0 * x

    inputs = keras.Input((20, 4))
    model = keras.Model(inputs, keras.layers.GlobalMaxPooling1D()(Doubler(name="twice")(inputs)))
    model.save(tmp_path / "custom.keras")
    with pytest.raises(InputError, match=r"custom.keras: its config uses class\(es\) Doubler, which neither Keras 3 "
                                         r"nor tf_keras defines.*custom_objects=\{'Doubler': Doubler"):
        interpkit.load(tmp_path / "custom.keras")
    X = np.eye(4, dtype=np.float32)[np.arange(20) % 4].T[None]  # ACGT... : every max is 2 * 1
    loaded = interpkit.load(tmp_path / "custom.keras", custom_objects={"Doubler": Doubler})
    np.testing.assert_array_equal(loaded.predict(X), [[2.0, 2.0, 2.0, 2.0]])


# -- ONNX: custom ops need a native library, never loaded implicitly -------------------------------------
def test_onnx_custom_op_library_is_never_loaded_implicitly(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((3, 4, 5), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W"], ["c"]), helper.make_node("Evil", ["c"], ["e"], domain="com.example"),
         helper.make_node("ReduceMax", ["e"], ["y"], axes=[2], keepdims=0)],
        "custom", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], initializer=[weight])
    path = tmp_path / "custom.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                       helper.make_opsetid("com.example", 1)], ir_version=8), path)
    for extra in ([], ["--trust"]):  # --trust alone loads nothing: the library must be named
        cli_error(["info", path, *extra], "custom.onnx", "com.example:Evil", "never loads custom-op libraries",
                  "custom_op_libraries=", "trust=True")
    with pytest.raises(InputError, match="custom_op_libraries load native code .* so they need trust=True"):
        interpkit.load(path, custom_op_libraries=[tmp_path / "libevil.so"])
