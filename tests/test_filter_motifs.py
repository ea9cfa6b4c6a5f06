"""The ``filter_motifs`` method (first-layer filter motifs) against known answers.

Oracles:

- closed form: a hand-built convolution whose filters count matches to a 3-mer (weight 1 on the word's
  bases, bias 0, "same" padding), so a filter's activation at a position is the number of matching bases
  in its window, its maximum 3 where the word occurs; thresholds, sites and PPMs are counted here on the
  strings (both strands, padding read as N), independently of the method;
- planted motif: a filter holding the CTCF log-odds matrix (JASPAR MA0139.1) scanned on random sequences
  with sampled CTCF sites planted: its PPM is CTCF's and Tomtom names MA0139;
- the real ExplaiNN checkpoint (../shared/checkpoints/explainn_tf_binding) on real peaks: the same windows,
  hence the same PPMs, as unit_importance's units (the ExplaiNN paper's unit PPMs are the filter motifs),
  and its known E-box / forkhead / AP-1 units; its ONNX export gives the same result;
- the TAL1/GATA simulated-data CNN (Keras, ../shared/checkpoints/tal_gata_simulated), trained on sequences
  with planted GATA and TAL1 motifs: its first-layer filters match GATA in JASPAR.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from interpkit_filter_motifs.explain import explain_options
from interpkit_filter_motifs.filter_motifs import filter_motifs
from interpkit_filter_motifs.report import _aligned

import interpkit
from interpkit import CapabilityError, InputError, MissingFileError
from interpkit import activation_motifs as am
from interpkit.cli import main
from interpkit.jaspar import fetch_jaspar
from interpkit.meme import read_meme
from interpkit.motifs import Motif, ppm_to_pwm
from interpkit.sequences import one_hot_encode, read_sequences
from interpkit.tables import Table

CKPT = "checkpoints/explainn_tf_binding"
OUTPUTS = ["MAX", "FOXA1", "JUND"]


# -- the closed-form model ----------------------------------------------------------------------------------
WORDS = ("ACG", "TTA")  # filter 2 has weights -1 everywhere: its ReLU output is 0, it never fires
L_TINY = 12


def tiny() -> torch.nn.Module:
    """Conv1d(4, 3, 3, padding=1) -> ReLU -> global max pool -> Linear: filter c counts matches to WORDS[c]."""
    net = torch.nn.Sequential(torch.nn.Conv1d(4, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveMaxPool1d(1),
                              torch.nn.Flatten(), torch.nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.zero_()
        for c, word in enumerate(WORDS):
            for j, base in enumerate(word):
                net[0].weight[c, "ACGT".index(base), j] = 1.0
        net[0].weight[2] = -1.0
        net[0].bias.zero_()
    return net.eval()


SEQS = ["ACGTTACGATTA", "CGTTTTTTTTAC", "GGGGCCCCAAAA", "TACGTAGCTTAG", "CCCCCCCCCCCG", "ATTAACGGTTAT"]


def _revcomp(seq: str) -> str:
    return seq.translate(str.maketrans("ACGT", "TGCA"))[::-1]


def _activation(seq: str, word: str, p: int) -> int:
    """Matches of the window of position p (columns p - 1 .. p + 1; outside the sequence counts nothing)."""
    return sum(0 <= p - 1 + j < len(seq) and seq[p - 1 + j] == word[j] for j in range(3))


def _expected(strings: list[str], word: str, fraction: float) -> tuple[int, float, int, np.ndarray]:
    """Maximum, threshold, number of sites and PPM of a filter counting ``word``, from the strings."""
    acts = [[_activation(s, word, p) for p in range(len(s))] for s in strings]
    top = max(max(a) for a in acts)
    threshold = fraction * top
    counts = np.zeros((4, 3))
    n = 0
    for s, a in zip(strings, acts):
        for p, value in enumerate(a):
            if value > threshold:
                n += 1
                for j in range(3):
                    if 0 <= p - 1 + j < len(s):
                        counts["ACGT".index(s[p - 1 + j]), j] += 1
    totals = counts.sum(axis=0)
    return top, threshold, n, np.where(totals > 0, counts / np.where(totals > 0, totals, 1), 0.25)


@pytest.fixture(scope="module")
def tiny_model():
    return interpkit.load(tiny(), backend="torch", layout="NCL", length=L_TINY)


@pytest.fixture(scope="module")
def tiny_X():
    return one_hot_encode(SEQS)


@pytest.fixture(scope="module")
def tiny_result(tiny_model, tiny_X):
    return interpkit.run("filter_motifs", tiny_model, tiny_X, motif_db="none")


@pytest.mark.parametrize("fraction", [0.5, 0.9])
@pytest.mark.parametrize("both", [True, False])
def test_tiny_closed_form(tiny_model, tiny_X, fraction, both):
    res = filter_motifs(tiny_model, tiny_X, threshold=fraction, both_strands=both, motif_db="none")
    a = res.arrays
    strings = SEQS + [_revcomp(s) for s in SEQS] if both else SEQS
    assert res.params["layer"] == res.layer == "1"
    assert res.provenance["layer"]["kind"] == "activation" and res.receptive_field == 3
    for c, word in enumerate(WORDS):
        top, threshold, n, ppm = _expected(strings, word, fraction)
        assert top == 3  # each word occurs
        assert a["max_activation"][c] == top and a["thresholds"][c] == pytest.approx(threshold, abs=1e-6)
        assert a["n_sites"][c] == n, (word, fraction, both)
        np.testing.assert_allclose(a["ppms"][c], ppm, atol=1e-12)
        np.testing.assert_allclose(a["counts"][c].sum(axis=0).max(), n)  # full columns hold every site
    if fraction == 0.9:  # only exact occurrences pass 2.7: the PPM is the word
        for c, word in enumerate(WORDS):
            np.testing.assert_array_equal(a["ppms"][c], one_hot_encode(word)[0])
            assert a["information_content"][c] == pytest.approx(6.0)  # 3 certain columns, 2 bits each
    # filter 2 never fires: maximum 0, threshold 0, no site, uniform PPM, no motif, a warning
    assert a["max_activation"][2] == 0 and a["n_sites"][2] == 0 and (a["ppms"][2] == 0.25).all()
    assert [m.id for m in res.motifs] == ["filter0", "filter1"]
    assert res.motifs[0].nsites == a["n_sites"][0]
    row = res.tables["filters"].records()[2]
    assert row["consensus"] == "" and row["motif"] == "" and row["information_content"] == 0
    assert any("1 of 3 filter(s) have no site" in w and "filter2" in w for w in res.warnings)


def test_tiny_sites_with_padding(tiny_result):
    # "CGTTTTTTTTAC": position 0 sees (pad, C, G): 2 matches to ACG > 1.5, a site whose first column is padding
    counts = tiny_result.arrays["counts"][0]
    assert counts[:, 0].sum() < counts[:, 1].sum() == tiny_result.arrays["n_sites"][0]


def test_invariant_to_batch_size_chunks_and_layer_index(tiny_model, tiny_X, tiny_result, monkeypatch):
    monkeypatch.setattr(am, "SCAN_BYTES", 1)  # one row per chunk: the running threshold prunes across chunks
    res = interpkit.run("filter_motifs", tiny_model, tiny_X, motif_db="none", batch_size=1, layer="1")
    for key, value in tiny_result.arrays.items():
        np.testing.assert_array_equal(res.arrays[key], value, err_msg=key)
    assert res.params["layer"] == tiny_result.params["layer"]


def test_find_sites_chunks_equal_one_pass(tiny_model, tiny_X, monkeypatch):
    rows = am.strand_rows(tiny_X, both_strands=True)
    layer = am.find_activation_layer(tiny_model.layers())
    whole = am.find_sites(tiny_model, rows, layer.name, channels=layer.channels, fraction=0.3)
    A = tiny_model.activations(rows, layer.name)
    r, c, p = np.nonzero(A > 0.3 * A.max(axis=(0, 2))[None, :, None])
    order = np.lexsort((p, r, c))
    np.testing.assert_array_equal(whole.site_row, r[order])
    np.testing.assert_array_equal(whole.site_channel, c[order])
    np.testing.assert_array_equal(whole.site_position, p[order])
    monkeypatch.setattr(am, "SCAN_BYTES", 1)
    chunked = am.find_sites(tiny_model, rows, layer.name, channels=layer.channels, fraction=0.3)
    for field in ("site_row", "site_channel", "site_position", "thresholds", "row_max"):
        np.testing.assert_array_equal(getattr(chunked, field), getattr(whole, field))


def test_first_conv_chain_and_explain_hook(tiny_model):
    assert am.first_conv_chain(tiny_model.layers()) == 1  # the ReLU after the convolution
    assert explain_options(tiny_model, None) == {}
    dense = interpkit.load(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * L_TINY, 1)).eval(),
                           backend="torch", layout="NCL", length=L_TINY)
    assert explain_options(dense, None) == "no convolution layer in the layer table"
    spec = interpkit.get_registry().methods["filter_motifs"]
    assert spec.explain_order == 20 and spec.explain == "interpkit_filter_motifs.explain:explain_options"
    assert {str(c) for c in spec.requires} == {"predict", "layers"}


# -- planted CTCF -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ctcf() -> Motif:
    return fetch_jaspar(release="JASPAR2020", ids=["MA0139.1"])[0]


@pytest.fixture(scope="module")
def planted(ctcf):
    """Filter 0 = CTCF's log-odds (pseudocount 0.1), filters 1-3 random; 300 random 100-bp sequences, each
    with one CTCF site sampled from its PPM at a random position."""
    rng = np.random.default_rng(0)
    width = ctcf.width
    net = torch.nn.Sequential(torch.nn.Conv1d(4, 4, width), torch.nn.ReLU(), torch.nn.AdaptiveMaxPool1d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(rng.normal(0, 0.5, size=(4, 4, width)), dtype=torch.float32))
        net[0].weight[0] = torch.tensor(ppm_to_pwm(ctcf.ppm, pseudocount=0.1), dtype=torch.float32)
        net[0].bias.zero_()
    n, length = 300, 100
    bases = rng.integers(0, 4, size=(n, length))
    for i in range(n):
        start = rng.integers(0, length - width + 1)
        bases[i, start:start + width] = [rng.choice(4, p=ctcf.ppm[:, j]) for j in range(width)]
    X = np.eye(4, dtype=np.float32)[bases].transpose(0, 2, 1).copy()
    model = interpkit.load(net.eval(), backend="torch", layout="NCL", length=length)
    return interpkit.run("filter_motifs", model, X, top=2)


def test_planted_ctcf_is_recovered(planted, ctcf):
    ppm = planted.arrays["ppms"][0]
    r = np.corrcoef(ppm.ravel(), ctcf.ppm.ravel())[0, 1]
    assert r > 0.9, r  # measured 0.98
    assert planted.arrays["n_sites"][0] >= 250  # most of the 300 planted sites pass half the maximum
    row = planted.tables["filters"].records()[0]
    assert row["match_id"].startswith("MA0139") and row["match_name"] == "CTCF" and row["q_value"] < 1e-3, row
    assert planted.motifs[0].id == "filter0" and planted.motifs[0].name == "CTCF"
    assert planted.top_filters(1) == [0]
    html = planted.report_section()
    assert html.count("<img") == 2 and "MA0139.1 CTCF" in html


def test_report_aligns_the_match_as_tomtom_does(ctcf):
    from interpkit.tomtom import tomtom

    query = Motif("cut", ctcf.ppm[:, 3:15])  # CTCF's columns 3..14: Tomtom's offset is 3
    hits = tomtom([query], fetch_jaspar(release="JASPAR2020"))
    best = hits.records()[0]
    assert best["Target_ID"] == "MA0139.1" and best["Optimal_offset"] == 3 and best["Orientation"] == "+"
    q, t = _aligned(query.ppm, ctcf.ppm, best["Optimal_offset"])
    np.testing.assert_array_equal(q[:, 3:15], t[:, 3:15])  # the query sits over the columns it came from
    assert q.shape == t.shape == (4, 19) and (q[:, :3] == 0.25).all()
    q, t = _aligned(ctcf.ppm, query.ppm, -3)  # the other way round
    np.testing.assert_array_equal(q[:, 3:15], t[:, 3:15])


# -- the real ExplaiNN checkpoint ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def explainn(shared):
    return interpkit.load(shared / CKPT / "model_epoch_best_4.pth", arch="explainn", output_names=OUTPUTS)


@pytest.fixture(scope="module")
def tap73(shared):
    return read_sequences(shared / "data" / "peaks" / "TAp73alpha.fa")


@pytest.fixture(scope="module")
def real(explainn, tap73):
    """1,000 TAp73alpha peaks, both strands, annotated against JASPAR2020 CORE vertebrates (4 logos drawn)."""
    return interpkit.run("filter_motifs", explainn, tap73[1], top=4)


def test_real_filters_are_the_unit_importance_units(real, explainn, tap73):
    units = interpkit.run("unit_importance", explainn, tap73[1], motif_db="none")
    assert real.params["layer"] == units.params["activation_layer"] == "linears.2"
    assert real.arrays["ppms"].shape == (100, 4, 19) and real.receptive_field == 19
    np.testing.assert_array_equal(real.arrays["thresholds"], units.arrays["thresholds"])
    np.testing.assert_array_equal(real.arrays["n_sites"], units.arrays["n_sites"])
    np.testing.assert_array_equal(real.arrays["counts"], units.arrays["counts"])
    np.testing.assert_array_equal(real.arrays["ppms"], units.arrays["ppms"])


_FAMILIES = {  # research/explainn.md 8.3: the top-weighted units of MAX, FOXA1 and JUND
    70: (r"^(MYC|MYCN|MAX|MNT|MXI1|MLX|USF|TFE|MITF|SREBF|BHLHE4|HEY|NPAS|ARNT|CLOCK)", r"CACGTG"),
    15: (r"^FOX", r"T[GA]TT[TG]AC|GT[CA]AA[CT]A"),
    8: (r"^(JUN|FOS|ATF|BATF|JDP2|BACH|NFE2|MAF)", r"TGA.TCA"),
}


@pytest.mark.parametrize("unit", sorted(_FAMILIES))
def test_real_known_filters_are_annotated(real, unit):
    family, site = _FAMILIES[unit]
    row = real.tables["filters"].records()[unit]
    assert re.match(family, row["match_name"], re.IGNORECASE) and row["q_value"] < 0.05, row
    assert re.search(site, row["consensus"]), row


def test_real_agrees_with_the_reference_filters(real, shared):
    ref = read_meme(shared / CKPT / "reference_outputs" / "explainn_filters.meme").motifs
    r = np.array([np.corrcoef(real.arrays["ppms"][u].ravel(), ref[u].ppm.ravel())[0, 1] for u in range(100)])
    assert np.median(r) >= 0.9, np.median(r)  # the reference used other peaks; measured median 0.944
    assert real.arrays["n_sites"].min() > 0 and not real.warnings
    html = real.report_section()
    assert html.count("<img") == 4 and "MA0139.1 CTCF" in html  # filter50, CTCF, is the best annotated


def test_onnx_export_gives_the_same_filters(explainn, tap73, tmp_path):
    pytest.importorskip("onnxruntime")
    from interpkit_torch.export import to_onnx

    X = tap73[1][:100]
    onnx_model = interpkit.load(to_onnx(explainn, tmp_path / "explainn.onnx"))
    res = interpkit.run("filter_motifs", onnx_model, X, motif_db="none")
    ref = interpkit.run("filter_motifs", explainn, X, motif_db="none")
    assert res.params["layer"] != ref.params["layer"]  # ONNX names its nodes; detection finds the same layer
    np.testing.assert_array_equal(res.arrays["n_sites"], ref.arrays["n_sites"])
    np.testing.assert_array_equal(res.arrays["counts"], ref.arrays["counts"])
    np.testing.assert_allclose(res.arrays["thresholds"], ref.arrays["thresholds"], rtol=1e-5)
    np.testing.assert_allclose(res.arrays["ppms"], ref.arrays["ppms"], atol=1e-12)


# -- the TAL1/GATA simulated-data model (Keras) ---------------------------------------------------------------
def test_tal_gata_filters_match_gata(shared):
    pytest.importorskip("tf_keras")
    import tal_gata as tg

    data = tg.load_simdata(shared / tg.SIMDATA)
    model = interpkit.load(shared / tg.KERAS_JSON)
    res = interpkit.run("filter_motifs", model, data.X[:1000])
    assert res.params["layer"] == "activation_1" and res.arrays["ppms"].shape == (50, 4, 11)
    rows = res.tables["filters"].records()
    gata = [r for r in rows if re.match(r"^GATA", r["match_name"]) and r["q_value"] < 0.05]
    assert gata, [(r["filter"], r["consensus"], r["match_name"]) for r in rows if r["match_name"]]
    assert any("GATA" in r["consensus"] or "TATC" in r["consensus"] for r in gata)  # measured: filter43,
    # TTGCAGATAAG, GATA1::TAL1, q 8e-4
    # the planted TAL1 instances hold the E-box CAGATG (737 of 851 in these sequences): some filter learned it
    assert any(re.search("CAGATG|CATCTG", r["consensus"]) for r in rows)


# -- command line -----------------------------------------------------------------------------------------
def test_cli_writes_the_files(shared, tap73, tmp_path):
    names, X = tap73
    fasta = tmp_path / "peaks.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in zip(names[:60], interpkit.one_hot_decode(X[:60]))))
    out = tmp_path / "out"
    jaspar = shared / "data" / "jaspar" / "JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt"
    status = main(["run", "filter_motifs", str(shared / CKPT / "model_epoch_best_4.pth"), "--arch", "explainn",
                   "-s", str(fasta), "-o", str(out), "--motif-db", str(jaspar), "--threshold", "0.6", "--top", "3",
                   "--no-both-strands"])
    assert status == 0
    filters = Table.read_tsv(out / "filter_motifs_filters.tsv").records()
    assert len(filters) == 100
    with np.load(out / "filter_motifs.npz") as f:
        assert f["ppms"].shape == (100, 4, 19) and f["n_sites"].shape == (100,)
        np.testing.assert_allclose(f["thresholds"], np.float32(0.6) * f["max_activation"], rtol=1e-6)
        assert [int(r["n_sites"]) for r in filters] == f["n_sites"].tolist()
        motifs = read_meme(out / "filter_motifs.meme").motifs
        assert [m.id for m in motifs] == [f"filter{c}" for c in np.flatnonzero(f["n_sites"])]
        np.testing.assert_allclose(motifs[0].ppm, f["ppms"][int(motifs[0].id[6:])], atol=1e-5)
    tomtom = Table.read_tsv(out / "filter_motifs_tomtom.tsv")
    assert len(tomtom) and set(tomtom.column("Query_ID")) <= {m.id for m in motifs}
    assert main(["run", "filter_motifs", "--help"]) == 0


# -- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "error", "match"), [
    ({"layer": "nope"}, InputError, r"layer == 'nope': no layer named 'nope'"),
    ({"layer": 3}, InputError, r"layer '3' \(flatten\) sees the whole input.*pass layer= \(--layer\)"),
    ({"layer": 99}, InputError, r"layer == 99: layer index 99 is out of range"),
    ({"threshold": 1.5}, InputError, r"threshold == 1.5, must be <= 1"),
    ({"top": 0}, InputError, r"top == 0, must be >= 1"),
    ({"motif_db": "/no/such.meme"}, MissingFileError, r"motif_db /no/such.meme is not a file"),
    ({"motif_db": "jaspar", "jaspar_release": "JASPAR1999"}, InputError, r"release == 'JASPAR1999' is not shipped"),
])
def test_errors(tiny_model, tiny_X, options, error, match):
    options = {"motif_db": "none", **options}
    with pytest.raises(error, match=match):
        interpkit.run("filter_motifs", tiny_model, tiny_X, **options)
    with pytest.raises(error, match=match):
        filter_motifs(tiny_model, tiny_X, **options)


def test_errors_of_the_model_and_data(tiny_model, tiny_X):
    dense = interpkit.load(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * L_TINY, 1)).eval(),
                           backend="torch", layout="NCL", length=L_TINY)
    with pytest.raises(InputError, match=r"has no convolution.*pass layer= \(--layer\)"):
        filter_motifs(dense, tiny_X, motif_db="none")
    with pytest.raises(InputError, match="X"):
        filter_motifs(tiny_model, np.zeros((2, L_TINY, 4), dtype=np.float32))
    with pytest.raises(InputError, match="X"):
        filter_motifs(tiny_model, one_hot_encode(["ACGT"]))  # not the model's length
    from toy_models import SumModel

    with pytest.raises(CapabilityError, match="filter_motifs needs layers"):
        filter_motifs(SumModel(), tiny_X)
