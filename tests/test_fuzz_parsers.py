"""Fuzzing the file parsers (FASTA, .npy, BED, MEME, targets TSV) with hypothesis.

Property: on arbitrary bytes, and on valid files mutated a little, a parser returns a valid
result or raises an :class:`~interpkit.errors.InterpkitError` (which the CLI shows as one line);
any other exception (IndexError, UnicodeDecodeError, zlib.error, a plain ValueError ...) is a bug.
Round trips: what our writers (or a plain writer of the format) write reads back unchanged.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interpkit.datasets import _read_targets, read_labelled
from interpkit.errors import InterpkitError
from interpkit.meme import MemeFile, read_meme, write_meme
from interpkit.motifs import Motif
from interpkit.sequences import (
    _parse_bed,
    iter_fasta,
    one_hot_decode,
    read_bed_windows,
    read_fasta,
    read_sequences,
)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
pytestmark = pytest.mark.filterwarnings("ignore::interpkit.errors.InterpkitWarning",  # e.g. dropped rows
                                        "ignore:Reading `.npy`:UserWarning")  # numpy on a damaged header


def parse(func, *args, **kwargs):
    """``func(*args, **kwargs)``, or None when it raises a user error; anything else propagates."""
    try:
        return func(*args, **kwargs)
    except InterpkitError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), repr(exc)  # one line for the CLI
        return None


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    """One folder per test module; each example overwrites its file there."""
    return tmp_path_factory.mktemp("fuzz")


# --- mutations of valid files ---------------------------------------------------------------------------

# Tokens that make a mutation meet a parser's branches: separators, numbers at the edges, keywords.
TOKENS = ["\n", "\r\n", "\t", " ", ">", "#", "=", ":", "-", "+", ".", "0", "1", "-1", "0.5", "1e400", "nan", "inf",
          "-inf", "1_0", "\u0661", "NA", "N", "U", "Z", "\x00", "\xff", "\u00e9", '"', "MOTIF", "URL",
          "letter-probability matrix:", "log-odds matrix:", "alength=", "w=", "w= 0", "w= nan", "nsites=",
          "nsites= inf", "E=", "ALPHABET=", "strands:", "Background letter frequencies", "MEME version 4",
          "track", "browser", "chr1", "chrX"]


@st.composite
def mutated(draw, valid: str, encoding: str = "utf-8") -> bytes:
    """``valid`` after 1-4 random edits: replace a word by a token, insert a token or random text, delete
    or duplicate a span or a line, truncate; then encoded (sometimes with a stray Latin-1 byte)."""
    text = valid
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["token", "word", "word", "text", "delete", "line", "duplicate", "truncate"]))
        i = draw(st.integers(0, len(text)))
        words = list(re.finditer(r"[^\s=:]+", text))
        if op == "word" and words:  # replace one word (a number, keyword, name) by a token
            w = words[draw(st.integers(0, len(words) - 1))]
            text = text[:w.start()] + draw(st.sampled_from(TOKENS)) + text[w.end():]
        elif op == "token":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        elif op == "text":
            text = text[:i] + draw(st.text(max_size=8)) + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 12)):]
        elif op == "line":
            lines = text.splitlines(keepends=True)
            if lines:
                del lines[draw(st.integers(0, len(lines) - 1))]
            text = "".join(lines)
        elif op == "duplicate":
            j = draw(st.integers(i, min(len(text), i + 40)))
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i]
    data = text.encode(encoding, "replace")
    if draw(st.booleans()) and data:
        k = draw(st.integers(0, len(data) - 1))
        data = data[:k] + b"\xe9" + data[k:]
    return data


def any_bytes(valid: str) -> st.SearchStrategy[bytes]:
    """Mutated valid files (most examples), random text or random bytes."""
    return st.one_of(mutated(valid), mutated(valid), mutated(valid), st.text().map(str.encode), st.binary())


# --- FASTA and .npy ---------------------------------------------------------------------------------

FASTA = ">one desc\nACGTN\nacgtr\n>two\nGGGCCCAAAT\n\n>three\nACGTACGTAC\n"


def check_sequences(result):
    """A read_sequences result: names and an (N, 4, L) float32 one-hot array, N >= 1."""
    if result is None:
        return
    names, X = result
    assert isinstance(names, list) and all(isinstance(n, str) for n in names)
    assert X.dtype == np.float32 and X.ndim == 3 and X.shape[0] == len(names) >= 1 and X.shape[1] == 4
    assert set(np.unique(X)) <= {0.0, 1.0} and (X.sum(axis=1) <= 1).all()


@FUZZ
@given(data=any_bytes(FASTA), gz=st.booleans(), length=st.sampled_from([None, 10]))
def test_fasta_parsers_raise_only_user_errors(tmp, data, gz, length):
    path = tmp / ("x.fa.gz" if gz else "x.fa")
    path.write_bytes(gzip.compress(data) if gz else data)
    records = parse(read_fasta, path)
    if records is not None:
        names, seqs = records
        assert len(names) == len(seqs) >= 1 and all(seqs) and all(isinstance(s, str) for s in seqs)
        assert parse(lambda: list(iter_fasta(path))) == list(zip(names, seqs))
    check_sequences(parse(read_sequences, path, length=length))


@FUZZ
@given(data=st.binary(min_size=1, max_size=200), cut=st.integers(0, 100))
def test_gzip_damage_is_a_user_error(tmp, data, cut):
    """A truncated or bit-flipped .gz (zlib.error, EOFError, BadGzipFile inside) is an InputError."""
    packed = bytearray(gzip.compress(b">a\nACGT\n" + data))
    packed[min(cut, len(packed) - 1)] ^= 0xFF
    path = tmp / "x.fa.gz"
    path.write_bytes(bytes(packed[: len(packed) - cut // 3]))
    check_sequences(parse(read_sequences, path))


def npy_bytes(X) -> str:
    buffer = io.BytesIO()
    np.save(buffer, X)
    return buffer.getvalue().decode("latin-1")


NPY = npy_bytes(np.eye(4, dtype=np.float32)[None].repeat(2, axis=0))


@FUZZ
@given(data=st.one_of(mutated(NPY, "latin-1"), st.binary()))
def test_npy_reader_raises_only_user_errors(tmp, data):
    path = tmp / "x.npy"
    path.write_bytes(data)
    check_sequences(parse(read_sequences, path))


NAME = st.text(string.ascii_letters + string.digits + "_.:|-()", min_size=1, max_size=12)


@FUZZ
@given(records=st.lists(st.tuples(NAME, st.text("ACGTNacgtnRY", min_size=1, max_size=50)), min_size=1, max_size=5),
       width=st.integers(1, 60), crlf=st.booleans())
def test_fasta_round_trip(tmp, records, width, crlf):
    newline = "\r\n" if crlf else "\n"
    text = "".join(f">{name} some description{newline}"
                   + "".join(seq[i:i + width] + newline for i in range(0, len(seq), width)) for name, seq in records)
    path = tmp / "rt.fa"
    path.write_bytes(text.encode())
    assert read_fasta(path) == ([n for n, _ in records], [s for _, s in records])
    if len({len(s) for _, s in records}) == 1:
        decoded = one_hot_decode(read_sequences(path)[1])
        assert decoded == [s.upper().replace("R", "N").replace("Y", "N") for _, s in records]


# --- BED ---------------------------------------------------------------------------------------------

CHROMS = {"chr1": "ACGTTGCAAC" * 10, "chr2": "GGGCCCATAT" * 6}  # 100 bp and 60 bp
BED = "track name=x\n# comment\nchr1\t10\t30\tpeak1\t0\t+\nchr2 5 25 peak2 0 -\nchr1\t40\t90\n"


@pytest.fixture(scope="module")
def genome(tmp):
    import pyfaidx

    path = tmp / "genome.fa"
    path.write_text("".join(f">{c}\n{s}\n" for c, s in CHROMS.items()))
    pyfaidx.Fasta(path).close()  # an up-to-date .fai beside it, so open_genome does not index per example
    return path


@FUZZ
@given(data=any_bytes(BED), length=st.integers(1, 40))
def test_bed_parsers_raise_only_user_errors(tmp, genome, data, length):
    path = tmp / "x.bed"
    path.write_bytes(data)
    rows = parse(_parse_bed, path)
    if rows is not None:
        for lineno, chrom, start, end, name, minus in rows:
            assert lineno >= 1 and chrom and 0 <= start < end and name and isinstance(minus, bool)
    result = parse(read_bed_windows, path, genome, length=length)
    check_sequences(result)
    if result is not None:
        assert result[1].shape == (len(rows), 4, length)


PAIRS = str.maketrans("ACGT", "TGCA")


@FUZZ
@given(intervals=st.lists(st.tuples(st.sampled_from(sorted(CHROMS)), st.integers(0, 59), st.integers(1, 40),
                                    st.sampled_from(["", "+", "-", "."])), min_size=1, max_size=6),
       length=st.integers(1, 20), sep=st.sampled_from(["\t", " "]))
def test_bed_round_trip(tmp, genome, intervals, length, sep):
    """Windows equal slices of the genome string (reverse-complemented on "-"), lo = mid - length // 2."""
    lines, expected = [], []
    for k, (chrom, start, size, strand) in enumerate(intervals):
        end = min(start + size, len(CHROMS[chrom]))
        cols = [chrom, str(start), str(end)] + ([f"p{k}", "0", strand] if strand else [])
        lines.append(sep.join(cols))
        lo = (start + end) // 2 - length // 2
        window = CHROMS[chrom][max(lo, 0):lo + length]
        expected.append(window.translate(PAIRS)[::-1] if strand == "-" else window)
    path = tmp / "rt.bed"
    path.write_text("\n".join(lines) + "\n")
    rows = _parse_bed(path)
    assert [(r[1], r[2], r[3], r[5]) for r in rows] == [(c, s, min(s + z, len(CHROMS[c])), t == "-")
                                                       for c, s, z, t in intervals]
    fits = all(len(w) == length for w in expected) and all(lo >= 0 for lo in
                                                           ((r[2] + r[3]) // 2 - length // 2 for r in rows))
    result = parse(read_bed_windows, path, genome, length=length)
    assert (result is not None) == fits  # an error exactly when a window runs off its chromosome
    if fits:
        assert one_hot_decode(result[1]) == expected


# --- MEME ----------------------------------------------------------------------------------------------

MEME = """MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.3 C 0.2 G 0.2 T 0.3

MOTIF m1 TF one
letter-probability matrix: alength= 4 w= 2 nsites= 20 E= 1e-5
0.1 0.2 0.3 0.4
1 0 0 0
URL https://x.org/m1

MOTIF m2
log-odds matrix: alength= 4 w= 1
1 -1 0.5 -2
letter-probability matrix: alength= 4
0.25 0.25 0.25 0.25
"""


@FUZZ
@given(data=any_bytes(MEME))
def test_meme_reader_raises_only_user_errors(tmp, data):
    path = tmp / "x.meme"
    path.write_bytes(data)
    meme = parse(read_meme, path)
    if meme is not None:
        assert isinstance(meme, MemeFile) and meme.motifs
        for m in meme.motifs:
            assert m.ppm.shape == (4, m.width) and np.allclose(m.ppm.sum(axis=0), 1, atol=1e-3)


@st.composite
def motifs(draw):
    out = []
    for k in range(draw(st.integers(1, 3))):
        width = draw(st.integers(1, 6))
        weights = np.array(draw(st.lists(st.floats(0.01, 100), min_size=4 * width, max_size=4 * width)))
        ppm = weights.reshape(4, width) / weights.reshape(4, width).sum(axis=0)
        nsites = draw(st.none() | st.integers(0, 10**6))
        evalue = draw(st.none() | st.floats(0, 1e300))
        url = draw(st.none() | st.text(string.ascii_letters + string.digits + ":/.", min_size=1, max_size=20))
        name = draw(st.text(string.ascii_letters + " ", max_size=10))
        out.append(Motif(f"m{k}", ppm, name, draw(st.sampled_from(["ACGT", "ACGU"])) if k == 0 else out[0].alphabet,
                         nsites, evalue, url))
    return out


@FUZZ
@given(found=motifs(), background=st.none() | st.lists(st.floats(0.05, 1), min_size=4, max_size=4),
       strands=st.sampled_from(["+ -", "+"]))
def test_meme_round_trip(tmp, found, background, strands):
    bg = None if background is None else np.array(background) / np.sum(background)
    path = write_meme(tmp / "rt.meme", found, background=bg, strands=strands, overwrite=True)
    back, expected = read_meme(path), MemeFile(tuple(found), found[0].alphabet, strands, bg)
    assert (back.motifs, back.alphabet, back.strands, back.version) == (expected.motifs, expected.alphabet, strands, "4")
    np.testing.assert_array_equal(back.background, expected.background)


# --- targets TSV -----------------------------------------------------------------------------------------

TSV = "name\tbound\tsignal\ns1\t1\t0.5\ns2\t0\tNA\ns3\t1\t-2e3\n"


@pytest.fixture(scope="module")
def fasta3(tmp):
    path = tmp / "s.fa"
    path.write_text(">s1\nACGTACGTAC\n>s2\nTTGACCAGTA\n>s3\nGGGCCCAATT\n")
    return path


@FUZZ
@given(data=any_bytes(TSV), gz=st.booleans())
def test_targets_reader_raises_only_user_errors(tmp, fasta3, data, gz):
    path = tmp / ("t.tsv.gz" if gz else "t.tsv")
    path.write_bytes(gzip.compress(data) if gz else data)
    table = parse(_read_targets, path)
    if table is not None:
        names, values, targets, lines = table
        assert len(set(names)) == len(names) == len(lines) >= 1 and values.shape == (len(names), len(targets))
        assert lines == sorted(set(lines)) and lines[0] >= 2
        assert not np.isinf(values).any()
    labelled = parse(read_labelled, fasta3, targets=path, duplicates="keep")
    if labelled is not None:
        assert labelled.X.shape[1:] == (4, 10) and labelled.y.shape == (len(labelled), len(labelled.targets))


CELL = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6), st.just(math.nan))


@FUZZ
@given(table=st.integers(1, 4).flatmap(lambda t: st.lists(st.lists(CELL, min_size=t, max_size=t), min_size=1,
                                                          max_size=6)))
def test_targets_round_trip(tmp, table):
    targets = [f"t{j}" for j in range(len(table[0]))]
    lines = ["\t".join(["name", *targets])] + ["\t".join([f"s{i}", *("NA" if math.isnan(v) else repr(v) for v in row)])
                                               for i, row in enumerate(table)]
    path = tmp / "rt.tsv"
    path.write_text("\n".join(lines) + "\n")
    names, values, target_names, lines = _read_targets(path)
    assert names == [f"s{i}" for i in range(len(table))] and target_names == targets
    assert lines == list(range(2, len(table) + 2))
    np.testing.assert_array_equal(values, np.array(table, dtype=np.float64))
