"""MEME minimal motif format: exact round trips, real files, and peers (memelite, Biopython) reading ours."""

from __future__ import annotations

import numpy as np
import pytest

from interpkit.errors import InputError, InputTypeError, MissingFileError
from interpkit.meme import MemeFile, read_meme, write_meme
from interpkit.motifs import Motif

JASPAR_2020 = "data/jaspar/JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt"
EXPLAINN = "checkpoints/explainn_tf_binding/reference_outputs/explainn_filters.meme"


def _motifs(alphabet="ACGT"):
    rng = np.random.default_rng(0)
    dirichlet = rng.dirichlet(np.ones(4), size=7).T  # full-precision float64, awkward decimals
    return [
        Motif("m1", dirichlet, name="TF one", alphabet=alphabet, nsites=7, evalue=1.5e-12, url="https://x.org/m1"),
        Motif("m2", np.array([[1.0, 0], [0, 0.25], [0, 0.75], [0, 0]]), alphabet=alphabet),
        Motif("m3", np.full((4, 1), 0.25), name="1e-300-ish", alphabet=alphabet, nsites=0, evalue=0.0),
    ]


def _write(tmp_path, text, name="m.meme"):
    path = tmp_path / name
    path.write_text(text)
    return path


HEADER = "MEME version 4\n\nALPHABET= ACGT\n\n"


def test_round_trip_is_exact(tmp_path):
    motifs = _motifs()
    background = [0.3, 0.2, 0.2, 0.3]
    path = write_meme(tmp_path / "a.meme", motifs, background=background, strands="+")
    back = read_meme(path)
    assert back == MemeFile(tuple(motifs), "ACGT", "+", np.array(background), "4")
    for ours, theirs in zip(back.motifs, motifs):
        assert np.array_equal(ours.ppm, theirs.ppm) and ours.ppm.dtype == np.float64
    text = path.read_text()
    assert text.startswith("MEME version 4\n\nALPHABET= ACGT\n\nstrands: +\n\nBackground letter frequencies\n"
                           "A 0.3 C 0.2 G 0.2 T 0.3\n")
    assert "MOTIF m1 TF one\nletter-probability matrix: alength= 4 w= 7 nsites= 7 E= 1.5e-12\n" in text
    assert "MOTIF m2\nletter-probability matrix: alength= 4 w= 2\n1 0 0 0\n0 0.25 0.75 0\n" in text
    matrix_rows = [line for line in text.splitlines() if line[:1].isdigit()]
    assert len(matrix_rows) == 10 and not any("e" in row for row in matrix_rows)  # no scientific notation


def test_rna_round_trip(tmp_path):
    motifs = _motifs("ACGU")
    back = read_meme(write_meme(tmp_path / "rna.meme", motifs, strands="+"))
    assert back.alphabet == "ACGU" and back.motifs == tuple(motifs)
    assert "ALPHABET= ACGU" in (tmp_path / "rna.meme").read_text()


def test_peers_read_our_file(tmp_path):
    from Bio import motifs as bio_motifs
    from memelite.io import read_meme as memelite_read

    motifs = _motifs()
    path = write_meme(tmp_path / "a.meme", motifs)
    theirs = memelite_read(str(path))  # keys are the rest of the MOTIF line, values (4, w)
    assert list(theirs) == ["m1 TF one", "m2", "m3 1e-300-ish"]
    for m, matrix in zip(motifs, theirs.values()):
        assert np.array_equal(matrix, m.ppm)
    with open(path) as handle:
        bio = bio_motifs.parse(handle, "minimal")
    assert [(b.name, b.length, b.num_occurrences) for b in bio] == [("m1", 7, 7), ("m2", 2, 20), ("m3", 1, 0)]


