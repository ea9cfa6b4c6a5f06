"""Tests for interpkit.sequences: each expected value has an independent source (stated per test)."""

from __future__ import annotations

import gzip
import itertools
import shutil
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interpkit.errors import InputError, InputTypeError, MissingFileError
from interpkit.sequences import (
    DNA,
    RNA,
    dinucleotide_shuffle,
    one_hot_decode,
    one_hot_encode,
    read_bed_windows,
    read_fasta,
    read_sequences,
    reverse_complement,
    shuffle,
)

GENOME = "data/genome/test_grch37_chr10_0-110kb.fa"
PAIRS = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}  # test-side complement, independent of the module


def dinucleotides(s: str) -> Counter:
    return Counter(itertools.pairwise(s))


@pytest.fixture(scope="module")
def ctcf(ctcf_fasta):
    """Names and raw (soft-masked) sequences of the 500 CTCF peaks, parsed here without Biopython."""
    text = ctcf_fasta.read_text().split(">")[1:]
    names = [rec.split("\n", 1)[0].split()[0] for rec in text]
    seqs = ["".join(rec.split("\n")[1:]) for rec in text]
    return names, seqs


@pytest.fixture(scope="module")
def chr10(shared):
    """chr10:1-110000 of GRCh37 as one string, read from the FASTA text (0-based offsets)."""
    lines = (shared / GENOME).read_text().splitlines()
    return "".join(lines[1:])


# --- one-hot encoding -------------------------------------------------------------------------


def test_one_hot_encode_known():
    # Oracle: the definition (row j is alphabet[j]; IUPAC codes are all-zero columns).
    X = one_hot_encode("ACGTN")
    assert X.shape == (1, 4, 5) and X.dtype == np.float32
    np.testing.assert_array_equal(X[0], np.eye(4, 5, dtype=np.float32))
    np.testing.assert_array_equal(one_hot_encode(["acgtn"]), X)
    assert not one_hot_encode("NRYSWKMBDHVnrysw").any()
    np.testing.assert_array_equal(one_hot_encode("ACGU", alphabet=RNA)[0], np.eye(4))
    assert one_hot_encode(["AC", "GT"], dtype=np.int8).dtype == np.int8


def test_one_hot_round_trip_real(ctcf):
    names, seqs = ctcf
    assert len(seqs) == 500 and any(c.islower() for c in seqs[0])
    X = one_hot_encode(seqs, names=names)
    assert X.shape == (500, 4, 200)
    np.testing.assert_array_equal(X.sum(axis=1), [[c != "N" for c in s.upper()] for s in seqs])
    assert one_hot_decode(X) == [s.upper() for s in seqs]
    assert one_hot_decode(one_hot_encode("ACGUN", alphabet=RNA), alphabet=RNA) == ["ACGUN"]


def test_one_hot_encode_raises():
    with pytest.raises(InputError, match=r"sequence 'r2' has 'X' at position 3 \(1-based\)"):
        one_hot_encode(["ACGT", "ACXT"], names=["r1", "r2"])
    with pytest.raises(InputError, match=r"sequence 1 has '-' at position 2"):
        one_hot_encode(["ACGT", "A-GT"])
    with pytest.raises(InputError, match=r"'U' at position 4 .*alphabet='ACGU'"):
        one_hot_encode("ACGU")
    with pytest.raises(InputError, match=r"'t' at position 1 .*alphabet='ACGT'"):
        one_hot_encode("tACG", alphabet=RNA)
    with pytest.raises(InputError, match=r"sequence 'a' has 3 bp but sequence 'c' has 2 bp; use fixed-length"):
        one_hot_encode(["ACG", "ACG", "AC"], names=["a", "b", "c"])
    with pytest.raises(InputError, match="0 sequences"):
        one_hot_encode([])
    with pytest.raises(InputError, match="sequence 1 is empty"):
        one_hot_encode(["A", ""])
    with pytest.raises(InputError, match="names has 1 entries but there are 2"):
        one_hot_encode(["A", "C"], names=["x"])
    with pytest.raises(InputError, match="4 distinct letters"):
        one_hot_encode("ACGT", alphabet="ACG")
    with pytest.raises(InputError, match="4 distinct letters"):
        one_hot_encode("ACGT", alphabet="AACG")
    with pytest.raises(InputTypeError, match="str or a list of str"):
        one_hot_encode([b"ACGT"])
    with pytest.raises(InputTypeError, match="str or a list of str"):
        one_hot_encode(5)


