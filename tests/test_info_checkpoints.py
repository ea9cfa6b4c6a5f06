"""`interpkit info` on every real third-party checkpoint in ../shared (issue 3 acceptance).

Each must print its input spec, outputs and a layer table with receptive fields, through
the CLI exactly as a user would run it.
"""

from __future__ import annotations

import re
import warnings

import pytest

import interpkit
from interpkit.cli import main
from interpkit.errors import InputError

C = "checkpoints"
CASES = {
    "explainn": ([f"{C}/explainn_tf_binding/model_epoch_best_4.pth", "--arch", "explainn"], "outputs (3)"),
    "openspliceai-80": ([f"{C}/openspliceai_mane/model_80nt_rs10.pt", "--arch", "openspliceai", "--output",
                         "center@1,2"], "outputs (2): acceptor, donor"),
    "openspliceai-400": ([f"{C}/openspliceai_mane/model_400nt_rs10.pt", "--arch", "openspliceai", "--output",
                          "max@2"], "outputs (1): donor"),
    "pangolin": ([f"{C}/pangolin/final.1.0.3.v2", "--arch", "pangolin", "--output", "max@1"],
                 "outputs (1): heart_p_splice"),
    "tal-gata": ([f"{C}/tal_gata_simulated/keras2_conv1d_record_5_model_PQzyq_modelJson.json"], "outputs (3)"),
    "xpresso": ([f"{C}/xpresso/human_trainepoch.11-0.426.h5"], "outputs (1)"),
    "optimus": ([f"{C}/optimus5prime/retrained_evolution_model.hdf5"], "outputs (1)"),
    "neuronmotif-demo1": ([f"{C}/neuronmotif_demos/demo1/weight.hdf5"], "outputs (1)"),
    "neuronmotif-demo2": ([f"{C}/neuronmotif_demos/demo2/weight.hdf5"], "outputs (1)"),
}


def _info(capsys, argv):
    with warnings.catch_warnings():  # extra inputs and default reductions warn; tested in the backends' files
        warnings.simplefilter("ignore")
        assert main(["info", *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def _check_layer_table(text):
    table = text.split("layers:\n", 1)[1]
    header, *rows = table.strip().splitlines()
    assert "receptive_field" in header and rows, text
    rf_col = header.split().index("receptive_field")
    fields = [row.split() for row in rows]
    assert any(len(f) > rf_col and re.fullmatch(r"\d+", f[rf_col]) for f in fields), table
    return fields


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_info_prints_spec_outputs_and_receptive_fields(case, shared, capsys):
    argv, outputs = CASES[case]
    text = _info(capsys, [str(shared / argv[0]), *argv[1:]])
    assert "input: alphabet=ACGT" in text and outputs in text, text
    _check_layer_table(text)


def test_info_on_explainn_exported_to_onnx(shared, tmp_path, capsys):
    import torch

    model = interpkit.load(shared / C / "explainn_tf_binding/model_epoch_best_4.pth", arch="explainn")
    path = tmp_path / "explainn.onnx"
    torch.onnx.export(model.module, (torch.zeros(2, 4, 200),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    text = _info(capsys, [str(path)])
    assert "backend: onnx" in text and "outputs (3)" in text
    _check_layer_table(text)


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
