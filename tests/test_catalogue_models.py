"""Model-side bad input, through the command line as a user meets it: one ``error:`` line, exit status 2.

Each row of :data:`CASES` runs ``python -m interpkit ...`` on a broken or mismatched model (or option)
and checks that the message names the file, layer or option, the problem and the fix; runs that fail
write no results. The files are real where one exists (the embedded ExplaiNN, the ExplaiNN
of ../shared, Optimus 5-Prime's HDF5) and otherwise built here: small ONNX graphs whose outputs are
known by construction (e.g. ``log(#A - 0.5)``, NaN exactly for the sequences without an A).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _cli import cli_error

import interpkit
from interpkit import InputError
from interpkit.explain import DEFAULT_MODEL, DEFAULT_SEQUENCES
from interpkit.validation import check_finite_outputs

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.(script|save)` is deprecated:DeprecationWarning")
EXPLAINN_TF = "checkpoints/explainn_tf_binding/model_epoch_best_4.pth"
OPTIMUS = "checkpoints/optimus5prime/retrained_evolution_model.hdf5"


def _onnx(path: Path, nodes: list, weights: dict[str, np.ndarray], outputs: int, *, shape=("N", 4, 20)) -> Path:
    """Save a one-input ONNX graph (input "x" of ``shape``, output "y" of shape (N, outputs))."""
    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", outputs])],
        initializer=[numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def _cnn(path: Path) -> Path:
    """conv1 -> relu1 -> pool1 -> conv2 -> relu2 -> gmax -> dense, (N, 4, 20) -> (N, 3), random weights."""
    rng = np.random.default_rng(0)
    node = helper.make_node
    return _onnx(path, [
        node("Conv", ["x", "W1", "b1"], ["c1"], name="conv1", pads=[2, 2]),
        node("Relu", ["c1"], ["r1"], name="relu1"),
        node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2], strides=[2]),
        node("Conv", ["p1", "W2", "b2"], ["c2"], name="conv2", pads=[1, 1]),
        node("Relu", ["c2"], ["r2"], name="relu2"),
        node("ReduceMax", ["r2"], ["g"], name="gmax", axes=[2], keepdims=0),
        node("Gemm", ["g", "W3", "b3"], ["y"], name="dense", transB=1),
    ], {"W1": rng.normal(size=(6, 4, 5)), "b1": np.zeros(6), "W2": rng.normal(size=(6, 6, 3)), "b2": np.zeros(6),
        "W3": rng.normal(size=(3, 6)), "b3": np.zeros(3)}, 3)


@pytest.fixture(scope="module")
def files(tmp_path_factory, shared) -> dict[str, Path]:
    """Every model and sequence file the cases name, by key."""
    folder = tmp_path_factory.mktemp("models")
    f: dict[str, Path] = {"default": DEFAULT_MODEL, "explainn_tf": shared / EXPLAINN_TF}
    state = torch.load(DEFAULT_MODEL, weights_only=True)

    def save_bytes(name: str, data: bytes) -> None:
        f[name] = folder / name
        f[name].write_bytes(data)

    save_bytes("half.pth", DEFAULT_MODEL.read_bytes()[: DEFAULT_MODEL.stat().st_size // 2])
    save_bytes("random.pth", np.random.default_rng(1).bytes(4096))
    script = folder / "script.pt"
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Conv1d(4, 3, 5), torch.nn.ReLU())), str(script))
    save_bytes("half_script.pt", script.read_bytes()[: script.stat().st_size // 2])
    optimus = (shared / OPTIMUS).read_bytes()
    save_bytes("half.h5", optimus[: len(optimus) // 2])
    save_bytes("random.keras", np.random.default_rng(2).bytes(4096))
    f["cnn.onnx"] = _cnn(folder / "cnn.onnx")
    save_bytes("half.onnx", f["cnn.onnx"].read_bytes()[: f["cnn.onnx"].stat().st_size // 2])
    # One tensor missing and one of the wrong shape; then a state_dict whose final bias is +inf.
    broken = {k: v for k, v in state.items() if k != "linears.1.running_var"}
    broken["linears.11.bias"] = torch.zeros(15)
    torch.save(broken, folder / "keys.pth")
    torch.save({**state, "final.bias": torch.full_like(state["final.bias"], float("inf"))}, folder / "inf.pth")
    f["keys.pth"], f["inf.pth"] = folder / "keys.pth", folder / "inf.pth"
    # y = log([#A, #C] - 0.5): NaN exactly where a sequence has no A (output 0) or no C (output 1).
    node = helper.make_node
    f["log.onnx"] = _onnx(folder / "log.onnx", [
        node("ReduceSum", ["x", "axes"], ["counts"], keepdims=0), node("MatMul", ["counts", "pick"], ["ac"]),
        node("Sub", ["ac", "half"], ["shifted"]), node("Log", ["shifted"], ["y"]),
    ], {"axes": np.array([2]), "pick": np.eye(4)[:, :2], "half": np.array(0.5)}, 2)
    # (ReduceSum's axes are int64: rewrite the initializer the helper wrote as float.)
    model = onnx.load(f["log.onnx"])
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.array([2], np.int64), "axes"))
    onnx.save(model, f["log.onnx"])
    f["shapeless.onnx"] = _onnx(folder / "shapeless.onnx", [
        node("Flatten", ["x"], ["flat"]), node("MatMul", ["flat", "W"], ["y"])], {"W": np.ones((80, 1))}, 1,
        shape=None)
    f["acgt.fa"] = folder / "acgt.fa"  # 20 bp: no A; A and C; no A and no C
    f["acgt.fa"].write_text(">noA\n" + "C" * 20 + "\n>both\n" + "ACGT" * 5 + "\n>neither\n" + "G" * 20 + "\n")
    f["ctcf.fa"] = folder / "ctcf.fa"  # the first two embedded CTCF peaks, 200 bp
    f["ctcf.fa"].write_text("".join(DEFAULT_SEQUENCES.read_text().splitlines(keepends=True)[:4]))
    return f


#: (id, arguments, substrings of the one error line); "{key}" stands for ``files[key]``, "{out}" for the output folder.
CASES = [
    # 1. truncated or corrupt files, each format
    ("pth-truncated", ["info", "{half.pth}"],
     ["half.pth could not be read as a PyTorch checkpoint", "truncated or corrupt", "save it again"]),
    ("pth-random-bytes", ["info", "{random.pth}"], ["random.pth", "neither a zip archive nor a pickle"]),
    ("torchscript-truncated", ["info", "{half_script.pt}"], ["half_script.pt could not be read", "truncated"]),
    ("h5-truncated", ["info", "{half.h5}"], ["half.h5 is not readable as HDF5", "truncated"]),
    ("keras-random-bytes", ["info", "{random.keras}"], ["random.keras is not readable as a Keras 3 .keras archive"]),
    ("onnx-truncated", ["info", "{half.onnx}"], ["half.onnx is not a readable ONNX model", "truncated"]),
    # 2. a state_dict that does not fit the architecture: which keys, the first few and how many more
    ("arch-mismatch", ["info", "{explainn_tf}", "--arch", "basset"],
     ["model_epoch_best_4.pth is not a basset state_dict", "missing keys: 0.weight, 0.bias, 1.weight, 1.bias (+",
      "unexpected keys: linears.0.weight", "(arch=, --arch)"]),
    ("state-dict-keys", ["info", "{keys.pth}", "--arch", "explainn"],
     ["keys.pth is not an explainn state_dict: missing keys: linears.1.running_var;",
      "wrong shapes: linears.11.bias (15,) (expected (16,))"]),
    # 3. layouts and alphabets that are invalid, do not fit, or cannot be inferred
    ("layout-invalid", ["info", "{cnn.onnx}", "--layout", "NLX"], ["layout == 'NLX'", "'NCL', 'NLC', 'NC1L', 'NCL1'"]),
    ("alphabet-unknown-letter", ["info", "{cnn.onnx}", "--alphabet", "ACGX"],
     ["alphabet == 'ACGX' is not an ordering of 'ACGT' (lacks T, has X)", "--alphabet"]),
    ("alphabet-repeated-letter", ["info", "{cnn.onnx}", "--alphabet", "AACG"], ["(repeats A, lacks T)"]),
    ("layout-misfit-onnx", ["info", "{cnn.onnx}", "--layout", "NLC"],
     ["cnn.onnx: input 'x' has shape (?, 4, 20), which is not layout NLC"]),
    ("layout-misfit-torch", ["info", "{default}", "--layout", "NLC"],
     ["layout == 'NLC' does not fit model ExplaiNN: its first convolution reads layout NCL", "--layout"]),
    ("layout-unknown", ["info", "{shapeless.onnx}"], ["input 'x' declares no shape", "(--layout)"]),
    # 4. non-finite outputs: the output, the value and the sequences
    ("nan-outputs-onnx", ["run", "predict", "{log.onnx}", "-s", "{acgt.fa}", "-o", "{out}"],
     ["model log.onnx's output 0 ('out0') is NaN for sequence(s) 0, 2 (2 of 3); 2 outputs are affected (0, 1)",
      "weights for NaN/inf"]),
    ("inf-outputs-torch", ["run", "predict", "{inf.pth}", "--arch", "explainn", "-s", "{ctcf.fa}", "-o", "{out}"],
     ["model ExplaiNN's output 0 ('out0') is inf for sequence(s) 0, 1 (2 of 2)"]),
    ("inf-outputs-deeplift", ["run", "deeplift", "{inf.pth}", "--arch", "explainn", "-s", "{ctcf.fa}", "-o", "{out}"],
     ["model ExplaiNN's output 0 ('out0') is inf for sequence(s) 0, 1 (2 of 2)"]),
    # 5. targets out of range or unknown
    ("target-deeplift", ["run", "deeplift", "{default}", "-s", "{ctcf.fa}", "-o", "{out}", "--target", "99"],
     ["target 99 is out of range; the model has 1 outputs, 0-0 (gm12878_ctcf_top500)"]),
    ("target-saliency-name", ["run", "saliency", "{default}", "-s", "{ctcf.fa}", "-o", "{out}", "--target", "nope"],
     ["target 'nope' is neither an output index nor an output name"]),
    ("target-ism", ["run", "ism", "{cnn.onnx}", "-s", "{acgt.fa}", "-o", "{out}", "--target", "99"],
     ["target 99 is out of range; the model has 3 outputs"]),
    ("target-gia", ["run", "gia", "{cnn.onnx}", "-s", "{acgt.fa}", "-o", "{out}", "--target", "99"],
     ["target 99 is out of range; the model has 3 outputs"]),
    # 6. layers that do not exist: close names, and the layers
    ("layer-neuronmotif", ["run", "neuronmotif", "{cnn.onnx}", "-o", "{out}", "--layer", "conv9"],
     ["no layer named 'conv9'. Did you mean 'conv2', 'conv1'?", "conv1 (conv), relu1 (activation), pool1 (maxpool)"]),
]


@pytest.mark.parametrize(("args", "messages"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_model_input_fails_in_one_line(files, tmp_path, args, messages):
    out = tmp_path / "out"
    named = {**files, "out": out}
    cli_error([named[a[1:-1]] if a.startswith("{") else a for a in args], *messages)
    assert not out.exists()  # nothing written: a chunked run writes only once its first chunk is done


def test_explain_fails_on_an_unknown_neuronmotif_layer_after_writing_the_rest(files, tmp_path):
    # A method the user asked for that fails is an error (exit 2), raised once the report is written.
    cli_error(["explain", files["cnn.onnx"], "-s", files["acgt.fa"], "-o", tmp_path / "out", "--skip", "gia",
               "--neuronmotif", "conv9"],
              "neuronmotif failed: no layer named 'conv9'. Did you mean 'conv2', 'conv1'?", "report are in")
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "predict.npz").is_file()


@pytest.mark.parametrize(("damage", "message"), [
    ({"hyperparameters": [200]}, r"model.json beside model.pth: 'hyperparameters' is list, not a mapping"),
    ({"targets": 5}, r"model.json beside model.pth: 'targets' must be a list of output names, not int"),
    ({"alphabet": "XYZ"}, r"model.json beside model.pth: 'alphabet' is 'XYZ', must be 'ACGT' or 'ACGU'"),
    ({"arch": "os.system"}, r"no model architecture named 'os.system'\. Available: basset"),
], ids=["hyperparameters", "targets", "alphabet", "arch"])
def test_damaged_sidecar_is_named(tmp_path, damage, message):
    # model.json is data (JSON), read only for an architecture's settings; a damaged one is named, not a traceback.
    record = json.loads(DEFAULT_MODEL.with_name("model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**record, **damage}))
    (tmp_path / "model.pth").write_bytes(DEFAULT_MODEL.read_bytes())
    with pytest.raises(interpkit.InterpkitError, match=message):
        interpkit.load(tmp_path / "model.pth")


def test_probe_api_names_unknown_layers(files):
    model = interpkit.load(files["cnn.onnx"])
    X = np.eye(4, dtype=np.float32)[np.zeros((2, 20), int)].transpose(0, 2, 1)
    for call in (lambda: model.activations(X, "conv9"), lambda: model.pool_inputs(X, "conv9"),
                 lambda: model.neuron("conv9", 0, X[:, :, :5])):
        with pytest.raises(InputError, match=r"no layer named 'conv9'\. Did you mean 'conv2', 'conv1'\? The layers"):
            call()
    with pytest.raises(InputError, match=r"layer index 7 is out of range; the model has 7 layers"):
        model.activations(X, 7)


def test_non_finite_values_are_named():
    # Known answers: which output, which value, which sequences (0-based); gradients name their target.
    y = np.array([[1.0, 2.0], [np.inf, 0.0], [-np.inf, np.nan]], np.float32)
    with pytest.raises(InputError, match=r"model m's output 0 \('a'\) is inf for sequence\(s\) 1, 2 \(2 of 3\); "
                                         r"2 outputs are affected \(0, 1\)"):
        check_finite_outputs(y, "m", ("a", "b"))
    many = np.full((8, 1), np.nan, np.float32)
    with pytest.raises(InputError, match=r"is NaN for sequence\(s\) 0, 1, 2, 3, 4, \.\.\. \(8 of 8\); results"):
        check_finite_outputs(many, "m", ("a",))
    G = np.zeros((3, 4, 5), np.float32)
    G[2, 1, 3] = np.nan
    with pytest.raises(InputError, match=r"the gradient of model m's output 1 \('b'\) is NaN for sequence\(s\) 2 "
                                         r"\(1 of 3\)"):
        check_finite_outputs(G, "m", ("a", "b"), target=1)
    finite = np.ones((2, 2), np.float32)
    assert check_finite_outputs(finite, "m", ("a", "b")) is finite