def test_one_hot_decode_raises():
    with pytest.raises(InputError, match=r"must be \(N, 4, L\)"):
        one_hot_decode(np.zeros((4, 10)))
    with pytest.raises(InputError, match="holds only 0 and 1"):
        one_hot_decode(np.full((1, 4, 3), 0.5))
    with pytest.raises(InputError, match="4 distinct letters"):
        one_hot_decode(one_hot_encode("ACGT"), alphabet="AC")


# --- reverse complement -----------------------------------------------------------------------


def test_reverse_complement_strings():
    # Oracle: Watson-Crick and IUPAC pairing written out by hand.
    assert reverse_complement("ACCGTN") == "NACGGT"
    assert reverse_complement("aCCgtn") == "nacGGt"
    assert reverse_complement("RYKMSWBDHV") == "BDHVWSKMRY"
    assert reverse_complement("AUGC") == "GCAU"
    assert reverse_complement("GATTACA") == "TGTAATC"


def test_reverse_complement_array_matches_strings(ctcf):
    _, seqs = ctcf
    upper = [s.upper() for s in seqs]
    X = one_hot_encode(upper)
    expected = ["".join(PAIRS[c] for c in reversed(s)) for s in upper]
    assert one_hot_decode(reverse_complement(X)) == expected
    assert [reverse_complement(s) for s in upper] == expected
    np.testing.assert_array_equal(reverse_complement(reverse_complement(X)), X)  # involution
    assert [reverse_complement(reverse_complement(s)) for s in seqs] == seqs


def test_reverse_complement_raises():
    with pytest.raises(InputError, match=r"'X' at position 3"):
        reverse_complement("ACXT")
    with pytest.raises(InputError, match="both T and U"):
        reverse_complement("ACTU")
    with pytest.raises(InputError, match=r"must be \(N, 4, L\)"):
        reverse_complement(np.zeros((4, 10)))


# --- FASTA and .npy ---------------------------------------------------------------------------


def test_read_fasta(ctcf, ctcf_fasta, tmp_path):
    names, seqs = read_fasta(ctcf_fasta)
    assert (names, seqs) == ctcf
    assert names[0] == "chr11:190037-190237"
    gz = tmp_path / "peaks.fa.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(ctcf_fasta.read_text())
    before = sorted(tmp_path.iterdir())
    assert read_fasta(gz) == (names, seqs)
    assert sorted(tmp_path.iterdir()) == before  # nothing written beside the input


