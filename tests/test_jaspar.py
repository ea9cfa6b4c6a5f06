"""JASPAR through pyjaspar, checked against JASPAR's own 2020 MEME file (shared/data/jaspar)."""

from __future__ import annotations

import numpy as np
import pytest

from interpkit.errors import InputError, InputTypeError
from interpkit.jaspar import fetch_jaspar, jaspar_releases
from interpkit.meme import read_meme

JASPAR_2020 = "data/jaspar/JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt"


def test_releases_newest_first():
    releases = jaspar_releases()
    years = [int(r.removeprefix("JASPAR")) for r in releases]
    assert "JASPAR2020" in releases and years == sorted(years, reverse=True)


def test_fetch_by_id_matches_jaspar_file(shared):
    (ctcf,) = fetch_jaspar(release="JASPAR2020", ids=["MA0139.1"])
    reference = {m.id: m for m in read_meme(shared / JASPAR_2020).motifs}["MA0139.1"]
    assert (ctcf.id, ctcf.name, ctcf.width, ctcf.nsites) == ("MA0139.1", "CTCF", 19, 913)
    assert ctcf.url == "https://jaspar.elixir.no/matrix/MA0139.1/"
    assert np.abs(ctcf.ppm - reference.ppm).max() < 1e-6  # the file rounds to 6 decimals
    # An ID without version gives the latest version in that release.
    assert fetch_jaspar(release="JASPAR2020", ids=["MA0139"])[0].id == "MA0139.1"


def test_fetch_collection_is_the_2020_file(shared):
    # JASPAR 2020's non-redundant vertebrate file is the latest version of every CORE vertebrate matrix.
    fetched = fetch_jaspar(release="JASPAR2020")
    reference = {m.id: m for m in read_meme(shared / JASPAR_2020).motifs}
    assert len(fetched) == 746 and {m.id for m in fetched} == set(reference)
    assert max(np.abs(m.ppm - reference[m.id].ppm).max() for m in fetched) < 1e-6
    assert all((m.name, m.nsites) == (reference[m.id].name, reference[m.id].nsites) for m in fetched)


def test_default_release_is_newest():
    newest = jaspar_releases()[0]
    (motif,) = fetch_jaspar(ids=["MA0139"])
    assert motif == fetch_jaspar(release=newest, ids=["MA0139"])[0]


def test_jaspar_raises():
    cases = [
        (InputError, "release == 'JASPAR1999' is not shipped.*JASPAR2020", lambda: fetch_jaspar(release="JASPAR1999")),
        (InputError, "matrix ID 'MA9999.1' is not in JASPAR2020",
         lambda: fetch_jaspar(release="JASPAR2020", ids=["MA9999.1"])),
        (InputError, "matrix ID '' is not in", lambda: fetch_jaspar(release="JASPAR2020", ids=[""])),
        (InputTypeError, "ids must be a list", lambda: fetch_jaspar(release="JASPAR2020", ids="MA0139.1")),
        (InputError, "tax_group == 'martians' selects no motif",
         lambda: fetch_jaspar(release="JASPAR2020", tax_group="martians")),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
