"""The ``unit_importance`` method (ExplaiNN's unit interpretation) against known answers.

Oracles:

- closed form: a hand-built ExplaiNN whose units match one 4-mer each (conv weight 1 on the motif's bases,
  bias -4, identity batch norm, exp), so a unit's activation is exp(matches - 4): its maximum is 1 where the
  motif occurs, its threshold 0.5, its sites exactly the motif's occurrences on either strand (counted on
  the strings), its PPM the motif's one-hot, and its unit outputs, S_u and importances follow from a NumPy
  forward pass written here;
- the real checkpoint (../shared/checkpoints/explainn_tf_binding): ``final.weight`` itself, the reference
  code's filter PPMs (``explainn_filters.meme``, computed on other peaks) and its MEME Tomtom 5.4.1 table,
  and the E-box / forkhead / AP-1 units of research/explainn.md section 8.3;
- cross-backend twins: the same models exported to ONNX give the same result.
"""

from __future__ import annotations

import csv
import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from interpkit_explainn.architecture import ExplaiNN
from interpkit_unit_importance.unit_importance import unit_importance
from interpkit_unit_importance.units import fit_output_layer

import interpkit
from interpkit import CapabilityError, InputError, MissingFileError
from interpkit.activation_motifs import window_counts
from interpkit.cli import main
from interpkit.meme import read_meme
from interpkit.probe import Geometry
from interpkit.sequences import one_hot_encode, read_sequences
from interpkit.sequences import reverse_complement as rc
from interpkit.tables import Table

CKPT = "checkpoints/explainn_tf_binding"
OUTPUTS = ["MAX", "FOXA1", "JUND"]

# -- the hand-built ExplaiNN -------------------------------------------------------------------------------
MOTIFS = ("AACG", "GATT", "CCCA")  # not their own reverse complements
W_FINAL = np.array([[1.0, -0.5, 2.0], [0.25, 1.5, -1.0]])
B_FINAL = np.array([0.1, -0.2])
UNIT_BIAS = np.array([0.0, 0.0, -0.9])  # unit 2's output is 0 unless its motif occurs
L_TINY = 17  # filter 4, pool 7/7: 14 activation positions, 2 pooled


def tiny(unit_bias=UNIT_BIAS) -> torch.nn.Module:
    """ExplaiNN(3 units, 17 bp, 2 outputs, filter 4, num_fc=1) with hand-set weights, in eval mode."""
    net = ExplaiNN(3, L_TINY, 2, filter_size=4, num_fc=1)
    conv, bn0, dense, bn1 = net.linears[0], net.linears[1], net.linears[6], net.linears[7]
    with torch.no_grad():
        conv.weight.zero_()
        for u, motif in enumerate(MOTIFS):
            for j, base in enumerate(motif):
                conv.weight[u, "ACGT".index(base), j] = 1.0
        conv.bias.fill_(-4.0)
        for bn in (bn0, bn1):  # identity: (x - 0) / sqrt(var + eps) with var + eps = 1
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.zero_()
        dense.weight.fill_(1.0)  # each unit sums its two pooled maxima
        dense.bias.copy_(torch.tensor(unit_bias, dtype=torch.float32))
        net.final.weight.copy_(torch.tensor(W_FINAL, dtype=torch.float32))
        net.final.bias.copy_(torch.tensor(B_FINAL, dtype=torch.float32))
    return net.eval()


def closed_form(X: np.ndarray, unit_bias=UNIT_BIAS) -> tuple[np.ndarray, np.ndarray]:
    """Activations (N, 3, 14) and unit outputs (N, 3) of :func:`tiny`, in float64 NumPy."""
    windows = np.lib.stride_tricks.sliding_window_view(X.astype(np.float64), 4, axis=2)  # (N, 4, 14, 4)
    onehot = np.stack([one_hot_encode(m)[0] for m in MOTIFS]).astype(np.float64)  # (3, 4, 4)
    A = np.exp(np.einsum("nbpk,ubk->nup", windows, onehot) - 4.0)
    pooled = A[:, :, :14].reshape(len(X), 3, 2, 7).max(axis=3).sum(axis=2)
    return A, np.maximum(pooled + unit_bias, 0.0)


