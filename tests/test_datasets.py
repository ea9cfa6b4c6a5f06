"""Tests for interpkit.datasets: each expected value has an independent source (stated per test)."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter

import numpy as np
import pytest

import interpkit.datasets as ds
from interpkit.datasets import LabelledSequences, gc_content, gc_matched_windows, read_labelled, split
from interpkit.errors import InputError, InputTypeError, InterpkitWarning, MissingFileError
from interpkit.sequences import one_hot_encode

GENOME = "data/genome/test_grch37_chr10_0-110kb.fa"  # chr10:0-110000 of GRCh37; 0-60000 is N
PEAKS = "data/peaks/Gm12878.CTCF.top500.w200.fa"
PAIRS = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}  # test-side complement, independent of the module


def decode(X: np.ndarray, alphabet: str = "ACGT") -> list[str]:
    """Test-side one-hot decoding (all-zero column -> N), independent of interpkit.one_hot_decode."""
    letters = alphabet + "N"
    return ["".join(letters[j] if col.any() else "N" for j, col in zip(x.argmax(axis=0), x.T)) for x in X]


def dinucleotides(s: str) -> Counter:
    return Counter(itertools.pairwise(s))


def write_fasta(path, records) -> str:
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in records))
    return str(path)


def write_tsv(path, rows) -> str:
    path.write_text("".join("\t".join(map(str, row)) + "\n" for row in rows))
    return str(path)


@pytest.fixture(scope="module")
def chr10(shared):
    """chr10:0-110000 as one string, read from the FASTA text (0-based offsets)."""
    return "".join((shared / GENOME).read_text().splitlines()[1:])


@pytest.fixture
def small(tmp_path):
    """Five 8-bp DNA records and their path."""
    records = [("s1", "ACGTACGT"), ("s2", "GGGGCCCC"), ("s3", "AAAATTTT"), ("s4", "ACACACAC"), ("s5", "GTGTGTGT")]
    return records, write_fasta(tmp_path / "small.fa", records)


# --- the real CTCF peaks with dinucleotide-shuffled negatives -------------------------------------------------


def test_ctcf_dinuc_real(shared):
    # Oracle: the file holds 500 distinct 200-bp peaks (SOURCE.txt); Altschul-Erickson shuffles keep every
    # dinucleotide count, counted here on test-side decoded strings.
    data = read_labelled(shared / PEAKS, negatives="dinuc")
    assert len(data) == 1000 and data.X.shape == (1000, 4, 200) and data.X.dtype == np.float32
    assert data.y.shape == (1000, 1) and data.y.dtype == np.float32 and data.y.sum() == 500
    assert data.task == "binary" and data.targets == ("Gm12878.CTCF.top500.w200",) and data.alphabet == "ACGT"
    text = (shared / PEAKS).read_text().split(">")[1:]
    names = [rec.split("\n", 1)[0] for rec in text]
    seqs = ["".join(rec.split("\n")[1:]).upper() for rec in text]
    assert data.names[:500] == tuple(names) and decode(data.X[:500]) == seqs
    assert data.names[500:] == tuple(f"{n}::shuf" for n in names)
    np.testing.assert_array_equal(data.y[:500, 0], 1)
    np.testing.assert_array_equal(data.y[500:, 0], 0)
    shuffled = decode(data.X[500:])
    assert all(dinucleotides(s) == dinucleotides(p) for s, p in zip(shuffled, seqs))
    assert sum(s != p for s, p in zip(shuffled, seqs)) >= 495  # shuffles differ from their positive
    assert data.params["n_positives"] == 500 and data.params["n_negatives"] == 500
    json.dumps(data.params)  # training metadata stores it
    # Same seed, same shuffles; another seed, other shuffles.
    again = read_labelled(shared / PEAKS, negatives="dinuc", n_negatives=50)
    np.testing.assert_array_equal(again.X[500:], data.X[500:][np.isin(names, [n[:-6] for n in again.names[500:]])])
    other = read_labelled(shared / PEAKS, negatives="dinuc", n_negatives=50, random_state=1)
    assert not np.array_equal(other.X[500:], again.X[500:])


def test_dinuc_variable_length_and_more_negatives(tmp_path):
    # Oracle: crop/pad by the documented rule (crop start n//2 - L//2; pad (L - n)//2 on the left), and
    # shuffling only the record's own bases keeps the padding at the ends and the dinucleotide counts.
    rng = np.random.default_rng(2)
    a, b, c, d = ("".join(rng.choice(list("ACGT"), n)) for n in (40, 40, 31, 52))
    path = write_fasta(tmp_path / "var.fa", [("a", a), ("b", b), ("c", c), ("d", d)])
    with pytest.raises(InputError, match=r"differ in length.*'a' has 40 bp.*'c' has 31 bp.*pass length="):
        read_labelled(path, negatives="dinuc")
    data = read_labelled(path, negatives="dinuc", length=40, n_negatives=10)
    pos = decode(data.X[:4])
    assert pos[:2] == [a, b]
    assert pos[2] == "NNNN" + c + "NNNNN"  # (40 - 31) // 2 = 4 N on the left
    assert pos[3] == d[6:46]  # crop start 52 // 2 - 40 // 2 = 6
    assert data.params["cropped"] == 1 and data.params["padded"] == 1
    assert len(data) == 14 and data.y.sum() == 4
    names = data.names[4:]
    assert names[:8] == ("a::shuf", "b::shuf", "c::shuf", "d::shuf", "a::shuf2", "b::shuf2", "c::shuf2", "d::shuf2")
    assert len(set(names[8:])) == 2 and all(n.endswith("::shuf3") for n in names[8:])
    by_name = dict(zip(data.names[:4], pos))
    for name, shuf in zip(names, decode(data.X[4:])):
        source = by_name[name.split("::")[0]]
        assert dinucleotides(shuf) == dinucleotides(source)
        assert shuf.startswith("NNNN" if source.startswith("N") else source[0])
        assert shuf.endswith("NNNNN" if source.endswith("N") else source[-1])


# --- GC content and GC-matched negatives ----------------------------------------------------------------------


def test_gc_content_known():
    # Oracle: (#C + #G) / #called bases, counted by hand.
    X = one_hot_encode(["GGCCAATT", "GCNNNNNN", "NNNNNNNN", "ATATATAC"])
    gc = gc_content(X)
    assert gc.dtype == np.float64 and gc.shape == (4,)
    np.testing.assert_allclose(gc[[0, 1, 3]], [0.5, 1.0, 1 / 8])
    assert np.isnan(gc[2])


def _overlaps(a0, a1, b0, b1) -> bool:
    return a0 < b1 and a1 > b0


def _check_windows(names, X, chr10, length):
    """Names are chrom:start-end of `length` bp and X is exactly that slice of the genome text."""
    spans = []
    for name, seq in zip(names, decode(X)):
        m = re.fullmatch(r"chr10:(\d+)-(\d+)", name)
        assert m, name
        start, end = int(m[1]), int(m[2])
        assert end - start == length and seq == chr10[start:end].upper() and "N" not in seq
        spans.append((start, end))
    assert len(set(spans)) == len(spans)
    return spans


@pytest.mark.parametrize("exhaustive", [True, False])
def test_gc_negatives_from_bed(shared, chr10, tmp_path, monkeypatch, exhaustive):
    # Oracle: GC of every window counted on the genome text; the negatives' GC histogram (numpy.histogram,
    # 20 bins) must match the positives' up to rounding, and no negative may touch a positive's interval
    # or the 200-bp window read around it. Positive intervals are made up inside chr10:60000-110000.
    if not exhaustive:
        monkeypatch.setattr(ds, "_EXHAUSTIVE_MAX_BP", 0)  # the random-draw path used for large genomes
    rng = np.random.default_rng(7)
    starts = np.sort(rng.choice(np.arange(60_200, 109_500, 50), 30, replace=False))
    widths = rng.choice([50, 300], 30)  # some intervals shorter than the window, some longer
    bed = tmp_path / "peaks.bed"
    bed.write_text("".join(f"chr10\t{s}\t{s + w}\n" for s, w in zip(starts, widths)))
    data = read_labelled(bed=bed, genome=shared / GENOME, length=200, negatives="gc", n_negatives=60)
    assert len(data) == 90 and data.y.sum() == 30 and data.targets == ("peaks",)
    spans = _check_windows(data.names[30:], data.X[30:], chr10, 200)
    for s, w in zip(starts, widths):
        lo = (2 * s + w) // 2 - 100
        for a, b in spans:
            assert not _overlaps(a, b, s, s + w) and not _overlaps(a, b, lo, lo + 200)
    gc_pos = [sum(c in "GC" for c in chr10[(2 * s + w) // 2 - 100:][:200].upper()) / 200 for s, w in zip(starts, widths)]
    gc_neg = [sum(c in "GC" for c in chr10[a:b].upper()) / 200 for a, b in spans]
    h_pos = np.histogram(gc_pos, bins=20, range=(0, 1))[0] / 30
    h_neg = np.histogram(gc_neg, bins=20, range=(0, 1))[0] / 60
    assert np.abs(h_pos - h_neg).max() <= 1 / 60 + 1e-12


def test_gc_matched_windows_direct(shared, chr10):
    # Oracle: as above, with explicit exclusions, 10 bins and FASTA-style positives named chrom:start-end.
    ref = one_hot_encode([chr10[s:s + 100] for s in (70_000, 80_000, 90_000, 100_000)] + ["N" * 100])
    exclude = [("chr10", 60_000, 75_000), ("chrX", 0, 10**6)]
    names, X = gc_matched_windows(ref, shared / GENOME, n=40, length=100, exclude=exclude, bins=10, random_state=3)
    assert X.shape == (40, 4, 100) and X.dtype == np.float32
    spans = _check_windows(names, X, chr10, 100)
    assert all(a >= 75_000 for a, _ in spans) and spans == sorted(spans)
    h_ref = np.histogram(gc_content(ref[:4]), bins=10, range=(0, 1))[0] / 4
    h_neg = np.histogram(gc_content(X), bins=10, range=(0, 1))[0] / 40
    np.testing.assert_allclose(h_neg, h_ref)
    again = gc_matched_windows(ref, shared / GENOME, n=40, length=100, exclude=exclude, bins=10, random_state=3)
    other = gc_matched_windows(ref, shared / GENOME, n=40, length=100, exclude=exclude, bins=10, random_state=4)
    assert again[0] == names and other[0] != names


def test_gc_negatives_avoid_fasta_coordinates(shared, chr10, tmp_path):
    # Oracle: positives named "chrom:start-end" (bedtools getfasta) are excluded like BED intervals.
    records = [(f"chr10:{s}-{s + 200}", chr10[s:s + 200]) for s in range(62_000, 108_000, 2_000)]
    path = write_fasta(tmp_path / "pos.fa", records)
    data = read_labelled(path, negatives="gc", genome=shared / GENOME)
    spans = _check_windows(data.names[len(records):], data.X[len(records):], chr10, 200)
    assert len(spans) == len(records)
    assert not any(_overlaps(a, b, s, s + 200) for a, b in spans for s in range(62_000, 108_000, 2_000))


def test_gc_errors(shared, chr10):
    ref = one_hot_encode([chr10[70_000:70_200]])
    genome = shared / GENOME
    with pytest.raises(InputError, match=r"has only \d+ windows of 200 bp with GC in \[0\.\d\d, 0\.\d\d\).*but 100000 "
                                         r"are needed.*fewer windows, use fewer GC bins"):
        gc_matched_windows(ref, genome, n=100_000, length=200)
    with pytest.raises(InputError, match="has only 0 windows"):
        gc_matched_windows(ref, genome, n=1, length=200, exclude=[("chr10", 0, 110_000)])
    with pytest.raises(InputError, match="has no window of 200000 bp"):
        gc_matched_windows(ref, genome, n=1, length=200_000)
    with pytest.raises(InputError, match="no called base"):
        gc_matched_windows(one_hot_encode(["NNNN"]), genome, n=1, length=4)
    with pytest.raises(InputError, match=r"exclude\[0\] is 'chr10'.*triple"):
        gc_matched_windows(ref, genome, n=1, length=200, exclude=["chr10"])
    with pytest.raises(InputError, match=r"exclude\[0\] has start=5, end=5"):
        gc_matched_windows(ref, genome, n=1, length=200, exclude=[("chr10", 5, 5)])
    with pytest.raises(InputTypeError, match="exclude must be None"):
        gc_matched_windows(ref, genome, n=1, length=200, exclude=3)
    with pytest.raises(InputError, match="bins == 0"):
        gc_matched_windows(ref, genome, n=1, length=200, bins=0)
    with pytest.raises(MissingFileError, match="genome file"):
        gc_matched_windows(ref, genome.with_name("absent.fa"), n=1, length=200)


# --- targets TSV ----------------------------------------------------------------------------------------------


def test_targets_align_by_name(small, tmp_path):
    # Oracle: the TSV rows are written in another order than the FASTA; each sequence must get its own row.
    records, fasta = small
    labels = {"s1": (1, 0, 2.5), "s2": (0, 1, -1.0), "s3": (1, 1, 0.0), "s4": (0, 0, 7.0), "s5": (1, 0, 3.0)}
    tsv = write_tsv(tmp_path / "t.tsv", [("id", "CTCF", "JUND", "signal")] +
                    [(n, *labels[n]) for n in ("s4", "s2", "s5", "s1", "s3")])
    data = read_labelled(fasta, targets=tsv)
    assert data.names == tuple(n for n, _ in records) and decode(data.X) == [s for _, s in records]
    assert data.targets == ("CTCF", "JUND", "signal") and data.task == "regression"
    np.testing.assert_array_equal(data.y, np.array([labels[n] for n, _ in records], dtype=np.float32))
    # Task detection: one 0/1 column -> binary, several -> multilabel.
    binary = write_tsv(tmp_path / "b.tsv", [("id", "CTCF")] + [(n, labels[n][0]) for n in ("s3", "s1", "s5", "s2", "s4")])
    assert read_labelled(fasta, targets=binary).task == "binary"
    multi = write_tsv(tmp_path / "m.tsv", [("id", "CTCF", "JUND")] + [(n, *labels[n][:2]) for n in labels])
    data = read_labelled(fasta, targets=multi)
    assert data.task == "multilabel" and data.y.tolist() == [list(labels[n][:2]) for n, _ in records]
    assert read_labelled(fasta, targets=multi, task="regression").task == "regression"  # allowed on 0/1


def test_task_override_errors(small, tmp_path):
    records, fasta = small
    reals = write_tsv(tmp_path / "r.tsv", [("id", "signal")] + [(n, i + 0.5) for i, (n, _) in enumerate(records)])
    with pytest.raises(InputError, match=r"task='binary' needs 0/1 labels.*'s1', target 'signal' is 0\.5.*regression"):
        read_labelled(fasta, targets=reals, task="binary")
    two = write_tsv(tmp_path / "two.tsv", [("id", "a", "b")] + [(n, 1, i % 2) for i, (n, _) in enumerate(records)])
    with pytest.raises(InputError, match=r"task='binary' needs one target but there are 2.*task='multilabel'"):
        read_labelled(fasta, targets=two, task="binary")
    one = write_tsv(tmp_path / "one.tsv", [("id", "a")] + [(n, i % 2) for i, (n, _) in enumerate(records)])
    with pytest.raises(InputError, match=r"task='multilabel' needs more than one target.*task='binary'"):
        read_labelled(fasta, targets=one, task="multilabel")
    with pytest.raises(InputError, match="task == 'classify', must be one of"):
        read_labelled(fasta, targets=one, task="classify")


@pytest.mark.parametrize(("rows", "match"), [
    ([("id", "a"), ("s1", 1), ("s2", 0)], r"has no row for 3 of the 5 sequences \(first: 's3', 's4', 's5'\)"),
    ([("id", "a")] + [(f"s{i}", 1) for i in range(1, 7)], r"line 7: row 's6' matches no sequence \(1 of 6 rows match none\)"),
    ([("id",), ("s1",)], r"header with 1 column \('id'\).*then one column per target"),
    ([("s1", "1")], "looks like data, not a header"),
    ([("id", "a", "a")], "empty or repeated target names"),
    ([("id", "a"), ("s1", 1), ("s1", 0)], r"two rows for 's1' \(lines 2 and 3\)"),
    ([("id", "a"), ("s1", "high")], r"line 2, column 'a': 'high' is not a number"),
    ([("id", "a"), ("s1", "inf")], r"line 2, column 'a' is 'inf'; targets must be finite"),
    ([("id", "a", "b"), ("s1", 1)], r"line 2 has 2 fields but the header has 3"),
    ([("id", "a")], "has a header but no rows"),
    ([], "is empty"),
])
def test_targets_file_errors(small, tmp_path, rows, match):
    _, fasta = small
    with pytest.raises(InputError, match=match):
        read_labelled(fasta, targets=write_tsv(tmp_path / "bad.tsv", rows))


def test_missing_targets(small, tmp_path):
    # Decision: missing regression targets drop their sequence (with a warning); missing 0/1 labels are errors.
    records, fasta = small
    tsv = write_tsv(tmp_path / "r.tsv", [("id", "x", "y")] + [(n, i + 0.5, "NA" if i == 2 else i) for i, (n, _)
                                                               in enumerate(records)])
    with pytest.warns(InterpkitWarning, match=r"dropped 1 of 5 sequences with a missing target.*'s3'"):
        data = read_labelled(fasta, targets=tsv)
    assert data.names == ("s1", "s2", "s4", "s5") and data.params["dropped_missing"] == 1
    np.testing.assert_array_equal(data.y[:, 0], [0.5, 1.5, 3.5, 4.5])
    labels = write_tsv(tmp_path / "l.tsv", [("id", "a")] + [(n, "" if i == 1 else i % 2) for i, (n, _)
                                                            in enumerate(records)])
    with pytest.raises(InputError, match=r"'s2' has no value for target 'a', and 0/1 labels cannot be missing"):
        read_labelled(fasta, targets=labels)
    empty = write_tsv(tmp_path / "e.tsv", [("id", "a", "b")] + [(n, 0.5, "nan") for n, _ in records])
    with pytest.raises(InputError, match="every sequence misses a value"):
        read_labelled(fasta, targets=empty)


# --- normalisation --------------------------------------------------------------------------------------------


def _regression(tmp_path, values):
    records = [(f"r{i}", "".join("ACGT"[(i >> 2 * k) & 3] for k in range(6))) for i in range(len(values))]
    fasta = write_fasta(tmp_path / "r.fa", records)
    return fasta, write_tsv(tmp_path / "r.tsv", [("id", "y")] + [(n, v) for (n, _), v in zip(records, values)])


def test_normalise_zscore(tmp_path):
    # Oracle: y = 1..5 has mean 3 and population std sqrt(2).
    fasta, tsv = _regression(tmp_path, [1, 2, 3, 4, 5])
    data = read_labelled(fasta, targets=tsv, normalise="zscore")
    np.testing.assert_allclose(data.y[:, 0], (np.arange(1, 6) - 3) / math.sqrt(2), rtol=1e-6)
    assert data.normalisation["method"] == "zscore"
    np.testing.assert_allclose(data.normalisation["mean"], [3.0])
    np.testing.assert_allclose(data.normalisation["std"], [math.sqrt(2)])
    assert read_labelled(fasta, targets=tsv).normalisation is None


def test_normalise_clip(tmp_path):
    # Oracle (ResidualBind clip_norm): 15 zeros and one x have std x*sqrt(15)/16 < x/4, so x is clipped to
    # c = 4*std = x*sqrt(15)/4; 15 zeros and one c z-score to -1/sqrt(15) and sqrt(15).
    fasta, tsv = _regression(tmp_path, [0] * 15 + [8])
    data = read_labelled(fasta, targets=tsv, normalise="clip")
    np.testing.assert_allclose(data.normalisation["clip_max"], [8 * math.sqrt(15) / 4])
    json.dumps(data.normalisation)  # training metadata stores it
    np.testing.assert_allclose(data.y[:15, 0], -1 / math.sqrt(15), rtol=1e-6)
    np.testing.assert_allclose(data.y[15, 0], math.sqrt(15), rtol=1e-6)


def test_normalise_log(tmp_path):
    # Oracle (ResidualBind log_norm): y = 0, e-1, e^2-1 -> log(y - 0 + 1) = 0, 1, 2 -> z = -sqrt(3/2), 0, sqrt(3/2).
    fasta, tsv = _regression(tmp_path, [0, math.e - 1, math.e**2 - 1])
    data = read_labelled(fasta, targets=tsv, normalise="log")
    np.testing.assert_allclose(data.y[:, 0], [-math.sqrt(1.5), 0, math.sqrt(1.5)], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.normalisation["min"], [0.0])
    np.testing.assert_allclose(data.normalisation["mean"], [1.0])


def test_normalise_errors(tmp_path, small):
    _, fasta = small
    binary = write_tsv(tmp_path / "b.tsv", [("id", "a")] + [(f"s{i}", i % 2) for i in range(1, 6)])
    with pytest.raises(InputError, match=r"normalise='zscore' applies to regression.*task is 'binary'"):
        read_labelled(fasta, targets=binary, normalise="zscore")
    const = write_tsv(tmp_path / "c.tsv", [("id", "a")] + [(f"s{i}", 2.5) for i in range(1, 6)])
    with pytest.raises(InputError, match="target 'a' is constant after normalise='zscore'"):
        read_labelled(fasta, targets=const, normalise="zscore")
    with pytest.raises(InputError, match="normalise == 'minmax', must be one of"):
        read_labelled(fasta, targets=const, normalise="minmax")


# --- duplicates, inputs and negatives files -------------------------------------------------------------------


def test_duplicates_merge_and_keep(tmp_path):
    # Decision: identical sequences (case ignored) merge into the first copy, label = max (as ExplaiNN's
    # groupby(seq).max()) for classification, mean for regression; duplicates='keep' keeps them.
    records = [("a", "ACGTACGT"), ("b", "GGGGCCCC"), ("c", "acgtacgt"), ("d", "TTTTAAAA")]
    fasta = write_fasta(tmp_path / "d.fa", records)
    labels = write_tsv(tmp_path / "l.tsv", [("id", "t")] + [("a", 0), ("b", 1), ("c", 1), ("d", 0)])
    with pytest.warns(InterpkitWarning, match=r"merged 1 sequences.*label = the max"):
        data = read_labelled(fasta, targets=labels)
    assert data.names == ("a", "b", "d") and data.y[:, 0].tolist() == [1, 1, 0]
    assert data.params["merged_duplicates"] == 1
    values = write_tsv(tmp_path / "v.tsv", [("id", "t")] + [("a", 1.0), ("b", 5.0), ("c", 2.0), ("d", 0.5)])
    with pytest.warns(InterpkitWarning, match="label = the mean"):
        data = read_labelled(fasta, targets=values)
    assert data.y[:, 0].tolist() == [1.5, 5.0, 0.5]
    assert len(read_labelled(fasta, targets=values, duplicates="keep")) == 4
    with pytest.raises(InputError, match="duplicates == 'drop', must be one of"):
        read_labelled(fasta, targets=values, duplicates="drop")


def test_npy_and_negatives_file(tmp_path, small):
    # Oracle: .npy records are named seq0, seq1, ... (read_sequences); negatives from a file get label 0.
    records, fasta = small
    X = one_hot_encode([s for _, s in records])
    np.save(tmp_path / "x.npy", X)
    tsv = write_tsv(tmp_path / "t.tsv", [("id", "a")] + [(f"seq{i}", i % 2) for i in range(5)])
    data = read_labelled(tmp_path / "x.npy", targets=tsv)
    np.testing.assert_array_equal(data.X, X)
    assert data.y[:, 0].tolist() == [0, 1, 0, 1, 0]
    negs = write_fasta(tmp_path / "neg.fa", [("n1", "CCCCAAAAGG"), ("n2", "TTGGCCAAT"), ("n3", "ATATATATGC")])
    data = read_labelled(fasta, negatives=negs, length=8)
    assert data.names == ("s1", "s2", "s3", "s4", "s5", "n1", "n2", "n3") and data.y[:, 0].tolist() == [1] * 5 + [0] * 3
    assert decode(data.X[5:]) == ["CCCAAAAG", "TTGGCCAA", "TATATATG"]  # 10 bp -> crop start 1; 9 bp -> start 0
    sub = read_labelled(fasta, negatives=negs, length=8, n_negatives=2)
    assert len(sub) == 7 and set(sub.names[5:]) < {"n1", "n2", "n3"}
    with pytest.raises(InputError, match="n_negatives == 4 but negatives file .* holds 3 records"):
        read_labelled(fasta, negatives=negs, length=8, n_negatives=4)


def test_bed_with_targets(shared, chr10, tmp_path):
    # Oracle: windows centred on the BED intervals, cut from the genome text; targets matched by BED name.
    bed = tmp_path / "w.bed"
    bed.write_text("chr10\t70000\t70100\tp1\nchr10\t80000\t80010\tp2\nchr10\t90000\t90100\tp3\n")
    tsv = write_tsv(tmp_path / "t.tsv", [("name", "signal"), ("p3", 3.5), ("p1", 1.5), ("p2", 2.0)])
    data = read_labelled(bed=bed, genome=shared / GENOME, length=40, targets=tsv)
    assert data.names == ("p1", "p2", "p3") and data.y[:, 0].tolist() == [1.5, 2.0, 3.5]
    assert decode(data.X) == [chr10[70030:70070].upper(), chr10[79985:80025].upper(), chr10[90030:90070].upper()]


def test_rna(tmp_path):
    fasta = write_fasta(tmp_path / "rna.fa", [("r1", "ACGUACGU"), ("r2", "GGGGUUUU")])
    tsv = write_tsv(tmp_path / "t.tsv", [("id", "k"), ("r1", 0.3), ("r2", 1.2)])
    data = read_labelled(fasta, targets=tsv, alphabet="ACGU")
    assert data.alphabet == "ACGU" and decode(data.X, "ACGU") == ["ACGUACGU", "GGGGUUUU"]
    with pytest.raises(InputError, match="RNA .*single-stranded.*train without reverse complements"):
        data.with_reverse_complements()
    with pytest.raises(InputError, match="alphabet == 'ACGN', must be one of"):
        read_labelled(fasta, targets=tsv, alphabet="ACGN")


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({}, InputError, "pass exactly one of sequences=.*got neither"),
    ({"sequences": "S", "bed": "x.bed", "negatives": "dinuc"}, InputError, "got both"),
    ({"bed": "x.bed", "negatives": "dinuc"}, InputError, "bed= needs genome=.*and length="),
    ({"sequences": "S"}, InputError, "pass exactly one of targets=.*got neither"),
    ({"sequences": "S", "targets": "t.tsv", "negatives": "dinuc"}, InputError, "targets=.*got both"),
    ({"sequences": "S", "negatives": "dinucc"}, InputError, "negatives == 'dinucc', must be 'dinuc'"),
    ({"sequences": "S", "negatives": 3}, InputTypeError, "negatives must be"),
    ({"sequences": "S", "negatives": "absent.fa"}, MissingFileError, "negatives file absent.fa does not exist"),
    ({"sequences": "S", "negatives": "dinuc", "genome": "g.fa"}, InputError, "genome= is only read with bed="),
    ({"sequences": "S", "negatives": "gc"}, InputError, "negatives='gc'.*pass genome="),
    ({"sequences": "S", "targets": "t.tsv", "n_negatives": 5}, InputError, "n_negatives is only used"),
    ({"sequences": "S", "negatives": "dinuc", "n_negatives": 0}, InputError, "n_negatives == 0, must be >= 1"),
    ({"sequences": "S", "negatives": "dinuc", "length": 2.5}, InputTypeError, "length must be int"),
    ({"sequences": "S", "negatives": "dinuc", "random_state": -1}, InputError, "random_state == -1"),
    ({"sequences": "absent.fa", "negatives": "dinuc"}, MissingFileError, "sequences file absent.fa does not exist"),
    ({"sequences": "S", "targets": "absent.tsv"}, MissingFileError, "targets file absent.tsv does not exist"),
])
def test_read_labelled_raises(small, kwargs, error, match):
    _, fasta = small
    kwargs = {k: fasta if v == "S" else v for k, v in kwargs.items()}
    with pytest.raises(error, match=match):
        read_labelled(**kwargs)


def test_repeated_names_with_targets(tmp_path):
    fasta = write_fasta(tmp_path / "r.fa", [("x", "ACGT"), ("x", "GGCC")])
    tsv = write_tsv(tmp_path / "t.tsv", [("id", "a"), ("x", 1)])
    with pytest.raises(InputError, match=r"sequence names repeat \('x'\)"):
        read_labelled(fasta, targets=tsv)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "seqs.txt"
    path.write_text("ACGT\n")
    with pytest.raises(InputError, match="unknown suffix"):
        read_labelled(path, negatives="dinuc")


# --- the dataset object ---------------------------------------------------------------------------------------


def test_reverse_complements(shared):
    # Oracle: reverse complement computed on test-side decoded strings and re-encoded.
    data = read_labelled(shared / PEAKS, negatives="dinuc", n_negatives=20).subset(slice(0, 30))
    rc = data.with_reverse_complements()
    assert len(rc) == 60 and rc.names[30:] == tuple(f"{n}(-)" for n in data.names)
    expected = ["".join(PAIRS[c] for c in reversed(s)) for s in decode(data.X)]
    assert decode(rc.X[30:]) == expected and decode(rc.X[:30]) == decode(data.X)
    np.testing.assert_array_equal(rc.y, np.concatenate([data.y, data.y]))


def test_subset_and_validation():
    X = one_hot_encode(["ACGT", "GGCC", "TTAA"])
    data = LabelledSequences(X, [[1], [0], [1]], ("a", "b", "c"), ("t",), "binary")
    assert len(data) == 3 and data.length == 4 and "N=3, L=4" in repr(data)
    sub = data.subset([2, 0])
    assert sub.names == ("c", "a") and sub.y[:, 0].tolist() == [1, 1] and decode(sub.X) == ["TTAA", "ACGT"]
    assert data.subset(np.array([False, True, False])).names == ("b",) and data.subset(1).names == ("b",)
    with pytest.raises(InputError, match="index is not a valid index into 3 sequences"):
        data.subset([5])
    with pytest.raises(InputError, match="index is not a valid index"):
        data.subset(np.array([True, False]))
    with pytest.raises(InputError, match=r"y has shape \(2, 1\) but X holds 3"):
        LabelledSequences(X, [[1], [0]], ("a", "b", "c"), ("t",), "binary")
    with pytest.raises(InputError, match="names has 2 entries"):
        LabelledSequences(X, [[1], [0], [1]], ("a", "b"), ("t",), "binary")
    with pytest.raises(InputError, match="targets has 2 names but y has 1 columns"):
        LabelledSequences(X, [[1], [0], [1]], ("a", "b", "c"), ("t", "u"), "binary")
    with pytest.raises(InputError, match="task == 'ranking'"):
        LabelledSequences(X, [[1], [0], [1]], ("a", "b", "c"), ("t",), "ranking")
    with pytest.raises(InputError, match="NaN or infinite"):
        LabelledSequences(X, [[1], [np.nan], [1]], ("a", "b", "c"), ("t",), "regression")
    with pytest.raises(InputError, match=r"task='binary' needs 0/1 labels.*'b'.*is 0\.5"):
        LabelledSequences(X, [[1], [0.5], [1]], ("a", "b", "c"), ("t",), "binary")
    with pytest.raises(InputError, match=r"X\[0, 0, 0\] = .*2\.0.*holds only 0 and 1"):
        LabelledSequences(X * 2, [[1], [0], [1]], ("a", "b", "c"), ("t",), "binary")


# --- splits ---------------------------------------------------------------------------------------------------


def _binary(n_pos: int, n_neg: int, L: int = 12) -> LabelledSequences:
    rng = np.random.default_rng(0)
    X = np.eye(4, dtype=np.float32)[:, rng.integers(0, 4, (n_pos + n_neg, L))].transpose(1, 0, 2)
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)][:, None]
    return LabelledSequences(X, y, tuple(f"q{i}" for i in range(len(y))), ("t",), "binary")


def test_split_stratified_reproducible():
    # Oracle: 300 positives and 700 negatives split 10 % / 10 % must give exactly 30 + 70 per held-out split.
    data = _binary(300, 700)
    train, valid, test = split(data, valid=0.1, test=0.1, random_state=0)
    assert (len(train), len(valid), len(test)) == (800, 100, 100)
    assert valid.y.sum() == 30 and test.y.sum() == 30 and train.y.sum() == 240
    sets = [set(part.names) for part in (train, valid, test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set.union(*sets) == set(data.names)
    assert [p.params["split"] for p in (train, valid, test)] == ["train", "valid", "test"]
    again = split(data, valid=0.1, test=0.1, random_state=0)
    assert all(a.names == b.names for a, b in zip(again, (train, valid, test)))
    other = split(data, valid=0.1, test=0.1, random_state=1)
    assert other[1].names != valid.names and other[2].names != test.names
    unstratified = split(data, valid=0.1, test=0.1, stratify=False)
    assert len(unstratified[1]) == 100 and unstratified[1].names != valid.names


def test_split_rare_class_and_empty_test():
    # Oracle: 3 positives among 97 negatives: every split gets exactly one (at least one each, 3 in all).
    train, valid, test = split(_binary(3, 97), valid=0.1, test=0.1)
    assert train.y.sum() == valid.y.sum() == test.y.sum() == 1
    train, valid, test = split(_binary(10, 10), valid=0.25, test=0)
    assert (len(train), len(valid), len(test)) == (15, 5, 0) and test.X.shape == (0, 4, 12)
    with pytest.raises(InputError, match=r"(training|validation|test) split .* has no sequence labelled 1.*only 2"):
        split(_binary(2, 98), valid=0.1, test=0.1)
    with pytest.raises(InputError, match=r"(validation|test) split \(1 sequences\) has no sequence labelled .*stratify=True"):
        split(_binary(10, 10), valid=0.05, test=0.05, stratify=False, random_state=0)


def test_split_multilabel_and_regression(tmp_path):
    rng = np.random.default_rng(1)
    X = np.eye(4, dtype=np.float32)[:, rng.integers(0, 4, (200, 10))].transpose(1, 0, 2)
    y = np.c_[np.arange(200) % 2, np.arange(200) % 4 == 0].astype(np.float32)
    data = LabelledSequences(X, y, tuple(map(str, range(200))), ("a", "b"), "multilabel")
    train, valid, test = split(data, valid=0.1, test=0.1)
    # Oracle: label combinations (0,0), (0,1), (1,0) occur 50/50/100 times: 10 % of each is 5/5/10.
    for part in (valid, test):
        assert part.y[:, 0].sum() == 10 and part.y[:, 1].sum() == 5 and (part.y.sum(axis=1) == 0).sum() == 5
    assert len(train) == 160
    # A target positive in one sequence only leaves at least one held-out split with a single class.
    y1 = y.copy()
    y1[:, 1] = np.arange(200) == 7
    rare = LabelledSequences(X, y1, tuple(map(str, range(200))), ("a", "b"), "multilabel")
    with pytest.warns(InterpkitWarning, match=r"split, 1 targets have a single class \('b'\)"):
        split(rare, valid=0.1, test=0.1)
    reg = LabelledSequences(X, rng.normal(size=(200, 1)), tuple(map(str, range(200))), ("s",), "regression")
    assert [len(p) for p in split(reg, valid=0.2, test=0.3)] == [100, 40, 60]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"valid": 0}, InputError, r"valid == 0, must be in \(0, 1\)"),
    ({"valid": 1.0}, InputError, r"valid == 1\.0, must be in \(0, 1\)"),
    ({"test": -0.1}, InputError, r"test == -0\.1, must be in \[0, 1\)"),
    ({"valid": 0.5, "test": 0.5}, InputError, "valid \\+ test == 1, must be < 1"),
    ({"valid": "0.1"}, InputTypeError, "valid must be float or int"),
    ({"stratify": "yes"}, InputTypeError, "stratify must be True or False"),
    ({"random_state": "seed"}, InputTypeError, "random_state must be None"),
])
def test_split_raises(kwargs, error, match):
    with pytest.raises(error, match=match):
        split(_binary(10, 10), **kwargs)


def test_split_raises_data():
    with pytest.raises(InputTypeError, match="data must be a LabelledSequences"):
        split(np.zeros((3, 4, 5)))
    with pytest.raises(InputError, match="data has 3 sequences, too few"):
        split(_binary(2, 1), valid=0.5, test=0.4)
    with pytest.raises(InputError, match=r"every sequence has the labels \[1\].*negatives='dinuc'"):
        split(_binary(20, 0))