def test_read_fasta_raises(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        read_fasta(tmp_path / "absent.fa")
    (tmp_path / "empty.fa").write_text("")
    with pytest.raises(InputError, match=r"empty.fa is not FASTA: no records"):
        read_fasta(tmp_path / "empty.fa")
    (tmp_path / "blank.fa").write_text(">\n")
    with pytest.raises(InputError, match="record '' has an empty sequence"):
        read_fasta(tmp_path / "blank.fa")
    (tmp_path / "garbage.fa").write_text("hello world\n>x\nACGT\n")
    with pytest.raises(InputError, match=r"garbage.fa is not FASTA: its first line 'hello world'"):
        read_fasta(tmp_path / "garbage.fa")
    (tmp_path / "hole.fa").write_text(">a\nACGT\n>b\n>c\nAC\n")
    with pytest.raises(InputError, match="record 'b' has an empty sequence"):
        read_fasta(tmp_path / "hole.fa")
    (tmp_path / "binary.fa.gz").write_bytes(b"\x00\x01 not gzip")
    with pytest.raises(InputError, match="binary.fa.gz could not be read"):
        read_fasta(tmp_path / "binary.fa.gz")


def test_read_sequences(ctcf, ctcf_fasta, tmp_path):
    names, X = read_sequences(ctcf_fasta, length=200)
    assert names == ctcf[0] and X.shape == (500, 4, 200) and X.dtype == np.float32
    assert one_hot_decode(X) == [s.upper() for s in ctcf[1]]
    np.save(tmp_path / "x.npy", X[:3].astype(np.int8))
    names_npy, X_npy = read_sequences(tmp_path / "x.npy", length=200)
    assert names_npy == ["seq0", "seq1", "seq2"]
    np.testing.assert_array_equal(X_npy, X[:3])
    (tmp_path / "r.fasta").write_text(">r\nACGU\n")
    assert one_hot_decode(read_sequences(tmp_path / "r.fasta", alphabet=RNA)[1], alphabet=RNA) == ["ACGU"]


def test_read_sequences_raises(ctcf_fasta, tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        read_sequences(tmp_path / "absent.fa")
    (tmp_path / "x.txt").write_text(">a\nACGT\n")
    with pytest.raises(InputError, match=r"unknown suffix; accepted are \.fa\[\.gz\].*\.npy"):
        read_sequences(tmp_path / "x.txt")
    with pytest.raises(InputError, match=r"record 'chr11:190037-190237' is 200 bp but length=100 bp"):
        read_sequences(ctcf_fasta, length=100)
    (tmp_path / "mixed.fa").write_text(">a\nACGT\n>b\nACG\n")
    with pytest.raises(InputError, match="record 'b' is 3 bp but length=4"):
        read_sequences(tmp_path / "mixed.fa", length=4)
    with pytest.raises(InputError, match=r"mixed.fa: record 'b' is 3 bp but the first record 'a' is 4 bp"):
        read_sequences(tmp_path / "mixed.fa")
    np.save(tmp_path / "bad.npy", np.ones((2, 4, 5)))
    with pytest.raises(InputError, match="at most one 1"):
        read_sequences(tmp_path / "bad.npy")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a readable .npy"):
        read_sequences(tmp_path / "junk.npy")


# --- BED windows ------------------------------------------------------------------------------

BED_LINES = [
    "track name=test",
    "# a comment",
    "chr10\t70000\t70100",  # midpoint 70050 -> window [70000, 70100)
    "chr10\t80010\t80031\tpeak2\t0\t-",  # midpoint 80020 -> window [79970, 80070), reverse complemented
    "chr10\t59990\t60001\tedge\t0\t+",  # midpoint 59995 -> window [59945, 60045), crosses the N gap
]


def test_read_bed_windows(shared, chr10, tmp_path):
    (tmp_path / "x.bed").write_text("\n".join(BED_LINES) + "\n")
    names, X = read_bed_windows(tmp_path / "x.bed", shared / GENOME, length=100)
    assert names == ["chr10:70000-70100", "peak2", "edge"] and X.shape == (3, 4, 100)
    plus = chr10[70000:70100].upper()
    minus = "".join(PAIRS[c] for c in reversed(chr10[79970:80070].upper()))
    edge = chr10[59945:60045].upper()
    assert edge.startswith("N" * 55) and edge[55] != "N"
    assert one_hot_decode(X) == [plus, minus, edge]
    # odd length: lo = mid - length // 2, so the window is [70050 - 50, 70050 + 51)
    assert one_hot_decode(read_bed_windows(tmp_path / "x.bed", shared / GENOME, length=101)[1][:1]) == [
        chr10[70000:70101].upper()]


def test_read_bed_windows_writes_no_index(shared, tmp_path):
    genome = tmp_path / "g.fa"
    shutil.copy(shared / GENOME, genome)  # a genome without .fai
    (tmp_path / "x.bed").write_text("chr10\t70000\t70100\n")
    before = sorted(tmp_path.iterdir())
    _, X = read_bed_windows(tmp_path / "x.bed", genome, length=50)
    assert sorted(tmp_path.iterdir()) == before
    np.testing.assert_array_equal(X, read_bed_windows(tmp_path / "x.bed", shared / GENOME, length=50)[1])


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("chr10\t100\t200", r"line 2: the 500 bp window chr10:-100-400 runs off chr10 \(0-110000\)"),
        ("chr10\t109900\t110000", r"line 2: the 500 bp window chr10:109700-110200 runs off"),
        ("chrX\t70000\t70100", r"line 2: chromosome 'chrX' is not in genome .* which has chr10"),
        ("chr10\tabc\t70100", r"line 2 is 'chr10\\tabc\\t70100' but must start with chrom, start, end"),
        ("chr10\t70000", r"line 2 .* must start with chrom, start, end"),
        ("chr10\t70100\t70000", r"line 2 has start=70100, end=70000; BED needs 0 <= start < end"),
    ],
)
def test_read_bed_windows_raises(shared, tmp_path, line, match):
    (tmp_path / "x.bed").write_text(f"chr10\t70000\t70100\n{line}\n")
    with pytest.raises(InputError, match=match):
        read_bed_windows(tmp_path / "x.bed", shared / GENOME, length=500)


