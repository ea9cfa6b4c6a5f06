"""The ``gia`` method: closed forms on the PWM model, a planted motif, the real ExplaiNN, twins, nulls, padding, CLI.

Oracles: the sum-reduction PWM model is additive over positions, so the global importance of any
intervention has a closed form in the null's position-specific frequencies (written here with plain loops);
a CNN trained in the test must rank its planted 6-mer first; ExplaiNN (MAX, FOXA1, JUND) must prefer the
E-box, the forkhead site and the AP-1 site; the three twin backends must agree.
"""

from __future__ import annotations

import dataclasses
import itertools
import re

import numpy as np
import pytest
import twins
from interpkit_gia.experiments import gc_bias, multiple_copies, occlusion, spacing
from interpkit_gia.gia import EXPERIMENTS, gia, robustness
from interpkit_gia.interventions import global_importance
from interpkit_gia.kmers import all_kmers, global_ism, kmer_alignment_motif, kmer_scan
from interpkit_gia.nulls import filter_null, make_null, position_profile, sequence_body, stem_loop
from interpkit_gia.patterns import Intervention, Placement, parse_interventions, parse_pattern
from interpkit_numpy.pwm_scan import PWMScanModel
from toy_models import revcomp, window_scores

import interpkit
from interpkit import InputError, InputSpec, InputTypeError, Predictor
from interpkit.cli import main
from interpkit.motifs import Motif
from interpkit.plugins import get_registry
from interpkit.testing import METHOD_CHECKS, random_one_hot
from interpkit.validation import check_one_hot

RNG = np.random.default_rng(5)
PWM6 = RNG.normal(size=(4, 6))
PWM4 = RNG.normal(size=(4, 4))
BASES = "ACGT"


def sum_model() -> PWMScanModel:
    return PWMScanModel([PWM6, PWM4], ["m6", "m4"], reduction="sum")


def position_terms(pwm: np.ndarray, length: int) -> np.ndarray:
    """g[q, b]: what base b at position q adds to the sum model's output (every window covering q), by loops."""
    w = pwm.shape[1]
    g = np.zeros((length, 4))
    for i in range(length - w + 1):
        for j in range(w):
            for b in range(4):
                g[i + j, b] += pwm[b, j]
    return g


def expected_embedding(pwm: np.ndarray, probs: np.ndarray, start: int, profile: np.ndarray) -> float:
    """Closed form of the global importance of a pattern (column probabilities ``probs`` (4, w)) at ``start``
    on backgrounds drawn from ``profile`` (4, L): sum over the span of E[g(new base)] - E[g(old base)]."""
    g = position_terms(pwm, profile.shape[1])
    return sum(float(probs[:, j] @ g[start + j] - profile[:, start + j] @ g[start + j]) for j in range(probs.shape[1]))


def word_probs(word: str) -> np.ndarray:
    return np.eye(4)[[BASES.index(c) for c in word]].T


def observed_profile(X: np.ndarray) -> np.ndarray:
    """Base frequencies per position of N-free sequences, by counting."""
    return X.sum(axis=0) / len(X)


# -- the analytic PWM-scanning model -------------------------------------------------------------------
def test_global_importance_equals_the_closed_form_on_the_sum_pwm_model():
    model = sum_model()
    X = random_one_hot(300, 30, random_state=1)
    X[:, :, 10:14] = word_probs("GGGG")  # a position-specific bias the profile null must reproduce
    profile = observed_profile(X)
    rows = parse_interventions("ACGTAC@8,ACGTAC@12,RYSWKM@3", length=30)
    result = gia(model, X, experiment="embed", pattern=rows, null="profile", n_backgrounds=3000, random_state=3)
    gi, se = result.arrays["global_importance"][0], result.arrays["standard_error"][0]
    assert gi.shape == (3, 2) and result.arrays["local_importance"].shape == (1, 3, 3000, 2)
    iupac = np.array([[1, 0, 0, 1, 0, 1], [0, 1, 1, 0, 0, 1], [1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 1, 0]]) / 2.0
    for t, pwm in enumerate((PWM6, PWM4)):
        expected = [expected_embedding(pwm, word_probs("ACGTAC"), 8, profile),
                    expected_embedding(pwm, word_probs("ACGTAC"), 12, profile),
                    expected_embedding(pwm, iupac, 3, profile)]
        for r in range(3):
            assert 0 < se[r, t] < 0.2
            assert abs(gi[r, t] - expected[r]) < 4 * se[r, t], (r, t, gi[r, t], expected[r])
    # Backgrounds used as given: every local importance is exact, not only the mean.
    exact = gia(model, X[:20], experiment="embed", pattern="ACGTAC@8", null="given")
    g = position_terms(PWM6, 30)
    for n in range(20):
        old = X[n].argmax(axis=0)
        oracle = sum(g[8 + j, BASES.index(c)] - g[8 + j, old[8 + j]] for j, c in enumerate("ACGTAC"))
        assert exact.arrays["local_importance"][0, 0, n, 0] == pytest.approx(oracle, abs=1e-4)


