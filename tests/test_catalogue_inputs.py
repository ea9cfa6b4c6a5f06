"""Catalogue of bad input files, run through the command line as a user does.

Each case writes one bad FASTA, BED or targets TSV, runs ``python -m interpkit`` in a subprocess
and checks the failure (tests/_cli.py ``cli_error``): exit status 2, no traceback, one
``error: ...`` line that names the file, the record (name or line number) and the fix, and no
output directory left behind. Models: a MEME file (numpy backend, any length, receptive field
3 bp) and the bundled ExplaiNN (torch, 200 bp); ``interpkit train explainn`` for BED and TSV,
whose errors come before any training.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from _cli import cli_error, run_cli
from test_api import MEME  # one motif "acg", w = 3

import interpkit
from interpkit.tables import Table

EXPLAINN = Path(interpkit.__file__).parent / "data" / "default_model" / "model.pth"  # fixed length 200 bp
CHR1, CHR2 = "ACGTTGCAAC" * 20, "GGGCCCATAT" * 10  # 200 bp and 100 bp

PREDICT = ["run", "predict", "{meme}", "-s", "{file}", "-o", "{out}"]
PREDICT_200 = ["run", "predict", "{explainn}", "-s", "{file}", "-o", "{out}"]
TRAIN_BED = ["train", "explainn", "--bed", "{file}", "--genome", "{genome}", "--length", "40", "--negatives", "dinuc",
             "-o", "{out}"]
TRAIN_TSV = ["train", "explainn", "{seqs}", "--targets", "{file}", "-o", "{out}"]
OK_BED = "chr1\t10\t60\tp1\n"  # a good first line, so that the bad one is line 2
HEADER = "name\tbound\n"

CASES = [
    # --- FASTA ---
    pytest.param("absent.fa", None, PREDICT, ["absent.fa does not exist", "check the path"], id="fasta-missing"),
    pytest.param("empty.fa", "", PREDICT, ["empty.fa is not FASTA: no records", "pass a FASTA file"],
                 id="fasta-empty"),
    pytest.param("binary.fa", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", PREDICT,
                 ["binary.fa could not be read as FASTA text", "pass a plain or gzip-compressed FASTA file"],
                 id="fasta-binary"),
    pytest.param("damaged.fa.gz", gzip.compress(b">a\nACGTACGT\n" * 50)[:-12], PREDICT,
                 ["damaged.fa.gz could not be read as FASTA text", "gzip-compressed"], id="fasta-gzip-truncated"),
    pytest.param("prose.fa", "hello world\n>a\nACGT\n", PREDICT,
                 ["prose.fa is not FASTA: its first line 'hello world' does not start with '>'"], id="fasta-not-fasta"),
    pytest.param("z.fa", ">a\nACGTA\n>b\nACGTZ\n", PREDICT,
                 ["z.fa: sequence 'b' has 'Z' at position 5 (1-based)", "alphabet 'ACGT'", "IUPAC code (NRYSWKMBDHV)",
                  "replace it with N"], id="fasta-bad-character"),
    pytest.param("rna.fa", ">r1\nACGUA\n", PREDICT,
                 ["rna.fa: sequence 'r1' has 'U' at position 4", "looks like RNA", "replace U with T"],
                 id="fasta-rna-for-dna-model"),
    pytest.param("mixed.fa", ">a\nACGTACGT\n>b\nACGTA\n", PREDICT,
                 ["mixed.fa: record 'b' is 5 bp but the first record 'a' is 8 bp", "centre-crop or pad"],
                 id="fasta-mixed-lengths"),
    pytest.param("odd.fa", f">a\n{CHR1}\n>odd\n{CHR1[:150]}\n", PREDICT_200,
                 ["odd.fa: record 'odd' is 150 bp but length=200 bp is required", "pad shorter ones with N to 200 bp"],
                 id="fasta-shorter-than-model-length"),
    pytest.param("tiny.fa", ">a\nAC\n", PREDICT,
                 ["tiny.fa: record 'a' is 2 bp", "shorter than the model's receptive field (3 bp)", "at least 3 bp"],
                 id="fasta-shorter-than-receptive-field"),
    # --- BED (genome: chr1 200 bp, chr2 100 bp; windows of 40 bp) ---
    pytest.param("missing.bed", None, TRAIN_BED, ["BED file", "missing.bed does not exist"], id="bed-missing"),
    pytest.param("empty.bed", "track name=x\n", TRAIN_BED, ["empty.bed holds no intervals"], id="bed-empty"),
    pytest.param("binary.bed", b"\x00\x01\xff\xfe", TRAIN_BED, ["binary.bed line 1 is not text", "plain-text BED"],
                 id="bed-binary"),
    pytest.param("window.bed", OK_BED + "chr1\t170\t195\tp2\n", TRAIN_BED,
                 ["window.bed line 2: the 40 bp window chr1:162-202 runs off chr1 (0-200)", "smaller length"],
                 id="bed-window-off-chromosome"),
    pytest.param("past.bed", OK_BED + "chr2\t50\t130\n", TRAIN_BED,
                 ["past.bed line 2: the interval chr2:50-130 ends past the end of chr2 (100 bp", "matching genome"],
                 id="bed-end-beyond-chromosome"),
    pytest.param("chrom.bed", OK_BED + "chrX\t10\t60\n", TRAIN_BED,
                 ["chrom.bed line 2: chromosome 'chrX' is not in genome", "which has chr1, chr2",
                  "genome's chromosome names"], id="bed-unknown-chromosome"),
    pytest.param("negative.bed", OK_BED + "chr1\t-5\t60\n", TRAIN_BED,
                 ["negative.bed line 2 has start=-5, end=60", "0 <= start < end", "fix the coordinates"],
                 id="bed-negative-start"),
    pytest.param("empty_interval.bed", OK_BED + "chr1\t60\t60\n", TRAIN_BED,
                 ["empty_interval.bed line 2 has start=60, end=60", "0 <= start < end"], id="bed-start-not-below-end"),
    pytest.param("float.bed", OK_BED + "chr1\t10.5\t60\n", TRAIN_BED,
                 ["float.bed line 2", "its start '10.5' is not an integer", "fix or remove the line"],
                 id="bed-non-integer"),
    pytest.param("columns.bed", OK_BED + "chr1\t10\n", TRAIN_BED,
                 ["columns.bed line 2", "must start with chrom, start, end", "fix or remove the line"],
                 id="bed-too-few-columns"),
    # --- targets TSV (sequences s1, s2, s3) ---
    pytest.param("noheader.tsv", "s1\t1\ns2\t0\ns3\t1\n", TRAIN_TSV,
                 ["noheader.tsv starts with 's1', '1', which looks like data, not a header", "add a header row"],
                 id="tsv-missing-header"),
    pytest.param("unknown.tsv", HEADER + "s1\t1\ns2\t0\ns9\t1\n", TRAIN_TSV,
                 ["unknown.tsv line 4: row 's9' matches no sequence", "sequences without a row: 's3'",
                  "name each row by a FASTA id"], id="tsv-name-not-in-fasta"),
    pytest.param("short.tsv", HEADER + "s1\t1\ns2\t0\n", TRAIN_TSV,
                 ["short.tsv has no row for 1 of the 3 sequences (first: 's3')", "add one row per sequence"],
                 id="tsv-sequence-without-row"),
    pytest.param("word.tsv", HEADER + "s1\t1\ns2\tyes\ns3\t1\n", TRAIN_TSV,
                 ["word.tsv line 3, column 'bound': 'yes' is not a number", "empty or NA for missing"],
                 id="tsv-non-numeric"),
    pytest.param("ragged.tsv", HEADER + "s1\t1\ns2\t0\t5\ns3\t1\n", TRAIN_TSV,
                 ["ragged.tsv line 3 has 3 fields but the header has 2", "tab-separated"], id="tsv-ragged-row"),
    pytest.param("spaces.tsv", "name bound\ns1 1\ns2 0\ns3 1\n", TRAIN_TSV,
                 ["spaces.tsv has a header with 1 column ('name bound')", "separated by tabs"],
                 id="tsv-spaces-not-tabs"),
    pytest.param("twice.tsv", HEADER + "s1\t1\ns1\t0\ns2\t0\ns3\t1\n", TRAIN_TSV,
                 ["twice.tsv has two rows for 's1' (lines 2 and 3)", "keep one row per sequence"], id="tsv-repeated-row"),
    pytest.param("binary.tsv", b"\x00\x01\xff\xfe", TRAIN_TSV,
                 ["binary.tsv could not be read as tab-separated text", "pass a UTF-8 text file"], id="tsv-binary"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The good files every case shares: models, genome, sequences."""
    d = tmp_path_factory.mktemp("catalogue")
    (d / "acg.meme").write_text(MEME)
    (d / "genome.fa").write_text(f">chr1\n{CHR1}\n>chr2\n{CHR2}\n")
    (d / "seqs.fa").write_text(">s1\nACGTACGTAC\n>s2\nTTGACCAGTA\n>s3\nGGGCCCAATT\n")
    return {"meme": d / "acg.meme", "explainn": EXPLAINN, "genome": d / "genome.fa", "seqs": d / "seqs.fa"}


