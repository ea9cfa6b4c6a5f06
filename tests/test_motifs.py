"""Motif maths against closed forms: counts -> probabilities -> log-odds and information content."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from interpkit.errors import InputError, InputTypeError
from interpkit.motifs import (
    Motif,
    check_background,
    check_motifs,
    consensus,
    information_content,
    pfm_to_ppm,
    ppm_to_pwm,
)

ONE_HOT_ACG = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])  # columns A, C, G


def test_pfm_to_ppm_hand_counts():
    # Column totals 10 and 4; pseudocount 4 spread by a uniform background adds 1 to every count.
    pfm = np.array([[5, 0], [3, 4], [2, 0], [0, 0]])
    assert np.array_equal(pfm_to_ppm(pfm), [[0.5, 0], [0.3, 1], [0.2, 0], [0, 0]])
    assert np.allclose(pfm_to_ppm(pfm, pseudocount=4), [[6 / 14, 1 / 8], [4 / 14, 5 / 8], [3 / 14, 1 / 8],
                                                        [1 / 14, 1 / 8]])
    # A skewed background shares the pseudocount unevenly: (0 + 2 * 0.4) / (4 + 2) for A in column 2.
    ppm = pfm_to_ppm(pfm, pseudocount=2, background=[0.4, 0.1, 0.1, 0.4])
    assert ppm[0, 1] == pytest.approx(0.8 / 6) and np.allclose(ppm.sum(axis=0), 1)


def test_pfm_to_ppm_matches_biopython():
    from Bio import motifs as bio_motifs

    pfm = np.array([[5, 0, 7], [3, 4, 1], [2, 0, 1], [0, 6, 1]], dtype=float)
    bio = bio_motifs.Motif(counts=dict(zip("ACGT", pfm.tolist()))).counts.normalize(pseudocounts=0.8)
    assert np.allclose(pfm_to_ppm(pfm, pseudocount=3.2), np.array([bio[b] for b in "ACGT"]))


def test_information_content_closed_forms():
    uniform, one_hot = np.full((4, 1), 0.25), ONE_HOT_ACG[:, :1]
    half = np.array([[0.5], [0.5], [0], [0]])
    assert information_content(uniform)[0] == 0.0
    assert np.array_equal(information_content(ONE_HOT_ACG), [2.0, 2.0, 2.0])
    assert information_content(half)[0] == pytest.approx(1.0)
    # Against a background of A = 0.5, a certain A carries log2(1 / 0.5) = 1 bit.
    assert information_content(one_hot, background=[0.5, 0.2, 0.2, 0.1])[0] == pytest.approx(1.0)
    assert information_content(uniform).dtype == np.float64 and information_content(ONE_HOT_ACG).shape == (3,)


def test_pwm_closed_forms():
    pwm = ppm_to_pwm(ONE_HOT_ACG)
    assert pwm[0, 0] == 2.0 and np.isneginf(pwm[1, 0])
    # Pseudocount 1: p' = (1 + 0.25) / 2 = 0.625 -> log2(2.5); zeros become 0.125 -> log2(0.5) = -1.
    smooth = ppm_to_pwm(ONE_HOT_ACG, pseudocount=1.0)
    assert smooth[0, 0] == pytest.approx(np.log2(2.5)) and smooth[3, 0] == pytest.approx(-1.0)
    assert np.array_equal(ppm_to_pwm(np.full((4, 2), 0.25)), np.zeros((4, 2)))
    assert ppm_to_pwm([[0.5], [0.5], [0], [0]], background=[0.5, 0.25, 0.125, 0.125])[1, 0] == pytest.approx(1.0)


def test_consensus():
    assert consensus(ONE_HOT_ACG) == "ACG"
    assert consensus([[0.1], [0.2], [0.3], [0.4]], alphabet="ACGU") == "U"
    assert consensus(np.full((4, 1), 0.25)) == "A"  # ties: the earlier letter


def test_motif_record():
    m = Motif("MA0000.1", ONE_HOT_ACG + 0, name="  Some   TF ", nsites=np.int64(12), evalue=0)
    assert m.width == 3 and m.name == "Some TF" and m.nsites == 12 and isinstance(m.nsites, int)
    assert m.consensus() == "ACG" and np.array_equal(m.information_content(), [2, 2, 2])
    assert np.array_equal(m.pwm(pseudocount=1.0), ppm_to_pwm(ONE_HOT_ACG, pseudocount=1.0))
    rc = m.reverse_complement()
    assert rc.consensus() == "CGT" and rc.id == m.id and rc.reverse_complement() == m
    assert rc != m and m == Motif("MA0000.1", ONE_HOT_ACG, "Some TF", nsites=12, evalue=0.0)
    assert m != dataclasses.replace(m, url="https://example.org/x") and hash(m) == hash(Motif(
        "MA0000.1", ONE_HOT_ACG, "Some TF", nsites=12, evalue=0.0))
    with pytest.raises(ValueError):
        m.ppm[0, 0] = 0.5  # read-only
    source = ONE_HOT_ACG.copy()
    Motif("x", source).ppm  # noqa: B018 - the record holds a copy
    assert source.flags.writeable


def test_motifs_raises():
    bad_ppm = np.array([[0.5], [0.2], [0.2], [0.2]])
    cases = [
        (InputError, "pfm column 1 has no counts", lambda: pfm_to_ppm([[1, 0], [0, 0], [0, 0], [0, 0]])),
        (InputError, "negative", lambda: pfm_to_ppm([[1], [-1], [0], [1]])),
        (InputError, r"must be \(4, w\).*transpose", lambda: pfm_to_ppm(np.ones((3, 4)))),
        (InputError, "pseudocount == -1", lambda: pfm_to_ppm(np.ones((4, 2)), pseudocount=-1)),
        (InputTypeError, "pseudocount must be", lambda: ppm_to_pwm(ONE_HOT_ACG, pseudocount="1")),
        (InputError, "sums to 1.1", lambda: information_content(bad_ppm)),
        (InputError, r"background has shape \(3,\)", lambda: ppm_to_pwm(ONE_HOT_ACG, background=[0.5, 0.25, 0.25])),
        (InputError, "entry <= 0", lambda: check_background([0.5, 0.5, 0.0, 0.0])),
        (InputError, "sums to 0.8", lambda: check_background([0.2] * 4)),
        (InputError, "alphabet == 'ACGN'", lambda: consensus(ONE_HOT_ACG, alphabet="ACGN")),
        (InputError, "without whitespace", lambda: Motif("MA 1", ONE_HOT_ACG)),
        (InputError, "without whitespace", lambda: Motif("", ONE_HOT_ACG)),
        (InputTypeError, "id must be str", lambda: Motif(5, ONE_HOT_ACG)),
        (InputError, "ppm of motif m column 0 sums", lambda: Motif("m", bad_ppm)),
        (InputError, "nsites == -1", lambda: Motif("m", ONE_HOT_ACG, nsites=-1)),
        (InputTypeError, "nsites must be", lambda: Motif("m", ONE_HOT_ACG, nsites=2.5)),
        (InputError, "url 'a b'", lambda: Motif("m", ONE_HOT_ACG, url="a b")),
        (InputError, "alphabet == 'acgt'", lambda: Motif("m", ONE_HOT_ACG, alphabet="acgt")),
        (InputTypeError, "wrap a single motif", lambda: check_motifs(Motif("m", ONE_HOT_ACG))),
        (InputTypeError, r"motifs\[1\] is ndarray", lambda: check_motifs([Motif("m", ONE_HOT_ACG), ONE_HOT_ACG])),
        (InputError, "motifs is empty", lambda: check_motifs([])),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