SEQS = [  # 17 bp each; motifs planted by hand on both strands
    "AACGTTTTTTTTTTTTT",  # AACG at 0
    "TTTTTTTTTTTTTCGTT",  # CGTT = rc(AACG) at 13
    "GATTCCCATTTTTTTTT",  # GATT, CCCA
    "TTTTTTTTTTTGGGAAT",  # TGGG = rc(CCCA)
    "TTTTTTTTTTTTTTTTT",  # nothing
    "AACGAACGTTTCCCAAA",  # AACG twice, CCCA
    "CAGTCAGTCAGTCAGTC",  # nothing
    "GATTAACGGATTTTTTT",  # GATT twice, AACG
]


@pytest.fixture(scope="module")
def tiny_X() -> np.ndarray:
    return one_hot_encode(SEQS)


@pytest.fixture(scope="module")
def tiny_model():
    return interpkit.load(tiny(), backend="torch", layout="NCL", length=L_TINY, output_names=["a", "b"])


@pytest.fixture(scope="module")
def tiny_result(tiny_model, tiny_X):
    return interpkit.run("unit_importance", tiny_model, tiny_X, motif_db="none")


def _count(seq: str, motif: str) -> int:
    return sum(seq.startswith(motif, i) for i in range(len(seq)))


def test_tiny_closed_form(tiny_result, tiny_X):
    a = tiny_result.arrays
    rows = np.concatenate([tiny_X, rc(tiny_X)])
    strings = SEQS + [rc(s) for s in SEQS]
    A, Z = closed_form(rows)
    assert tiny_result.params["activation_layer"] == "linears.2" and tiny_result.params["unit_layer"] == "linears.9"
    np.testing.assert_allclose(a["thresholds"], 0.5, atol=1e-6)  # every motif occurs: max = exp(0) = 1
    np.testing.assert_allclose(a["row_max_activation"], A.max(axis=2), rtol=1e-5)
    n_sites = [sum(_count(s, m) for s in strings) for m in MOTIFS]
    assert a["n_sites"].tolist() == n_sites == [7, 3, 3]
    for u, motif in enumerate(MOTIFS):
        np.testing.assert_array_equal(a["ppms"][u], one_hot_encode(motif)[0])
        assert tiny_result.motifs[u].id == f"unit{u}" and tiny_result.motifs[u].nsites == n_sites[u]
    np.testing.assert_allclose(a["unit_outputs"], Z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a["final_weights"], W_FINAL, atol=1e-5)
    np.testing.assert_allclose(a["final_bias"], B_FINAL, atol=1e-5)
    # S_u: the rows (sequence and strand) holding the motif; importance = unit output x weight on them
    for u, motif in enumerate(MOTIFS):
        S = [r for r, s in enumerate(strings) if motif in s]
        assert a["importance_row"][a["importance_unit"] == u].tolist() == S
        expected = Z[S, u][:, None] * W_FINAL[:, u]
        np.testing.assert_allclose(a["importance"][a["importance_unit"] == u], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a["median_importance"][u], np.median(expected, axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(tiny_result.unit_distribution(u, 1), expected[:, 1], rtol=1e-5, atol=1e-6)
    assert a["row_strand"].tolist() == [1] * 8 + [-1] * 8 and a["row_sequence"].tolist() == list(range(8)) * 2
    # tables: the reference's importances.tsv order (last output's median, descending) and the long form
    last = [row[-1] for row in tiny_result.tables["median_importance"].rows]
    assert last == sorted(last, reverse=True)
    long = tiny_result.tables["importance"]
    assert len(long) == len(a["importance"]) and long.rows[0][:3] == (0, "seq0", "+")
    assert tiny_result.tables["units"].column("consensus") == list(MOTIFS)
    assert not tiny_result.warnings and tiny_result.provenance["fit"]["random_rows"] == 0


def test_tiny_one_strand(tiny_model, tiny_X):
    res = unit_importance(tiny_model, tiny_X, both_strands=False, motif_db="none", names=[f"s{i}" for i in range(8)])
    a = res.arrays
    assert a["n_sites"].tolist() == [sum(_count(s, m) for s in SEQS) for m in MOTIFS] == [4, 3, 2]
    for u, motif in enumerate(MOTIFS):
        assert a["importance_row"][a["importance_unit"] == u].tolist() == [r for r, s in enumerate(SEQS) if motif in s]
    assert a["unit_outputs"].shape == (8, 3) and res.tables["importance"].rows[0][1] == "s0"


def test_batch_size_and_layer_indices_do_not_change_the_result(tiny_model, tiny_X, tiny_result):
    # layer-table indices, as int or as the command line's text, name the same layers
    res = interpkit.run("unit_importance", tiny_model, tiny_X, motif_db="none", batch_size=1, activation_layer="2",
                        unit_layer=9)
    assert res.params["activation_layer"] == "linears.2" and res.params["unit_layer"] == "linears.9"
    _same(res, tiny_result, atol=1e-6)


def test_random_rows_identify_units_silent_on_the_data(tiny_model):
    X = one_hot_encode(["AACGTTTTTTTTTTTTT", "TTGATTTTTTTTTTTTT", "TTTTTTTTTTTTTTTTT"])  # no CCCA/TGGG
    res = unit_importance(tiny_model, X, motif_db="none")
    assert (res.arrays["unit_outputs"][:, 2] == 0).all()  # unit 2 never fires on these rows
    assert res.provenance["fit"]["random_rows"] == 256  # so random sequences are added to the fit
    np.testing.assert_allclose(res.arrays["final_weights"], W_FINAL, atol=1e-5)
    assert res.arrays["n_sequences"][2] > 0  # its best 3-of-4 matches still pass half its maximum


def test_dead_unit_weights_are_nan_with_a_warning(tiny_X):
    model = interpkit.load(tiny(unit_bias=[0.0, 0.0, -100.0]), backend="torch", layout="NCL", length=L_TINY)
    res = unit_importance(model, tiny_X, motif_db="none")
    W = res.arrays["final_weights"]
    assert np.isnan(W[:, 2]).all() and not res.arrays["weights_identified"][2]
    np.testing.assert_allclose(W[:, :2], W_FINAL[:, :2], atol=1e-5)
    assert np.isnan(res.arrays["median_importance"][2]).all()
    assert any("cannot be recovered" in w and "unit2" in w for w in res.warnings)


def test_units_without_sites_keep_uniform_ppms(tiny_model, tiny_X):
    # at the convolution (matches - 4 <= 0) the maximum is 0, so nothing exceeds half of it
    res = unit_importance(tiny_model, tiny_X, activation_layer="linears.0", motif_db="none")
    assert res.arrays["n_sites"].tolist() == [0, 0, 0] and (res.arrays["ppms"] == 0.25).all()
    assert res.arrays["importance"].shape == (0, 2) and np.isnan(res.arrays["median_importance"]).all()
    assert any("no site" in w for w in res.warnings)
    assert "unit importance" in res.report_section()  # renders with nothing to plot


def test_unit_counts_follow_the_layer_geometry():
    X = one_hot_encode(["ACGTAC"])
    # start -2 (2 bp of padding on the left), jump 2, receptive field 4: position 0 sees columns -2..1
    counts = window_counts(X, np.array([0, 0]), np.array([0, 0]), np.array([0, 3]), Geometry(4, 2, -2), 1)
    expected = np.zeros((4, 4))
    for col, base in ((2, "A"), (3, "C")):  # position 0: columns -2..1 = N, N, A, C
        expected["ACGT".index(base), col] += 1
    for col, base in ((0, "A"), (1, "C")):  # position 3: columns 4..7 = A, C, N, N
        expected["ACGT".index(base), col] += 1
    np.testing.assert_array_equal(counts[0], expected)


def test_fit_output_layer():
    rng = np.random.default_rng(1)
    Z = rng.random((50, 4))
    W, b = rng.normal(size=(2, 4)), rng.normal(size=2)
    fit = fit_output_layer(Z, Z @ W.T + b)
    np.testing.assert_allclose(fit.weights, W, atol=1e-10)
    np.testing.assert_allclose(fit.bias, b, atol=1e-10)
    Z[:, 3] = Z[:, 2]  # collinear units: neither weight is identified, the fit stays exact
    fit = fit_output_layer(Z, Z @ W.T + b)
    assert fit.identifiable.tolist() == [True, True, False, False] and np.isnan(fit.weights[:, 2:]).all()
    np.testing.assert_allclose(fit.weights[:, :2], W[:, :2], atol=1e-10)
    with pytest.raises(InputError, match="not a linear function of layer 'u'.*unit_layer="):
        fit_output_layer(Z, 1 / (1 + np.exp(-(Z @ W.T + b))), unit_layer="u")


def test_tiny_report_and_files(tiny_result, tmp_path):
    html = tiny_result.report_section()
    assert html.count("<img") == 1 + 2 + 3  # weights, a box plot per output, a logo per top unit
    files = {p.name for p in tiny_result.write(tmp_path)}
    assert {"unit_importance.npz", "unit_importance.meme", "unit_importance_units.tsv",
            "unit_importance_importance.tsv", "unit_importance_median_importance.tsv",
            "unit_importance_tomtom.tsv", "unit_importance.json"} <= files
    assert [m.id for m in read_meme(tmp_path / "unit_importance.meme").motifs] == ["unit0", "unit1", "unit2"]


# -- cross-backend: ONNX exports -------------------------------------------------------------------------
def _export(module, path, length):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, 4, length),), str(path), dynamo=False, opset_version=17,
                          input_names=["seq"], dynamic_axes={"seq": {0: "N"}})
    return path