def test_sampled_patterns_random_positions_and_strands_match_their_expectations():
    model = sum_model()
    X = random_one_hot(400, 24, random_state=2)
    profile = observed_profile(X)
    ppm = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7], [0.2, 0.6, 0.1, 0.1]]).T  # (4, 3)
    motif = Motif("toy", ppm)
    rows = [[(motif, 5)], [("ACGTAC", "random")], [("AAGTCC", 9)]]
    result = gia(model, X, experiment="embed", pattern=rows, n_backgrounds=4000, strand="random", random_state=4)
    gi, se = result.arrays["global_importance"][0, :, 0], result.arrays["standard_error"][0, :, 0]
    both = lambda probs, start: 0.5 * (expected_embedding(PWM6, probs, start, profile)
                                       + expected_embedding(PWM6, probs[::-1, ::-1], start, profile))
    expected = [both(ppm, 5), np.mean([both(word_probs("ACGTAC"), s) for s in range(24 - 6 + 1)]),
                both(word_probs("AAGTCC"), 9)]
    for r in range(3):
        assert abs(gi[r] - expected[r]) < 4 * se[r], (r, gi[r], expected[r])
    # The two strands really differ for this pattern, so "random" is not secretly "+".
    plus = expected_embedding(PWM6, word_probs("AAGTCC"), 9, profile)
    assert abs(plus - expected[2]) > 8 * se[2]


def test_sum_model_is_additive_with_no_spacing_dependence_beyond_overlap():
    model = sum_model()
    X = random_one_hot(200, 60, random_state=5)
    copies = multiple_copies(model, make_null(X, n=500), "ACGTAC", positions=[10, 25, 40])
    np.testing.assert_allclose(copies.extras["interaction"], 0, atol=1e-4)
    np.testing.assert_allclose(copies.extras["observed"], copies.extras["expected"], atol=1e-4)
    assert np.all(np.abs(copies.extras["observed"][:, 0]) > 0.1)
    gaps = spacing(model, make_null(X, n=500), "ACGTAC", "TTGCA", position=20, spacings=range(-3, 12))
    inter = gaps.extras["interaction"]
    apart = gaps.extras["spacings"] >= 0
    np.testing.assert_allclose(inter[apart], 0, atol=1e-4)  # additive however close, as long as apart
    assert np.all(np.abs(inter[~apart]).max(axis=1) > 0.05)  # overlapping: B overwrites the end of A
    # The max-reduction model is not additive: a second copy of its best word adds nothing.
    word = "".join(BASES[i] for i in PWM6.argmax(axis=0))
    best = PWMScanModel([PWM6], ["m6"], reduction="max")
    two = multiple_copies(best, make_null(X, n=500), word, positions=[10, 40])
    assert two.extras["interaction"][1, 0] < -10 * two.extras["interaction_se"][1, 0]


def test_global_ism_and_kmer_scan_on_the_sum_model():
    model = PWMScanModel([PWM4], ["m4"], reduction="sum")
    X = random_one_hot(100, 20, random_state=6)
    null = make_null(X, "given")
    ism = global_ism(model, null, "ACGT", position=8)
    g = position_terms(PWM4, 20)
    for j, wt in enumerate("ACGT"):
        for b in range(4):
            # Additive model: the mutant's effect differs from the wild type's by g only, whatever the background.
            assert ism.extras["ism"][b, j, 0] == pytest.approx(g[8 + j, b] - g[8 + j, BASES.index(wt)], abs=1e-4)
    assert ism.extras["ism_l2"][:, 0] == pytest.approx(np.sqrt((ism.extras["ism"][..., 0] ** 2).sum(axis=0)))
    scan = kmer_scan(model, null, k=3, position=8, top=5)
    best = "".join(BASES[b] for b in g[8:11].argmax(axis=1))  # the best 3-mer there maximises g position by position
    assert scan.rows == tuple(all_kmers(3)) and scan.rows[scan.extras["top_index"][0, 0]] == best
    assert scan.tables["top_kmers"].rows[0][2] == best and scan.local_importance is None
    order = np.argsort(-scan.global_importance[:, 0], kind="stable")[:5]
    np.testing.assert_array_equal(scan.extras["top_index"][:, 0], order)
    np.testing.assert_allclose(scan.extras["top_local"][:, :, 0].mean(axis=1), scan.global_importance[order, 0],
                               atol=1e-5)


def test_kmer_alignment_motif_by_hand():
    # CACGTG first; ACGTGA sits one to the right, TCACGT one to the left; GGGGGG scores <= 0 and gets no weight.
    motif = kmer_alignment_motif(["ACGTGA", "CACGTG", "TCACGT", "GGGGGG"], [1.0, 2.0, 1.0, -1.0], pseudocount=0.0,
                                 min_coverage=0.5)
    assert motif.nsites == 3 and motif.consensus() == "CACGTG"
    # Columns of CACGTG are covered by weight 4 (all three) or 3; flanks by 1 of 4 -> trimmed.
    expected = word_probs("CACGTG")
    np.testing.assert_allclose(motif.ppm, expected)
    wide = kmer_alignment_motif(["ACGTGA", "CACGTG", "TCACGT"], [1.0, 2.0, 1.0], pseudocount=0.0, min_coverage=0.25)
    assert wide.consensus() == "TCACGTGA" and wide.ppm.shape == (4, 8)
    # Reverse complements are aligned on the strand that fits.
    rc = kmer_alignment_motif(["GATTAC", revcomp("GATTAA")], [2.0, 1.0], reverse_complement=True, pseudocount=0.0)
    np.testing.assert_allclose(rc.ppm[:, :5], word_probs("GATTA"))
    np.testing.assert_allclose(rc.ppm[:, 5], [1 / 3, 2 / 3, 0, 0])
    forward = kmer_alignment_motif(["GATTAC", revcomp("GATTAA")], [2.0, 1.0], pseudocount=0.0, min_coverage=0.1)
    assert forward.ppm.shape[1] > 6  # on one strand the partner only fits shifted
    smooth = kmer_alignment_motif(["CACGTG"], [1.0])
    assert smooth.ppm.max() == pytest.approx(1.025 / 1.1)


