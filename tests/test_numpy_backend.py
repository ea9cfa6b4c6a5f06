"""The analytic PWM-scanning model: closed forms, and the conformance kit on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from interpkit_numpy.pwm_scan import PWMScanModel
from toy_models import match_pwm, window_scores

from interpkit import Capability, InputError, capabilities_of
from interpkit.sequences import one_hot_encode
from interpkit.testing import PREDICTOR_CHECKS, PROBE_CHECKS, check_id, random_one_hot

SEQS = ["TTACGTTAGGCAT", "CGTACGNNACGAA", "GGGGGGGGGGGGG", "ATCGTATTTACGT"]
PWMS = [match_pwm("ACGT"), match_pwm("TAG") * 0.5]


def model(**kw):
    return PWMScanModel(PWMS, ["acgt", "tag"], **kw)


@pytest.mark.parametrize("reduction", ["max", "sum"])
@pytest.mark.parametrize("both", [False, True])
def test_predict_equals_loop_oracle(reduction, both):
    y = model(reduction=reduction, both_strands=both).predict(one_hot_encode(SEQS))
    for n, seq in enumerate(SEQS):
        for t, pwm in enumerate(PWMS):
            fwd = window_scores(seq, pwm)
            if both:  # a window's score on the other strand: the reverse-complement PWM on the same window
                fwd = [max(a, b) for a, b in zip(fwd, window_scores(seq, pwm[::-1, ::-1]))]
            expected = max(fwd) if reduction == "max" else sum(fwd)
            assert y[n, t] == pytest.approx(expected, abs=1e-5), (seq, t)


def test_short_motif_reaches_the_sequence_end():
    # A 3-bp motif beside a 4-bp one: its site in the last 3 bp must count (3 = full match).
    m = PWMScanModel([match_pwm("ACGT"), match_pwm("TAG")], ["acgt", "tag"], both_strands=True)
    X = one_hot_encode(["GGGGGGGTAG", "GGGGGGGCTA"])  # TAG at the end; its reverse complement CTA
    assert m.predict(X)[:, 1].tolist() == [3.0, 3.0]
    assert m.gradient(X, 1)[0, :, 7:].tolist() == match_pwm("TAG").tolist()
    A = m.activations(X, "scan")
    assert A.shape == (2, 2, 8) and np.isinf(A[:, 0, 7]).all() and A[0, 1, 7] == 3.0


def test_known_values_by_hand():
    m = PWMScanModel([match_pwm("ACG")], ["acg"], both_strands=True)
    # "ACG" present: 3; only its reverse complement "CGT" present: 3 with both strands;
    # an N inside the match loses that base's +1 and cannot score a mismatch: 1 + 1 + 0 = 2.
    y = m.predict(one_hot_encode(["TTACGTT", "TTCGTTT", "TTANGTT"]))[:, 0]
    assert y.tolist() == [3.0, 3.0, 2.0]
    assert PWMScanModel([match_pwm("ACG")], ["acg"]).predict(one_hot_encode(["TTCGTTT"]))[0, 0] == 1.0


def test_gradient_max_is_pwm_at_best_window():
    m = model()
    X = one_hot_encode(SEQS)
    G = m.gradient(X, 0)
    for n, seq in enumerate(SEQS):
        scores = window_scores(seq, PWMS[0])
        best = int(np.argmax(scores))
        expected = np.zeros((4, len(seq)))
        expected[:, best:best + 4] = PWMS[0]
        np.testing.assert_array_equal(G[n], expected)


def test_gradient_sum_is_pwm_summed_over_windows():
    m = model(reduction="sum")
    X = one_hot_encode(SEQS)
    G = m.gradient(X, 1)
    L, pwm = len(SEQS[0]), PWMS[1]
    expected = np.zeros((4, L))
    for i in range(L - 3 + 1):  # every window of the 3-bp motif, up to the last base
        expected[:, i:i + 3] += pwm
    for n in range(len(SEQS)):
        np.testing.assert_allclose(G[n], expected)
    # f is linear in X for reduction "sum": f(X) = <G, X>.
    np.testing.assert_allclose((G * X).sum(axis=(1, 2)), m.predict(X)[:, 1], rtol=1e-6)


def test_activations_and_neuron():
    m = model(both_strands=True)
    X = one_hot_encode(SEQS)
    A = m.activations(X, "scan")
    assert A.shape == (4, 2, len(SEQS[0]) - 3 + 1)  # windows up to L - w_min, w_min = 3
    np.testing.assert_allclose(A.max(axis=2), m.predict(X))
    np.testing.assert_allclose(m.activations(X, "pool")[:, :, 0], m.predict(X))
    np.testing.assert_allclose(m.neuron("scan", 0, X[:, :, 2:6]), A[:, 0, 2])
    assert capabilities_of(m) == {Capability.PREDICT, Capability.GRADIENT, Capability.LAYERS, Capability.NEURON,
                                  Capability.TORCH_FUNCTION}


CONFORMANCE_X = random_one_hot(5, 40, random_state=3)


@pytest.mark.parametrize("check", PREDICTOR_CHECKS + PROBE_CHECKS, ids=check_id)
@pytest.mark.parametrize("both", [False, True], ids=["fwd", "both"])
def test_conformance(check, both):
    check(model(both_strands=both), CONFORMANCE_X)


def test_numpy_backend_raises():
    with pytest.raises(InputError, match="pseudocount"), np.errstate(divide="ignore"):
        PWMScanModel([np.log2(np.array([[1, 0], [0, 1], [0, 0], [0, 0]]) / 0.25)], ["x"])
    with pytest.raises(InputError, match="one name per PWM"):
        PWMScanModel(PWMS, ["a"])
    with pytest.raises(InputError, match="reduction == 'mean'"):
        model(reduction="mean")
    with pytest.raises(InputError, match="shorter than the receptive field"):
        model().predict(one_hot_encode(["ACG"]))
    with pytest.raises(InputError, match="target == 2"):
        model().gradient(one_hot_encode(SEQS), 2)
    with pytest.raises(InputError, match="only for 'scan'"):
        model().neuron("pool", 0, one_hot_encode(["ACGT"]))
    with pytest.raises(InputError, match="Did you mean 'scan'"):
        model().activations(one_hot_encode(SEQS), "scna")


def test_real_ctcf_peaks_score_above_their_shuffles(ctcf_fasta):
    # Oracle: CTCF ChIP-seq peaks are enriched for the CTCF motif, so the CTCF output separates peaks
    # from their dinucleotide shuffles far better than chance (measured AUROC 0.80), and better than
    # every motif unrelated to CTCF binding (measured 0.42-0.61).
    import interpkit_numpy

    import interpkit
    from interpkit.sequences import dinucleotide_shuffle, read_sequences

    model = interpkit.load(Path(interpkit_numpy.__file__).parent / "data" / "example_motifs.meme")
    _, X = read_sequences(ctcf_fasta)
    real, null = model.predict(X), model.predict(dinucleotide_shuffle(X, n=1, random_state=0)[:, 0])
    aurocs = {name: float((real[:, t, None] > null[None, :, t]).mean() + 0.5 * (real[:, t, None] == null[None, :, t]).mean())
              for t, name in enumerate(model.output_names)}
    ctcf = aurocs.pop("MA0139.2 CTCF")
    assert ctcf > 0.75 and ctcf > max(aurocs.values()) + 0.15, (ctcf, aurocs)