def _same(res, ref, *, atol=1e-5):
    assert set(res.arrays) == set(ref.arrays)
    for key, value in ref.arrays.items():
        if value.dtype.kind == "f":
            scale = max(1.0, float(np.nanmax(np.abs(value)))) if value.size else 1.0
            np.testing.assert_allclose(res.arrays[key], value, atol=atol * scale, err_msg=key)
        else:
            np.testing.assert_array_equal(res.arrays[key], value, err_msg=key)


def test_tiny_onnx_twin(tiny_result, tiny_X, tmp_path):
    onnx_model = interpkit.load(_export(tiny(), tmp_path / "tiny.onnx", L_TINY), output_names=["a", "b"])
    res = interpkit.run("unit_importance", onnx_model, tiny_X, motif_db="none")
    # ONNX folds the batch norm into the convolution; detection finds the same layers by their kinds
    assert res.params["activation_layer"] == "/linears/linears.2/Exp"
    assert res.params["unit_layer"] == "/linears/linears.9/Flatten"
    _same(res, tiny_result)


# -- the real checkpoint -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def module(shared):
    from interpkit_explainn.model import load_module

    return load_module(shared / CKPT / "model_epoch_best_4.pth")


@pytest.fixture(scope="module")
def explainn(shared):
    return interpkit.load(shared / CKPT / "model_epoch_best_4.pth", arch="explainn", output_names=OUTPUTS)