def test_read_bed_windows_raises_files(shared, tmp_path):
    (tmp_path / "x.bed").write_text("chr10\t70000\t70100\n")
    with pytest.raises(MissingFileError, match="BED file .*absent.bed does not exist"):
        read_bed_windows(tmp_path / "absent.bed", shared / GENOME, length=10)
    with pytest.raises(MissingFileError, match="genome file .*absent.fa does not exist"):
        read_bed_windows(tmp_path / "x.bed", tmp_path / "absent.fa", length=10)
    (tmp_path / "empty.bed").write_text("track name=x\n\n")
    with pytest.raises(InputError, match="empty.bed holds no intervals"):
        read_bed_windows(tmp_path / "empty.bed", shared / GENOME, length=10)
    with pytest.raises(InputError, match="length == 0, must be >= 1"):
        read_bed_windows(tmp_path / "x.bed", shared / GENOME, length=0)


# --- shuffles ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ctcf_X(ctcf):
    return one_hot_encode(ctcf[1])


def test_dinucleotide_shuffle_keeps_counts_real(ctcf, ctcf_X):
    # Oracle: dinucleotide counts of the original strings, counted here with Counter.
    seqs = [s.upper() for s in ctcf[1]]
    Y = dinucleotide_shuffle(ctcf_X, n=3, random_state=0)
    assert Y.shape == (500, 3, 4, 200) and Y.dtype == np.float32
    for s, shuffles in zip(seqs, Y):
        for t in one_hot_decode(shuffles):
            assert dinucleotides(t) == dinucleotides(s)
            assert Counter(t) == Counter(s) and t[0] == s[0] and t[-1] == s[-1]
            assert t != s  # 200 bp peaks have astronomically many dinucleotide-preserving orders


def test_shuffle_keeps_base_counts(ctcf, ctcf_X):
    seqs = [s.upper() for s in ctcf[1]]
    Y = shuffle(ctcf_X, n=3, random_state=0)
    assert Y.shape == (500, 3, 4, 200) and Y.dtype == np.float32
    for s, shuffles in zip(seqs, Y):
        for t in one_hot_decode(shuffles):
            assert Counter(t) == Counter(s) and t != s
    assert np.mean([dinucleotides(one_hot_decode(y)[0]) == dinucleotides(s) for s, y in zip(seqs, Y)]) < 0.01


@pytest.mark.parametrize("func", [shuffle, dinucleotide_shuffle])
def test_shuffle_seeds(func, ctcf_X):
    X = ctcf_X[:11]
    a = func(X, n=4, random_state=7)
    np.testing.assert_array_equal(a, func(X, n=4, random_state=7))
    assert not np.array_equal(a, func(X, n=4, random_state=8))
    np.testing.assert_array_equal(a[:1], func(X[:1], n=4, random_state=7))  # sequence 0 alone = in a batch of 11
    assert not np.array_equal(a[:, 0], a[:, 1])
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(func(X, random_state=g1), func(X, random_state=g2))
    assert not np.array_equal(func(X, random_state=None), func(X, random_state=None))