def test_read_real_jaspar_2020(shared):
    from memelite.io import read_meme as memelite_read

    meme = read_meme(shared / JASPAR_2020)
    assert len(meme.motifs) == 746 and meme.alphabet == "ACGT" and meme.strands == "+ -"
    assert np.array_equal(meme.background, [0.25] * 4)
    by_id = {m.id: m for m in meme.motifs}
    ctcf = by_id["MA0139.1"]
    assert (ctcf.name, ctcf.width, ctcf.nsites, ctcf.evalue) == ("CTCF", 19, 913, 0.0)
    assert ctcf.url == "http://jaspar.genereg.net/matrix/MA0139.1"
    assert np.array_equal(meme.motifs[0].ppm[:, 0], [0.125, 0.333333, 0.083333, 0.458333])  # file's first row
    theirs = memelite_read(str(shared / JASPAR_2020))
    assert [f"{m.id} {m.name}" for m in meme.motifs] == list(theirs)
    assert all(np.array_equal(m.ppm, t) for m, t in zip(meme.motifs, theirs.values()))


def test_read_real_explainn_filters(shared):
    from memelite.io import read_meme as memelite_read

    meme = read_meme(shared / EXPLAINN)  # no ALPHABET, strands or background lines; tabs between values
    assert [m.id for m in meme.motifs] == [f"filter{i}" for i in range(100)]
    assert {(m.width, m.name, m.nsites, m.evalue) for m in meme.motifs} == {(19, "", None, None)}
    assert meme.alphabet == "ACGT" and meme.strands == "+ -"
    assert all(np.array_equal(m.ppm, t) for m, t in zip(meme.motifs, memelite_read(str(shared / EXPLAINN)).values()))


def test_read_format_variants(tmp_path):
    text = (
        "MEME version 5.4.1 (Release date: x)\n\nALPHABET= ACGT\nstrands: +\n\n"
        "Background letter frequencies (from file)\nA 0.3 C 0.2\nG 0.2 T 0.3\n\n"
        "MOTIF a\nlog-odds matrix: alength= 4 w= 2 E= 0\n 1.0 -1 -1 -1\n -1 1.0 -1 -1\n"
        "letter-probability matrix: alength= 4 nsites= 17 E= 4.1e-009\n"
        " 0.996 0 0 0\n 0 0.9995 0 0\n 0.25 0.25 0.25 0.25\nURL http://example.org/a\n"
        "MOTIF b\nletter-probability matrix: w= 1\n\n0.1\t0.2\t0.3\t0.4\n"
    )
    meme = read_meme(_write(tmp_path, text))
    a, b = meme.motifs
    assert meme.version == "5.4.1" and meme.strands == "+" and np.allclose(meme.background, [0.3, 0.2, 0.2, 0.3])
    assert (a.width, a.nsites, a.evalue, a.url) == (3, 17, 4.1e-9, "http://example.org/a")
    # A row off by 4e-3 (rounded file) is divided by its sum; one off by 5e-4 is kept as written.
    assert np.array_equal(a.ppm[:, 0], [1, 0, 0, 0]) and a.ppm[1, 1] == 0.9995
    assert np.array_equal(b.ppm[:, 0], [0.1, 0.2, 0.3, 0.4])