@pytest.fixture(scope="module")
def peaks(shared):
    names, X = [], []
    for name in ("Gm12878.CTCF.top500.w200.fa", "TAp73alpha.fa"):
        n, x = read_sequences(shared / "data" / "peaks" / name)
        names += n
        X.append(x)
    return names, np.concatenate(X)


@pytest.fixture(scope="module")
def real(explainn, peaks):
    """All 1,500 peaks, both strands, annotated against JASPAR2020 CORE vertebrates (pyjaspar)."""
    names, X = peaks
    return interpkit.run("unit_importance", explainn, X, names=names)


@pytest.fixture(scope="module")
def reference_tomtom(shared):
    """The reference's MEME Tomtom 5.4.1 table: filter -> [(target, q-value)], best first."""
    path = shared / CKPT / "reference_outputs" / "MAX_JUND_FOXA1_tomtom.tsv"
    with open(path) as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r["Query_ID"] and r["Target_ID"]]
    table: dict[int, list[tuple[str, float]]] = {}
    for r in rows:
        table.setdefault(int(r["Query_ID"].removeprefix("filter")), []).append((r["Target_ID"], float(r["q-value"])))
    return {u: sorted(hits, key=lambda h: h[1]) for u, hits in table.items()}


def test_real_layers_and_weights(real, module):
    assert real.params["activation_layer"] == "linears.2" and real.params["unit_layer"] == "linears.13"
    W = module.final.weight.detach().numpy()
    np.testing.assert_allclose(real.arrays["final_weights"], W, atol=1e-5)
    np.testing.assert_allclose(real.arrays["final_bias"], module.final.bias.detach().numpy(), atol=1e-5)
    assert real.provenance["fit"]["relative_residual"] < 1e-6
    # the additive decomposition: prediction = sum over units of unit output x weight + bias
    a = real.arrays
    np.testing.assert_allclose(a["unit_outputs"] @ W.T + a["final_bias"], a["predictions"], atol=1e-4)
    assert a["ppms"].shape == (100, 4, 19) and real.receptive_field == 19


