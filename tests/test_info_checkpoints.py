"""`interpkit info` on every real third-party checkpoint in ../shared (issue 3 acceptance).

Each must print its input spec, outputs and a layer table with receptive fields, through
the CLI exactly as a user would run it.
"""

from __future__ import annotations

import json
import warnings

import pytest

import interpkit
from interpkit.cli import main
from interpkit.errors import InputError

C = "checkpoints"
#: case -> (CLI arguments, outputs line, hand-computed receptive fields (bp) the table must hold, largest last).
#: r' = r + d (k - 1) j per conv/pool: ExplaiNN conv19, pool7 -> 19, 25; OpenSpliceAI 80 nt: eight 11-bp convs
#: -> 11 ... 81; 400 nt: eight more at dilation 4 (+40 each) -> 401; Pangolin: context 10,000 -> 10,001;
#: TAL/GATA conv11, conv11, avgpool180 -> 11, 21, 200; Xpresso conv6, pool30, conv9, pool10 -> 6, 35, 275, 545;
#: Optimus conv8, conv8 -> 8, 15; NeuronMotif demo1 -> 5, 6, 8 and demo2 -> ..., 82 from their layer configs.
CASES = {
    "explainn": ([f"{C}/explainn_tf_binding/model_epoch_best_4.pth", "--arch", "explainn"], "outputs (3)", [19, 25]),
    "openspliceai-80": ([f"{C}/openspliceai_mane/model_80nt_rs10.pt", "--arch", "openspliceai", "--output",
                         "center@1,2"], "outputs (2): acceptor, donor", [11, 21, 71, 81]),
    "openspliceai-400": ([f"{C}/openspliceai_mane/model_400nt_rs10.pt", "--arch", "openspliceai", "--output",
                          "max@2"], "outputs (1): donor", [81, 121, 361, 401]),
    "pangolin": ([f"{C}/pangolin/final.1.0.3.v2", "--arch", "pangolin", "--output", "max@1"],
                 "outputs (1): heart_p_splice", [11, 9001, 10001]),
    "tal-gata": ([f"{C}/tal_gata_simulated/keras2_conv1d_record_5_model_PQzyq_modelJson.json"], "outputs (3)",
                 [11, 21, 200]),
    "xpresso": ([f"{C}/xpresso/human_trainepoch.11-0.426.h5"], "outputs (1)", [6, 35, 275, 545]),
    "optimus": ([f"{C}/optimus5prime/retrained_evolution_model.hdf5"], "outputs (1)", [8, 15]),
    "neuronmotif-demo1": ([f"{C}/neuronmotif_demos/demo1/weight.hdf5"], "outputs (1)", [5, 6, 8]),
    "neuronmotif-demo2": ([f"{C}/neuronmotif_demos/demo2/weight.hdf5"], "outputs (1)", [7, 8, 12, 50, 82]),
}


def _info(capsys, argv):
    with warnings.catch_warnings():  # extra inputs and default reductions warn; tested in the backends' files
        warnings.simplefilter("ignore")
        assert main(["info", *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def _receptive_fields(capsys, argv):
    """The integer receptive fields (bp) of the layer table, read from ``interpkit info --json``."""
    rows = json.loads(_info(capsys, [*argv, "--json"]))["layers"]
    return {r["receptive_field"] for r in rows if isinstance(r["receptive_field"], int)}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_info_prints_spec_outputs_and_receptive_fields(case, shared, capsys):
    argv, outputs, fields = CASES[case]
    argv = [str(shared / argv[0]), *argv[1:]]
    text = _info(capsys, argv)
    assert "input: alphabet=ACGT" in text and outputs in text and "receptive_field" in text, text
    found = _receptive_fields(capsys, argv)
    assert set(fields) <= found and max(found) == fields[-1], (sorted(found), fields)


def test_info_on_explainn_exported_to_onnx(shared, tmp_path, capsys):
    import torch

    model = interpkit.load(shared / C / "explainn_tf_binding/model_epoch_best_4.pth", arch="explainn")
    path = tmp_path / "explainn.onnx"
    torch.onnx.export(model.module, (torch.zeros(2, 4, 200),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    text = _info(capsys, [str(path)])
    assert "backend: onnx" in text and "outputs (3)" in text
    assert {19, 25} <= _receptive_fields(capsys, [str(path)])  # the same geometry as the PyTorch checkpoint


def test_splice_architectures_load_every_flank_strictly(shared):
    ten_k = interpkit.load(shared / C / "openspliceai_mane/model_10000nt_rs10.pt", arch="openspliceai",
                           output="center@1,2")
    assert ten_k.checkpoint["context_bp"] == 10_000  # widths 11x8, 21x4, 41x4 with dilations 1, 4, 10, 25
    assert interpkit.load(shared / C / "openspliceai_mane/model_400nt_rs10.pt", arch="openspliceai",
                          output="center").checkpoint["context_bp"] == 400
    with pytest.raises(InputError, match="not an OpenSpliceAI checkpoint"):
        interpkit.load(shared / C / "explainn_tf_binding/model_epoch_best_4.pth", arch="openspliceai")
    with pytest.raises(InputError, match="missing keys: conv1.weight"):
        interpkit.load(shared / C / "openspliceai_mane/model_80nt_rs10.pt", arch="pangolin")