def test_dinucleotide_shuffle_uniform():
    # Oracle: brute-force enumeration of every 10 bp string with the first base and dinucleotide
    # counts of "AACGTTACGA"; Altschul-Erickson/Kandel sampling is uniform over that set.
    s = "AACGTTACGA"
    target = dinucleotides(s)
    candidates = (s[0] + "".join(mid) + s[-1] for mid in itertools.product(DNA, repeat=len(s) - 2))
    valid = {t for t in candidates if dinucleotides(t) == target}
    draws = one_hot_decode(dinucleotide_shuffle(one_hot_encode(s), n=6000, random_state=1)[0])
    counts = Counter(draws)
    assert set(counts) == valid and len(valid) > 5
    from scipy.stats import chisquare

    assert chisquare(list(counts.values())).pvalue > 1e-3


def test_dinucleotide_shuffle_fixed_points():
    # Too short, or only one Eulerian walk: returned unchanged.
    for s in ["A", "AC", "AAAA", "ACGT", "NNAC"]:
        X = one_hot_encode(s)
        np.testing.assert_array_equal(dinucleotide_shuffle(X, n=3, random_state=0), np.repeat(X[:, None], 3, 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("ACGTN", min_size=1, max_size=60), min_size=1, max_size=4).map(
    lambda xs: [x.ljust(max(map(len, xs)), "A") for x in xs]), st.integers(0, 2**32))
def test_dinucleotide_shuffle_property(seqs, seed):
    for s, shuffles in zip(seqs, dinucleotide_shuffle(one_hot_encode(seqs), n=3, random_state=seed)):
        for t in one_hot_decode(shuffles):
            assert dinucleotides(t) == dinucleotides(s) and t[0] == s[0] and t[-1] == s[-1]


@pytest.mark.parametrize("func", [shuffle, dinucleotide_shuffle])
def test_shuffle_raises(func):
    X = one_hot_encode(["ACGT"])
    with pytest.raises(InputError, match="n == 0, must be >= 1"):
        func(X, n=0)
    with pytest.raises(InputTypeError, match="n must be int"):
        func(X, n=2.0)
    with pytest.raises(InputError, match="holds only 0 and 1"):
        func(X * 2)
    with pytest.raises(InputError, match=r"must be \(N, 4, L\)"):
        func(X[0])
    with pytest.raises(InputTypeError, match="string"):
        func("ACGT")
    with pytest.raises(InputError, match="random_state == -1"):
        func(X, random_state=-1)
    with pytest.raises(InputTypeError, match="random_state must be"):
        func(X, random_state="seed")


def test_constants():
    assert (DNA, RNA) == ("ACGT", "ACGU")


def test_dinucleotide_shuffle_low_complexity_is_fast_and_exact():
    # Long single-base runs made the rejection sampling of last-exit trees exponentially slow;
    # Wilson's algorithm finishes at once. Counts are checked independently on the strings.
    import time
    from collections import Counter

    unique_path = "A" * 200 + "C" * 200 + "G" * 200 + "T" * 200  # its only Eulerian walk is itself
    runs = ("A" * 100 + "C" * 100) * 4  # run lengths can be redistributed: many walks
    start = time.perf_counter()
    X = dinucleotide_shuffle(one_hot_encode([unique_path, runs]), n=10, random_state=5)
    assert time.perf_counter() - start < 10
    for seq, shuffles in zip([unique_path, runs], X):
        pairs = Counter(seq[i:i + 2] for i in range(len(seq) - 1))
        decoded = one_hot_decode(shuffles)
        assert all(Counter(s[i:i + 2] for i in range(len(s) - 1)) == pairs for s in decoded)
    assert set(one_hot_decode(X[0])) == {unique_path}
    assert len(set(one_hot_decode(X[1]))) > 5