_FAMILIES = {  # research/explainn.md 8.3: MAX -> E-box unit 70, FOXA1 -> forkhead unit 15, JUND -> AP-1 unit 8
    "MAX": (70, r"^(MYC|MYCN|MAX|MNT|MXI1|MLX|USF|TFE|MITF|SREBF|BHLHE4|HEY|NPAS|ARNT|CLOCK)", r"CACGTG"),
    "FOXA1": (15, r"^FOX", r"T[GA]TT[TG]AC|GT[CA]AA[CT]A"),
    "JUND": (8, r"^(JUN|FOS|ATF|BATF|JDP2|BACH|NFE2|MAF)", r"TGA.TCA"),
}


@pytest.mark.parametrize("output", OUTPUTS)
def test_top_weighted_units_are_the_known_motifs(real, output):
    unit, family, site = _FAMILIES[output]
    c = OUTPUTS.index(output)
    assert int(np.argmax(real.arrays["final_weights"][c])) == unit
    row = real.tables["units"].records()[unit]
    assert re.match(family, row["match_name"], re.IGNORECASE), row
    assert row["q_value"] < 0.05 and re.search(site, row["consensus"]), row
    assert real.motifs[unit].name == row["match_name"]
    assert unit in real.top_units(c, 10)  # and it ranks among the output's top units by median importance


def test_real_ppms_agree_with_the_reference_filters(real, shared):
    ref = read_meme(shared / CKPT / "reference_outputs" / "explainn_filters.meme").motifs
    assert [m.id for m in ref] == [f"filter{u}" for u in range(100)]
    r = np.array([np.corrcoef(real.arrays["ppms"][u].ravel(), ref[u].ppm.ravel())[0, 1] for u in range(100)])
    # measured: min 0.83 (unit39, 6 sites on these peaks), median 0.958
    assert r.min() >= 0.8, (int(r.argmin()), r.min())
    assert np.median(r) >= 0.9, np.median(r)
    assert (real.arrays["n_sites"] > 0).all() and not real.warnings


def test_real_tomtom_agrees_with_the_reference(real, reference_tomtom):
    significant = {u: {t for t, q in hits if q < 0.05} for u, hits in reference_tomtom.items()}
    significant = {u: s for u, s in significant.items() if s}
    assert len(significant) == 29  # research/explainn.md section 7
    best = {row["unit"]: row["match_id"] for row in real.tables["units"].records()}
    strongest = sorted(significant, key=lambda u: reference_tomtom[u][0][1])[:15]
    top_weighted = {int(np.argmax(w)) for w in real.arrays["final_weights"]}
    for u in set(strongest) | top_weighted:
        assert best[u] in significant[u], (u, best[u], sorted(significant[u])[:5])
    agree = sum(best[u] in s for u, s in significant.items())
    assert agree >= 25, agree  # measured 26 of 29
    tomtom = real.tables["tomtom"]
    assert len(tomtom) and max(tomtom.column("q-value")) <= 0.5


def test_onnx_export_of_the_real_checkpoint(module, explainn, peaks, tmp_path):
    X = peaks[1][:100]
    onnx_model = interpkit.load(_export(module, tmp_path / "explainn.onnx", 200), output_names=OUTPUTS)
    res = interpkit.run("unit_importance", onnx_model, X, motif_db="none")
    ref = interpkit.run("unit_importance", explainn, X, motif_db="none")
    assert res.params["activation_layer"] == "/linears/linears.2/Exp"
    np.testing.assert_array_equal(res.arrays["n_sites"], ref.arrays["n_sites"])
    np.testing.assert_array_equal(res.arrays["importance_row"], ref.arrays["importance_row"])
    np.testing.assert_allclose(res.arrays["final_weights"], module.final.weight.detach().numpy(), atol=1e-5)
    _same(res, ref, atol=1e-4)