# -- a model trained on a planted motif ----------------------------------------------------------------
def test_kmer_scan_recovers_a_planted_motif_in_a_trained_cnn(shared):
    import torch
    from torch import nn

    from interpkit.meme import read_meme
    from interpkit.tomtom import tomtom

    planted, length, n = "GATAAG", 50, 4000  # the GATA core (JASPAR MA0482 GATA4 and relatives)
    rng = np.random.default_rng(0)
    X = random_one_hot(n, length, random_state=3)
    y = (np.arange(n) % 2).astype(np.float32)
    starts = rng.integers(0, length - 6 + 1, size=n)
    for i in np.flatnonzero(y):
        X[i, :, starts[i]:starts[i] + 6] = word_probs(planted)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(4, 16, 6), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)[:, None]
    for _ in range(300):  # about 2 s on two CPU cores
        idx = torch.from_numpy(rng.integers(0, n, 128))
        loss = nn.functional.binary_cross_entropy_with_logits(net(Xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    result = gia(interpkit.load(net.eval()), X[y == 0], experiment="kmer-scan", n_backgrounds=100)
    assert result.tables["top_kmers"].rows[0][3] == planted
    assert result.rows[result.arrays["top_index"][0, 0, 0]] == planted
    (motif,) = result.motifs
    assert motif.consensus() == planted
    jaspar = list(read_meme(shared / "data" / "jaspar" / "JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt")
                  .motifs)
    hits = tomtom([motif], [*jaspar, Motif("planted", word_probs(planted))], thresh=0.01)
    assert "planted" in hits.column("Target_ID")
    assert hits.rows[0][hits.columns.index("Target_name")].upper().startswith("GATA")
    # The global ISM of the top k-mer: every single mutant scores below the planted word.
    assert np.all(result.arrays["ism"][0, :, :, 0] <= 1e-6) and np.all(result.arrays["ism_l2"][0, :, 0] > 0)


# -- the real ExplaiNN checkpoint on real peaks --------------------------------------------------------
def test_explainn_prefers_each_factor_s_own_site_on_real_peaks(shared):
    model = interpkit.load(shared / "checkpoints" / "explainn_tf_binding" / "model_epoch_best_4.pth", arch="explainn")
    _names, X = interpkit.read_sequences(shared / "data" / "peaks" / "TAp73alpha.fa", length=200)
    for null in ("dinuc", "profile"):
        result = gia(model, X, experiment="embed", pattern="CACGTG,TGTTTAC,TGACTCA", null=null, n_backgrounds=300)
        gi = result.arrays["global_importance"][0]  # rows: E-box, forkhead, AP-1; columns: MAX, FOXA1, JUND
        np.testing.assert_array_equal(gi.argmax(axis=0), [0, 1, 2])  # each output's largest is its own site
        np.testing.assert_array_equal(gi.argmax(axis=1), [0, 1, 2])  # each site raises its own factor most
        assert np.all(np.diag(gi) > 1.0) and np.all(np.diag(gi) > 10 * np.diag(result.arrays["standard_error"][0]))


# -- backends -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def three_backends(tmp_path_factory):
    """The twin network as PyTorch, Keras and ONNX models (same weights)."""
    net = twins.torch_twin()
    sources = {"torch": net, "keras": twins.keras_twin(net),
               "onnx": twins.onnx_twin(net, tmp_path_factory.mktemp("gia_twins") / "twin.onnx")}
    return {name: interpkit.load(source) for name, source in sources.items()}


def test_gia_agrees_across_twin_backends(three_backends):
    X = random_one_hot(60, twins.LENGTH, random_state=7)
    ppm = np.full((4, 5), 0.1) + 0.6 * word_probs("TGACT")
    runs = [{"experiment": "embed", "pattern": [[(ppm, "random")], [("CACGTG", 40), ("TTRYAA", 60)]], "strand": "random",
                 "null": "dinuc,profile", "n_backgrounds": 80},
            {"experiment": "kmer-scan", "kmer_size": 3, "null": "shuffle", "n_backgrounds": 40, "top": 4}]
    for options in runs:
        results = {name: gia(m, X, random_state=11, **options) for name, m in three_backends.items()}
        ref = results["torch"].arrays
        local = ref["local_importance" if "local_importance" in ref else "top_local"]
        scale = np.nanmax(np.abs(local))  # the size of the effects; means of them are compared on this scale
        assert scale > 1e-2
        for name in ("keras", "onnx"):
            arrays = results[name].arrays
            assert set(arrays) == set(ref)
            np.testing.assert_array_equal(arrays["backgrounds"], ref["backgrounds"])
            for key in ("global_importance", "standard_error", "local_importance", "top_local"):
                if key in ref:
                    assert np.nanmax(np.abs(arrays[key] - ref[key])) <= 1e-4 * scale, (name, key)
            y = ref["null_predictions"]
            assert np.nanmax(np.abs(arrays["null_predictions"] - y)) <= 1e-4 * np.nanmax(np.abs(y))
            if "top_index" in ref:
                np.testing.assert_array_equal(arrays["top_index"][..., :1], ref["top_index"][..., :1])


def test_method_checks_with_cheap_defaults():
    registry = get_registry()
    spec = registry.methods["gia"]
    cheap = {"kmer_size": 2, "n_backgrounds": 15}
    params = tuple(dataclasses.replace(p, default=cheap.get(p.name, p.default)) for p in spec.params)
    local = dataclasses.replace(registry, methods={**registry.methods, "gia": dataclasses.replace(spec, params=params)})
    model = PWMScanModel([PWM6, PWM4], ["m6", "m4"])
    for check in METHOD_CHECKS:
        check("gia", model, random_one_hot(5, 14, random_state=8), local)
    assert spec.params[0].choices == EXPERIMENTS


def test_seed_batch_size_and_null_independence():
    model = sum_model()
    X = random_one_hot(50, 20, random_state=9)
    kw = {"experiment": "embed", "pattern": "ACGTAC@random,RYRYRY@4", "n_backgrounds": 60}
    a, b = gia(model, X, **kw), gia(model, X, batch_size=7, **kw)
    c = gia(model, X, random_state=1, **kw)
    np.testing.assert_array_equal(a.arrays["local_importance"], b.arrays["local_importance"])
    assert not np.allclose(a.arrays["local_importance"], c.arrays["local_importance"])
    # A null's draws do not depend on which other nulls run beside it.
    both = gia(model, X, null="dinuc,profile", **kw)
    np.testing.assert_array_equal(both.arrays["local_importance"][1], a.arrays["local_importance"][0])
    assert both.nulls == ("dinuc", "profile") and both.arrays["global_importance"].shape == (2, 2, 2)


# -- nulls --------------------------------------------------------------------------------------------
def _padded(n: int, length: int, seed: int) -> np.ndarray:
    """Random sequences centre-padded with N to varying lengths (as RNAcompete probes)."""
    X = random_one_hot(n, length, random_state=seed)
    rng = np.random.default_rng(seed)
    for i in range(n):
        left, right = rng.integers(0, 6, size=2)
        X[i, :, :left] = 0
        X[i, :, length - right:] = 0
    return X


def _dinucleotides(x: np.ndarray) -> dict[str, int]:
    s = "".join(BASES[c.argmax()] if c.any() else "N" for c in x.T)
    counts: dict[str, int] = {}
    for a, b in itertools.pairwise(s):
        counts[a + b] = counts.get(a + b, 0) + 1
    return counts


def test_shuffle_nulls_keep_composition_and_padding():
    X = _padded(40, 30, 10)
    dinuc = make_null(X, "dinuc", n=100, random_state=1)
    assert len(dinuc) == 100 and set(dinuc.source) == set(range(40))  # cycles through every sequence
    changed = 0
    for x, i in zip(dinuc.one_hot, dinuc.source):
        assert _dinucleotides(x) == _dinucleotides(X[i])  # counted by string, not by interpkit
        assert (x.any(axis=0) == X[i].any(axis=0)).all()  # padding stays where it was
        changed += not np.array_equal(x, X[i])
    assert changed > 90
    mono = make_null(X, "shuffle", n=40, random_state=1)
    for x, i in zip(mono.one_hot, mono.source):
        np.testing.assert_array_equal(x.sum(axis=1), X[i].sum(axis=1))
        assert (x.any(axis=0) == X[i].any(axis=0)).all()


def test_profile_observed_quantile_given_and_filter():
    X = random_one_hot(400, 12, random_state=11)
    X[:, :, 3] = word_probs("G")[:, 0]  # always G at 3
    X[:200, :, 5] = word_probs("A")[:, 0]
    prof = make_null(X, "profile", n=5000, random_state=2)
    freq = prof.one_hot.mean(axis=0)
    np.testing.assert_array_equal(freq[:, 3], [0, 0, 1, 0])
    assert abs(freq[0, 5] - (0.5 + 0.5 * observed_profile(X[200:])[0, 5])) < 0.03
    np.testing.assert_allclose(freq, observed_profile(X), atol=0.03)
    np.testing.assert_allclose(position_profile(X), observed_profile(X))
    obs = make_null(X, "observed", n=50)
    np.testing.assert_array_equal(obs.one_hot, X[obs.source])
    assert len(set(obs.source)) == 50
    scores = np.arange(400.0)
    top = make_null(X, "quantile1", n=1000, scores=scores)  # the highest quarter: indices 300..399
    assert sorted(top.source) == list(range(300, 400))
    np.testing.assert_array_equal(top.one_hot, X[top.source])
    tenth = make_null(X, "quantile10/10", n=1000, scores=scores)
    assert sorted(tenth.source) == list(range(40))
    given = make_null(X, "given")
    np.testing.assert_array_equal(given.one_hot, X)
    kept = filter_null(given, scores, low=10, high=90)
    assert kept.source.min() > 39.9 and kept.source.max() < 359.1 and len(kept) == 320


def test_stem_loop_backgrounds_pair_and_stay_paired_after_embedding():
    X = random_one_hot(30, 41, random_state=12)
    null = stem_loop(make_null(X, "given"), (8, 24, 9))
    for x in null.one_hot:
        s = "".join(BASES[c] for c in x.argmax(axis=0))
        assert s[24:33] == revcomp(s[8:17])
    seen = Recorder(sum_model())
    global_importance(seen, null, [Intervention((Placement(parse_pattern("ACGTA"), 10),))])
    for x in seen.inputs[-1]:
        s = "".join(BASES[c] for c in x.argmax(axis=0))
        assert s[10:15] == "ACGTA" and s[24:33] == revcomp(s[8:17])


# -- padding ------------------------------------------------------------------------------------------
class Recorder(Predictor):
    """Predicts with another model and keeps every batch it was given."""

    def __init__(self, inner: Predictor) -> None:
        self.inner, self.inputs = inner, []

    @property
    def input_spec(self) -> InputSpec:
        return self.inner.input_spec

    @property
    def output_names(self):
        return self.inner.output_names

    def predict(self, X, *, batch_size=None):
        self.inputs.append(np.array(X))
        return self.inner.predict(X, batch_size=batch_size)


class NCount(Predictor):
    """Outputs the number of N (all-zero) columns and the number of G or C bases."""

    input_spec = InputSpec()
    output_names = ("n_columns", "gc")

    def predict(self, X, *, batch_size=None):
        X = check_one_hot(X)
        return np.stack([(X.sum(axis=1) == 0).sum(axis=1), X[:, 1:3].sum(axis=(1, 2))], axis=1).astype(np.float32)


def test_no_pattern_writes_into_padding():
    X = _padded(60, 30, 13)
    lo, hi = sequence_body(X)
    model = Recorder(NCount())
    rows = "GCGCGC@0,GCGCGC@12,GGGG@random,GCGCGC@24"
    result = gia(model, X, experiment="embed", pattern=rows, null="given")
    local, n = result.arrays["local_importance"][0], result.arrays["n_backgrounds"][0]
    fits = [(lo <= 0) & (5 < hi), (lo <= 12) & (17 < hi), hi - lo >= 4, (lo <= 24) & (29 < hi)]
    for r, ok in enumerate(fits):
        assert n[r] == ok.sum() > 0  # backgrounds whose body cannot hold the pattern are left out ...
        assert np.isnan(local[r, ~ok]).all() and not np.isnan(local[r, ok]).any()
        np.testing.assert_array_equal(local[r, ok, 0], 0)  # ... and no N column ever became a base
    assert np.all(local[:, :, 1][~np.isnan(local[:, :, 1])] >= 0)
    seen = np.concatenate(model.inputs[1:])  # every sequence the model was given (after the backgrounds)
    assert len(seen) == n.sum()
    assert (seen.sum(axis=1) == 0).sum() == sum(((X.sum(axis=1) == 0).sum(axis=1) * ok).sum() for ok in fits)
    # Positions past the end are an error (numpy slicing would silently cut the pattern short).
    with pytest.raises(InputError, match="runs outside"):
        gia(NCount(), X, experiment="embed", pattern="GCGCGC@25", null="given")


# -- other experiments --------------------------------------------------------------------------------
class GCEnhanced(Predictor):
    """1 for a TGACTC anywhere, times 3 when the last 6 bp are GCGCGC; the GC block alone does nothing."""

    input_spec = InputSpec()
    output_names = ("site",)

    def predict(self, X, *, batch_size=None):
        X = check_one_hot(X)
        seqs = ["".join(BASES[c] for c in x.argmax(axis=0)) for x in X]
        return np.array([[("TGACTC" in s) * (3.0 if s.endswith("GCGCGC") else 1.0)] for s in seqs], dtype=np.float32)


def test_gc_bias_detects_a_right_end_interaction():
    X = random_one_hot(200, 40, random_state=14)
    result = gc_bias(GCEnhanced(), make_null(X, "given"), "TGACTC")
    gi = result.global_importance[:, 0]
    assert result.rows == ("GC right", "motif", "motif + GC right", "motif + GC left")
    # Backgrounds that already hold the site by chance shift these a little; the pattern is unmistakable.
    assert abs(gi[0]) < 0.1 and 0.85 < gi[1] <= 1 and gi[2] > 2.6 and abs(gi[3] - gi[1]) < 0.05
    assert result.extras["relative_change"][0, 0] > 1.6 and abs(result.extras["relative_change"][1, 0]) < 0.05
    assert result.extras["p_value"][0, 0] < 1e-10 and result.tables["tests"].rows[0][1] == "motif + GC right vs motif"


def test_occlusion_of_the_given_sequences_and_position_scan():
    model = sum_model()
    X = random_one_hot(400, 30, random_state=15)
    occ = occlusion(model, make_null(X, "given"), width=5)
    assert occ.rows[0] == "occlude@0-5" and list(occ.extras["positions"]) == [0, 5, 10, 15, 20, 25]
    # Resampling from the sequences' own frequencies changes nothing on average for an additive model ...
    assert np.all(np.abs(occ.global_importance) < 4 * occ.standard_error)
    # ... but each sequence's loss is its own span's score against the average.
    g = position_terms(PWM6, 30)
    prof = observed_profile(X)
    oracle = np.array([sum(prof[:, q] @ g[q] - g[q, X[n, :, q].argmax()] for q in range(10, 15)) for n in range(400)])
    assert np.corrcoef(occ.local_importance[2, :, 0], oracle)[0, 1] > 0.6  # one draw each: ~0.7 expected
    pos = gia(model, X, experiment="position", pattern="ACGTAC", positions="0:25:8", n_backgrounds=50)
    assert pos.rows == ("ACGTAC@0", "ACGTAC@8", "ACGTAC@16", "ACGTAC@24")
    assert pos.arrays["positions"].tolist() == [[0, 8, 16, 24]]


def test_robustness_runs_every_paper_null():
    model = sum_model()
    X = random_one_hot(120, 30, random_state=16)
    result = robustness(model, X, experiment="embed", pattern="ACGTAC", n_backgrounds=100)
    assert result.nulls == ("profile", "shuffle", "dinuc", "quantile1", "quantile2", "quantile3", "quantile4")
    gi = result.arrays["global_importance"][:, 0, 0]
    assert result.arrays["null_size"].tolist() == [100, 100, 100, 30, 30, 30, 30]
    # Quartile nulls are observed sequences, so their global importance is exact: rank by the prediction
    # for m6 (highest first), take each quarter, average the additive model's change over its members.
    g, start = position_terms(PWM6, 30), 12
    order = np.argsort(-model.predict(X)[:, 0], kind="stable")
    for q in range(4):
        members = order[30 * q:30 * (q + 1)]
        oracle = np.mean([sum(g[start + j, BASES.index(c)] - g[start + j, X[n, :, start + j].argmax()]
                              for j, c in enumerate("ACGTAC")) for n in members])
        assert gi[3 + q] == pytest.approx(oracle, abs=1e-4)
    assert len({round(v, 3) for v in gi[3:]}) == 4


def test_report_section_draws_the_figures():
    model = sum_model()
    X = random_one_hot(60, 30, random_state=17)
    for options, marks in [({"experiment": "spacing", "pattern": "ACGTAC+TTT", "spacings": "0:4"}, ["spacing", "boxes"]),
                           ({"experiment": "kmer-scan", "kmer_size": 2, "top": 3}, ["top k-mers", "alignment",
                                                                               "top k-mer logo"]),
                           ({"experiment": "multiple", "pattern": "ACG"}, ["copies"])]:
        html = gia(model, X, n_backgrounds=30, **options).report_section()
        for mark in marks:
            assert re.search(rf"<img alt='{mark}[^']*' src='data:image/png;base64,", html), (options, mark)


def test_gia_cli_writes_effects(tmp_path):
    meme = tmp_path / "one.meme"
    meme.write_text("MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\nBackground letter frequencies\n"
                    "A 0.25 C 0.25 G 0.25 T 0.25\n\n"
                    "MOTIF acg ACG\nletter-probability matrix: alength= 4 w= 3\n1 0 0 0\n0 1 0 0\n0 0 1 0\n")
    seqs = ["TTTTTTTTTTTT", "GGGGACGGGGGG", "CATCATCATCAT"]
    fasta = tmp_path / "s.fa"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    out = tmp_path / "out"
    assert main(["run", "gia", str(meme), "-s", str(fasta), "-o", str(out), "--experiment", "embed",
                 "--pattern", "ACG@2,ACG@4+TTT@8", "--null", "given", "--no-verbose"]) == 0
    model = PWMScanModel.from_meme(meme)
    pwm = model.pwms[0, :, :3]
    rows = [line.split("\t") for line in (out / "gia_effects.tsv").read_text().splitlines()]
    assert rows[0] == ["null", "row", "target", "global_importance", "standard_error", "n"]
    for r, edit in enumerate([lambda s: s[:2] + "ACG" + s[5:], lambda s: s[:4] + "ACG" + s[7:8] + "TTT" + s[11:]]):
        oracle = np.mean([max(window_scores(edit(s), pwm)) - max(window_scores(s, pwm)) for s in seqs])
        assert float(rows[1 + r][3]) == pytest.approx(oracle, abs=1e-5)
    arrays = np.load(out / "gia.npz")
    assert arrays["local_importance"].shape == (1, 2, 3, 1) and arrays["backgrounds"].dtype == np.uint8
    assert main(["run", "gia", "--help"]) == 0


def test_gia_raises():
    model = sum_model()
    X = random_one_hot(10, 20, random_state=18)
    bad = {  # what: (error, options, what the message must say)
        "unknown experiment": (InputError, {"experiment": "scan"}, "experiment == 'scan', must be one of"),
        "no pattern": (InputError, {"experiment": "embed"}, "needs a pattern, e.g. pattern="),
        "bad letter": (InputError, {"experiment": "embed", "pattern": "ACGZ"}, "has 'Z', which is not a nucleotide"),
        "only N": (InputError, {"experiment": "embed", "pattern": "NNN"}, "is only N"),
        "past the end": (InputError, {"experiment": "embed", "pattern": "ACGT@17"}, "runs outside .* 0..16"),
        "bad position": (InputError, {"experiment": "embed", "pattern": "ACGT@x"}, "must be PATTERN or PATTERN@POS"),
        "unknown null": (InputError, {"null": "uniform"}, "null 'uniform' is unknown; use profile"),
        "empty quantile": (InputError, {"null": "quantile5/4"}, "bin 5 of 4 does not exist"),
        "bad strand": (InputError, {"strand": "both"}, "strand == 'both', must be one of"),
        "zero backgrounds": (InputError, {"n_backgrounds": 0}, "n_backgrounds == 0, must be >= 1"),
        "float backgrounds": (InputTypeError, {"n_backgrounds": 10.0}, "n_backgrounds must be int, got float"),
        "bad filter": (InputError, {"null_filter": "90,10"}, "low percentile must be below the high one"),
        "bad stem": (InputError, {"experiment": "stem-loop", "pattern": "ACG", "stem": "2,5,9"}, "does not fit"),
        "copies overlap": (InputError, {"experiment": "multiple", "pattern": "ACGT", "positions": "2,4"},
                           "overlap .* space the starts >= 4 bp apart"),
        "gc overlaps": (InputError, {"experiment": "gc-bias", "pattern": "ACGTACGTAC", "gc_pattern": "GCGCGC",
                                     "positions": 9}, "GC block at 14 overlaps the motif at 9"),
        "two starts": (InputError, {"experiment": "kmer-scan", "positions": "1,2", "kmer_size": 2},
                       "takes one start in positions, got 2"),
        "bad target": (InputError, {"target": "m5"}, "neither an output index nor an output name"),
        "bad scores": (InputError, {"null": "quantile1", "scores": [1.0, 2.0]}, "2 values for 10 sequences"),
        "bad spacings": (InputError, {"experiment": "spacing", "pattern": "ACG", "spacings": "a,b"},
                         "must be ints separated by ','"),
        "bad preset": (InputError, {"preset": "mine"}, "preset == 'mine', must be one of"),
    }
    for what, (error, options, message) in bad.items():
        with pytest.raises(error, match=message):
            gia(model, X, n_backgrounds=options.pop("n_backgrounds", 20), **options)
            pytest.fail(what)
    with pytest.raises(InputError, match="swap axes"):
        gia(model, X.transpose(0, 2, 1))
    with pytest.raises(InputError, match="no_such"):
        interpkit.run("gia", model, X, no_such=1)
    with pytest.raises(InputError, match="positive score"):
        kmer_alignment_motif(["ACG"], [-1.0])


def test_identical_placements_draw_identically_in_every_row():
    # Issue 5: draws are keyed by what is placed, not by the row, so an additive model has no interaction
    # in any background, even for sampled patterns, a random strand or a PPM (old code: |z| ~ 1 noise).
    model = PWMScanModel([PWM6], ["m6"], reduction="sum")
    null = make_null(random_one_hot(200, 60, random_state=5), n=300)
    ppm = np.full((4, 6), 0.1) + 0.6 * np.eye(4)[[0, 1, 2, 3, 0, 1]].T
    for strand in ("+", "random"):
        s = spacing(model, null, Motif("toy", ppm), "TTGCA", position=20, spacings=[2, 5], strand=strand)
        assert np.abs(s.extras["interaction"]).max() < 1e-5 and np.abs(s.local_importance).max() > 0.1
        m = multiple_copies(model, null, Motif("toy", ppm), positions=[5, 20, 40], strand=strand)
        assert np.abs(m.extras["interaction"]).max() < 1e-5
    # the k-mer scan's second pass re-draws the top rows exactly: their local importances average to the scan's
    scan = kmer_scan(PWMScanModel([PWM4], ["m4"], reduction="sum"), make_null(random_one_hot(100, 20, random_state=6),
                     "given"), k=3, position=8, top=5, strand="random")
    top = scan.extras["top_index"][:, 0]
    np.testing.assert_allclose(scan.extras["top_local"][:, :, 0].mean(axis=1), scan.global_importance[top, 0],
                               atol=1e-5)
    # a gap of -w_A starts B where A starts: the labels stay distinct
    same = spacing(model, null, "ACGTAC", "ACGTAC", position=20, spacings=[-6, 0])
    assert len(set(same.rows)) == len(same.rows) == 5 and same.rows[:2] == ("A: ACGTAC@20", "B: ACGTAC@20")


def test_occlusion_draws_from_a_profile_of_many_sequences():
    model = PWMScanModel([PWM6], ["m6"], reduction="sum")
    x = random_one_hot(1, 30, random_state=3)
    x[0, :, 10:16] = np.eye(4)[[0, 1, 2, 3, 0, 1]].T  # a planted 6-mer
    one = occlusion(model, make_null(x, "given"), width=6, positions=[10])
    # old code: the profile of this one sequence is the sequence itself, so the effect was exactly 0
    assert one.local_importance[0, 0, 0] != 0 and "fewer than 10" in one.warnings[-1]
    # closed form for the linear sum model: E[effect] = sum over the span of (mean base term - the sequence's term)
    g = position_terms(PWM6, 30)
    expected = sum(g[q].mean() - g[q, x[0, :, q].argmax()] for q in range(10, 16))
    many = dataclasses.replace(make_null(x, "given"), one_hot=np.repeat(x, 4000, axis=0))
    occ = occlusion(model, many, width=6, positions=[10], background="uniform")
    assert abs(expected) > 1 and abs(occ.global_importance[0, 0] - expected) < 5 * occ.standard_error[0, 0]
    prof = occlusion(model, many, width=6, positions=[10], background=np.full((4, 30), 0.25))
    np.testing.assert_array_equal(prof.local_importance, occ.local_importance)
    with pytest.raises(InputError, match="background has shape"):
        occlusion(model, many, background=np.ones((4, 7)))


def test_stem_loop_refuses_arms_in_padding():
    X = random_one_hot(2, 30, random_state=1)
    X[:, :, 25:] = 0  # right padding under the right arm (20..27)
    with pytest.raises(InputError, match="padding"):
        stem_loop(make_null(X, "given"), (2, 20, 8))
    X = random_one_hot(2, 30, random_state=1)
    X[:, :, :3] = 0  # left padding under the left arm (0..7) would put N into the right arm
    with pytest.raises(InputError, match="padding"):
        stem_loop(make_null(X, "given"), (0, 20, 8))
    fine = stem_loop(make_null(X, "given"), (3, 20, 8))
    assert sequence_body(fine.one_hot)[0].tolist() == [3, 3] and fine.one_hot[:, :, 3:].any(axis=1).all()


def test_unused_options_and_bad_null_predictions_are_refused():
    model = sum_model()
    X = random_one_hot(30, 20, random_state=1)
    with pytest.raises(InputError, match="spacings .* not used by experiment 'kmer-scan'"):
        gia(model, X, experiment="kmer-scan", spacings="0:3", kmer_size=2, n_backgrounds=10)
    with pytest.raises(InputError, match="pattern .* not used by experiment 'occlusion'"):
        gia(model, X, experiment="occlusion", pattern="ACG")
    with pytest.raises(InputError, match="null_predictions has shape"):
        global_importance(model, make_null(X, "given"), parse_interventions("ACGT@3", length=20),
                          null_predictions=np.zeros(30))


def test_gia_occlusion_of_one_sequence_is_not_zero():
    x = random_one_hot(1, 30, random_state=3)
    result = gia(PWMScanModel([PWM6], ["m6"], reduction="sum"), x, experiment="occlusion", width=6)
    assert np.abs(result.arrays["local_importance"]).max() > 0.1 and any("fewer than 10" in w for w in result.warnings)


# -- known answers of the remaining experiments -------------------------------------------------------
class StringModel(Predictor):
    """A model written as a function of the sequence string (ACGT), for experiments with a planted rule."""

    input_spec = InputSpec()
    output_names = ("out",)

    def __init__(self, rule) -> None:
        self.rule = rule

    def predict(self, X, *, batch_size=None):
        X = check_one_hot(X)
        return np.array([[self.rule("".join(BASES[c] for c in x.argmax(axis=0)))] for x in X], dtype=np.float32)


def starts_of(seq: str, word: str) -> list[int]:
    return [i for i in range(len(seq) - len(word) + 1) if seq[i:i + len(word)] == word]


def test_positional_effect_follows_a_positional_window():
    # The site counts only when it starts in 10..19: the effect is 1 there and 0 elsewhere.
    model = StringModel(lambda s: float(any(10 <= i < 20 for i in starts_of(s, "TGACTC"))))
    X = random_one_hot(300, 40, random_state=21)
    result = gia(model, X, experiment="position", pattern="TGACTC", null="given")
    gi = result.arrays["global_importance"][0, :, 0]
    inside = np.isin(np.arange(35), np.arange(10, 20))
    assert result.arrays["positions"][0].tolist() == list(range(35))
    assert np.all(gi[inside] > 0.95) and np.all(np.abs(gi[~inside]) < 0.02)


def test_spacing_interaction_peaks_at_the_preferred_gap():
    # Each site adds 0.2; the pair adds 1 more only when B starts exactly 5 bp after A ends.
    def rule(s: str) -> float:
        a, b = starts_of(s, "CACGTG"), starts_of(s, "TTATCA")
        return 0.2 * (len(a) + len(b)) + float(any(j - (i + 6) == 5 for i in a for j in b))
    X = random_one_hot(300, 60, random_state=22)
    result = spacing(StringModel(rule), make_null(X, "given"), "CACGTG", "TTATCA", position=10, spacings=range(11))
    inter, se = result.extras["interaction"][:, 0], result.extras["interaction_se"][:, 0]
    assert result.extras["spacings"].tolist() == list(range(11)) and int(np.argmax(inter)) == 5
    assert inter[5] > 0.95 and np.all(np.abs(np.delete(inter, 5)) < 0.02) and se[5] < 0.02
    np.testing.assert_allclose(result.extras["expected"][:, 0], 0.4, atol=0.02)  # two sites, 0.2 each


def test_stem_loop_experiment_finds_a_loop_preference():
    # The motif counts only inside the loop of a formed hairpin, weighted by the fraction of paired arms.
    left, right, size = 8, 24, 9  # the default stem for 41 nt
    def rule(s: str) -> float:
        paired = np.mean([s[left + t] == revcomp(s[right + size - 1 - t]) for t in range(size)])
        return paired * float(any(left + size <= i <= right - 5 for i in starts_of(s, "GCTGG")))
    X = random_one_hot(400, 41, random_state=23)
    result = gia(StringModel(rule), X, experiment="stem-loop", pattern="GCTGG", null="given")
    gi = result.arrays["global_importance"][0, :, 0]
    assert result.rows == ("loop (plain)", "stem (plain)", "loop (stem-loop)", "stem (stem-loop)")
    assert result.arrays["stem"][0].tolist() == [left, right, size]
    assert gi[2] > 0.99 and abs(gi[3]) < 0.01 and abs(gi[1]) < 0.01
    assert gi[0] == pytest.approx(0.25, abs=0.04)  # random arms: a quarter of the pairs hold by chance
    p = result.arrays["p_value"][0]
    assert p[0, 0] < 1e-10 and p[1, 0] < 1e-10  # loop beats stem; the hairpin beats the plain background


def test_presets_of_the_paper_and_the_reference_code():
    model = sum_model()
    X = random_one_hot(40, 41, random_state=24)
    kw = {"n_backgrounds": 20, "pattern": "ACGTAC"}
    ref = gia(model, X, experiment="multiple", preset="reference", **kw)
    assert ref.rows[:3] == ("1x", "2x", "3x") and ref.params["positions"] == [4, 12, 20]
    assert gia(model, X, experiment="multiple", preset="paper", **kw).params["positions"] == [3, 10, 17]
    gc = gia(model, X, experiment="gc-bias", preset="paper", **kw)
    assert gc.params["positions"] == [17] and gc.params["gc_positions"] == (34, 0)
    assert gia(model, X, experiment="gc-bias", gc_positions="30,1", **kw).params["gc_positions"] == [30, 1]
    loop = gia(model, X, experiment="stem-loop", preset="paper", pattern="ACGTA", n_backgrounds=20)
    assert loop.arrays["stem"][0].tolist() == [5, 22, 11]
    assert gia(model, X, experiment="kmer-scan", kmer_size=2, preset="reference",
               n_backgrounds=10).params["positions"] == [17]
    with pytest.raises(InputError, match="41-nt RNAcompete sequences, but this model takes 40 bp"):
        gia(model, X[:, :, :40], experiment="multiple", preset="paper", **kw)
    with pytest.raises(InputError, match="gc_positions .* must be two starts"):
        gia(model, X, experiment="gc-bias", gc_positions="30", **kw)
    with pytest.raises(InputError, match="preset .* not used by experiment 'occlusion'"):
        gia(model, X, experiment="occlusion", preset="paper", n_backgrounds=20)


def test_gc_bias_is_nan_where_the_motif_does_nothing_and_the_scan_refuses_minus():
    X = random_one_hot(100, 40, random_state=25)
    result = gc_bias(GCEnhanced(), make_null(X, "given"), "AAAAAA")  # not the model's site
    assert np.isnan(result.extras["relative_change"]).all() and "no measurable effect" in result.warnings[0]
    assert np.all(np.abs(result.extras["change"]) < 0.05)
    with pytest.raises(InputError, match="strand '-' scans the same"):
        gia(sum_model(), X[:, :, :20], kmer_size=2, strand="-", n_backgrounds=10)


def test_direct_calls_record_every_option():
    result = gia(sum_model(), random_one_hot(20, 20, random_state=26), experiment="embed", pattern="ACGT@3",
                 n_backgrounds=10, null_filter="10,90")
    p = result.params
    assert p["pattern"] == "ACGT@3" and p["n_backgrounds"] == 10 and p["null_filter"] == (10.0, 90.0)
    assert p["random_state"] == 0 and p["preset"] == "centred" and p["nulls"] == ["profile"]