def test_meme_raises(tmp_path):
    row = "0.25 0.25 0.25 0.25\n"
    files = [
        ("", "is empty"),
        ("MOTIF a\n", "line 1: found 'MOTIF a' where the 'MEME version 4' line must come first"),
        (HEADER.replace("ACGT", "ACDEFGHIKLMNPQRSTVWY"), "line 3: alphabet .* is not supported"),
        ('MEME version 5\n\nALPHABET "DNA" DNA-LIKE\n', "line 3: alphabet .* is not supported"),
        ("MEME version 4\n\nstrands: -\n", "line 3: 'strands: -' must be"),
        (HEADER, "has no MOTIF entries"),
        (HEADER + "MOTIF a\nletter-probability matrix: w= 2\n0.25 0.25 0.5\n", "line 7: motif a row 1 has 3 values"),
        (HEADER + "MOTIF a\nletter-probability matrix: w= 2\n" + row + "MOTIF b\n",
         "line 8: motif a has w= 2 but only 1 rows come before line 8"),
        (HEADER + "MOTIF a\nletter-probability matrix: w= 3\n" + row, "but only 1 rows come before the end of the file"),
        (HEADER + "MOTIF a\nletter-probability matrix: w= 1\n0.25 0.25 x 0.25\n", "line 7: 'x' is not a number"),
        (HEADER + "MOTIF a\nletter-probability matrix: w= 1\n0.5 0.5 0.5 0\n", "line 7: .* sums to 1.5"),
        (HEADER + "MOTIF a\nletter-probability matrix: w= 1\n" + row + row, "line 8: a row of numbers follows"),
        (HEADER + "MOTIF a\nletter-probability matrix: alength= 20 w= 1\n", "line 6: alength= 20"),
        (HEADER + "MOTIF a\nURL x\n", "line 5: motif a has no 'letter-probability matrix:' block"),
        (HEADER + "MOTIF\n", "line 5: 'MOTIF' has no motif identifier"),
        (HEADER + "Background letter frequencies\nA 0.5 C 0.5 G 0 T 0\nMOTIF a\n", "line 6: .*entry <= 0"),
        (HEADER + "Background letter frequencies\nA 0.5 C 0.5\nMOTIF a\n", "line 5: background has 2 of 4"),
    ]
    for i, (text, message) in enumerate(files):
        path = _write(tmp_path, text, f"bad{i}.meme")
        with pytest.raises(InputError, match=f"bad{i}.meme.*{message}"):
            read_meme(path)
    with pytest.raises(MissingFileError, match="absent.meme"):
        read_meme(tmp_path / "absent.meme")
    good = _motifs()
    write_meme(tmp_path / "ok.meme", good)
    cases = [
        (InputError, "already exists", lambda: write_meme(tmp_path / "ok.meme", good)),
        (InputError, "motifs is empty", lambda: write_meme(tmp_path / "new.meme", [])),
        (InputTypeError, "wrap a single motif", lambda: write_meme(tmp_path / "new.meme", good[0])),
        (InputError, "strands == '-'", lambda: write_meme(tmp_path / "new.meme", good, strands="-")),
        (InputError, "background sums to 2", lambda: write_meme(tmp_path / "new.meme", good, background=[0.5] * 4)),
        (InputError, "has alphabet ACGU but the file's is ACGT",
         lambda: write_meme(tmp_path / "new.meme", good + _motifs("ACGU"))),
        (InputTypeError, "overwrite must be bool", lambda: write_meme(tmp_path / "ok.meme", good, overwrite=1)),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
    assert not (tmp_path / "new.meme").exists()
    write_meme(tmp_path / "ok.meme", good[:1], overwrite=True)
    assert len(read_meme(tmp_path / "ok.meme").motifs) == 1


def test_meme_tolerant_header_bom_and_rounded_background(tmp_path):
    # MEME's own files: extra spaces in the header, a UTF-8 byte-order mark, a 3-decimal background.
    text = ("\ufeffMEME version 5\n\nALPHABET= ACGT\n\nBackground letter frequencies\nA 0.292 C 0.209 G 0.209 T 0.292\n\n"
            "MOTIF m1\nletter-probability   matrix:  alength= 4 w= 2\n1 0 0 0\n0 0 0 1\n")
    path = tmp_path / "m.meme"
    path.write_text(text, encoding="utf-8")
    meme = read_meme(path)
    assert meme.motifs[0].consensus() == "AT"
    assert meme.background.sum() == pytest.approx(1.0) and meme.background[0] == pytest.approx(0.292 / 1.002)


def test_meme_header_and_identifier_raises(tmp_path):
    cases = {
        "no colon": ("MEME version 4\n\nMOTIF m1\nletter-probability matrix alength= 4 w= 1\n1 0 0 0\n", None),
        "duplicate": (("MEME version 4\n\nMOTIF m1\nletter-probability matrix: w= 1\n1 0 0 0\n"
                       "MOTIF m1\nletter-probability matrix: w= 1\n0 1 0 0\n"), "used twice"),
        "latin-1": ("MEME version 4\n\nMOTIF m\xe9\nletter-probability matrix: w= 1\n1 0 0 0\n", "not UTF-8"),
    }
    for what, (text, message) in cases.items():
        path = tmp_path / f"{what}.meme"
        path.write_bytes(text.encode("latin-1"))
        if message is None:  # a header without its colon is still read
            assert read_meme(path).motifs[0].consensus() == "A", what
            continue
        with pytest.raises(InputError, match=message):
            read_meme(path)