def test_cli_writes_the_files(shared, peaks, tmp_path):
    names, X = peaks
    fasta = tmp_path / "peaks.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in zip(names[:60], _decode(X[:60]))))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(OUTPUTS) + "\n")
    out = tmp_path / "out"
    jaspar = shared / "data" / "jaspar" / "JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt"
    status = main(["run", "unit_importance", str(shared / CKPT / "model_epoch_best_4.pth"), "--arch", "explainn",
                   "--labels", str(labels), "-s", str(fasta), "-o", str(out), "--motif-db", str(jaspar),
                   "--no-both-strands", "--top", "5"])
    assert status == 0
    units = Table.read_tsv(out / "unit_importance_units.tsv").records()
    assert len(units) == 100 and abs(float(units[70]["weight_MAX"]) - 0.4394855) < 1e-5  # final.weight[0, 70]
    assert len(read_meme(out / "unit_importance.meme").motifs) == 100
    long = Table.read_tsv(out / "unit_importance_importance.tsv").records()
    assert {r["strand"] for r in long} == {"+"} and {r["sequence"] for r in long} <= set(names[:60])
    with np.load(out / "unit_importance.npz") as f:
        assert f["unit_outputs"].shape == (60, 100) and f["final_weights"].shape == (3, 100)
    assert main(["run", "unit_importance", "--help"]) == 0


def _decode(X):
    return interpkit.one_hot_decode(X)


# -- errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "error", "match"), [
    ({"activation_layer": "nope"}, InputError, r"activation_layer == 'nope': no layer named 'nope'"),
    ({"activation_layer": "linears.4"}, InputError, r"activation_layer 'linears.4' \(flatten\) sees the whole input"),
    ({"unit_layer": "linears.6"}, InputError, r"unit_layer 'linears.6' has 10000 channels but activation_layer"),
    ({"unit_layer": "linears.10"}, InputError, r"not a linear function of layer 'linears.10'.*--unit-layer"),
    ({"unit_layer": "linears.2"}, InputError, r"same layer 'linears.2'"),
    ({"activation_layer": 99}, InputError, r"activation_layer == 99: layer index 99 is out of range"),
    ({"motif_db": "/no/such.meme"}, MissingFileError, r"motif_db /no/such.meme is not a file"),
    ({"motif_db": "jaspar", "jaspar_release": "JASPAR1999"}, InputError, r"release == 'JASPAR1999' is not shipped"),
    ({"q_threshold": 2.0}, InputError, r"q_threshold == 2.0, must be <= 1.0"),
    ({"top": 0}, InputError, r"top == 0, must be >= 1"),
])
def test_errors(explainn, peaks, options, error, match):
    options = {"motif_db": "none", **options}  # no annotation unless the case is about it
    with pytest.raises(error, match=match):
        interpkit.run("unit_importance", explainn, peaks[1][:8], **options)


def test_errors_of_direct_calls(explainn, tiny_X, tiny_model):
    with pytest.raises(InputError, match="X"):
        unit_importance(explainn, np.zeros((2, 200, 4), dtype=np.float32))
    with pytest.raises(InputError, match="names has 1 entries for 8 sequences"):
        unit_importance(tiny_model, tiny_X, names=["a"], motif_db="none")
    with pytest.raises(InputError, match="unit_layer == 'x'"):
        unit_importance(tiny_model, tiny_X, unit_layer="x", motif_db="none")
    from toy_models import SumModel

    with pytest.raises(CapabilityError, match="unit_importance needs layers"):
        unit_importance(SumModel(), tiny_X)
    sigmoid = interpkit.load(torch.nn.Sequential(tiny(), torch.nn.Sigmoid()).eval(), backend="torch", layout="NCL",
                             length=L_TINY)
    with pytest.raises(InputError, match=r"not a linear function of layer '0.linears.9'.*logits"):
        unit_importance(sigmoid, tiny_X, motif_db="none")