@pytest.mark.parametrize(("name", "content", "argv", "fragments"), CASES)
def test_bad_input_file(inputs, tmp_path, name, content, argv, fragments):
    path, out = tmp_path / name, tmp_path / "out"
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    cli_error([arg.format(file=path, out=out, **inputs) for arg in argv], *fragments)
    assert not out.exists()  # failed before writing anything


def test_iupac_codes_and_soft_masking_are_accepted(inputs, tmp_path):
    """The positive control: IUPAC codes (all-zero columns) and lower case read fine; the motif ACG
    is found in soft-masked "acg" with the score of test_cli's known value, 3 * log2(1.0025 / 1.01 / 0.25)."""
    (tmp_path / "iupac.fa").write_text(">a\nNRYSWKMBDHVacgt\n>b\nNNNNNNNNNNNNTTT\n")
    out = tmp_path / "out"
    proc = run_cli([arg.format(file=tmp_path / "iupac.fa", out=out, **inputs) for arg in PREDICT])
    assert proc.returncode == 0, proc.stderr
    values = dict(Table.read_tsv(out / "predict_predictions.tsv").rows)
    assert list(values) == ["a", "b"]
    assert float(values["a"]) == pytest.approx(3 * np.log2((1 + 0.0025) / 1.01 / 0.25), rel=1e-6)
    assert float(values["b"]) < float(values["a"])
