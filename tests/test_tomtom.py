"""Tomtom through memelite: planted self-matches with known offsets, and MEME Tomtom 5.4.1 as the oracle.

memelite compiles with numba on its first call in a fresh environment (about 30-60 s; cached on disk
afterwards), so the tests share a few calls through module-scoped fixtures.
"""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

from interpkit.errors import InputError, InputTypeError
from interpkit.meme import read_meme
from interpkit.motifs import Motif
from interpkit.tomtom import COLUMNS, tomtom

JASPAR_2020 = "data/jaspar/JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt"
REFERENCE = "checkpoints/explainn_tf_binding/reference_outputs"


@pytest.fixture(scope="session")
def jaspar2020(shared):
    """The 746 JASPAR 2020 CORE vertebrate motifs (non-redundant), from JASPAR's MEME file."""
    return read_meme(shared / JASPAR_2020).motifs


@pytest.fixture(scope="module")
def planted(jaspar2020):
    """CTCF, its reverse complement, its columns 3..12, and CTCF behind 5 uniform columns."""
    ctcf = next(m for m in jaspar2020 if m.id == "MA0139.1")
    queries = [
        ctcf,
        dataclasses.replace(ctcf.reverse_complement(), id="ctcf_rc"),
        Motif("ctcf_3_13", ctcf.ppm[:, 3:13]),
        Motif("flank5_ctcf", np.concatenate([np.full((4, 5), 0.25), ctcf.ppm], axis=1)),
    ]
    return ctcf, queries, tomtom(queries, jaspar2020, thresh=1.0)


def _best(table, query_id):
    return next(r for r in table.records() if r["Query_ID"] == query_id)


def test_columns_and_order(planted, jaspar2020):
    _, queries, table = planted
    assert table.columns == COLUMNS and COLUMNS[:10] == (
        "Query_ID", "Target_ID", "Optimal_offset", "p-value", "E-value", "q-value", "Overlap",
        "Query_consensus", "Target_consensus", "Orientation")
    assert len(table) == len(queries) * len(jaspar2020)  # thresh=1 keeps every pair
    query_ids = table.column("Query_ID")
    assert query_ids == sorted(query_ids, key=[q.id for q in queries].index)
    for q in queries:
        p = [r["p-value"] for r in table.records() if r["Query_ID"] == q.id]
        assert p == sorted(p)
    records = table.records()
    assert all(r["E-value"] == pytest.approx(r["p-value"] * 746) for r in records)


def test_q_values_are_benjamini_hochberg(planted):
    # BH by hand: q_(k) = min_{j >= k} p_(j) * m / j over all query-target p-values.
    _, _, table = planted
    p = np.array(table.column("p-value"))
    order = np.argsort(p)
    q = np.minimum.accumulate((p[order] * len(p) / np.arange(1, len(p) + 1))[::-1])[::-1]
    expected = np.empty_like(q)
    expected[order] = np.minimum(q, 1)
    assert np.allclose(table.column("q-value"), expected)


def test_self_match_and_offsets(planted):
    ctcf, _, table = planted
    self_hit = _best(table, "MA0139.1")
    assert (self_hit["Target_ID"], self_hit["Optimal_offset"], self_hit["Orientation"]) == ("MA0139.1", 0, "+")
    assert self_hit["p-value"] < 1e-30 and self_hit["Overlap"] == 19 and self_hit["Target_name"] == "CTCF"
    assert self_hit["Query_consensus"] == self_hit["Target_consensus"] == ctcf.consensus()
    rc_hit = _best(table, "ctcf_rc")
    assert (rc_hit["Target_ID"], rc_hit["Optimal_offset"], rc_hit["Orientation"]) == ("MA0139.1", 0, "-")
    assert rc_hit["Target_consensus"] == ctcf.reverse_complement().consensus() == rc_hit["Query_consensus"]
    # MEME's offset: the query's first column sits at this target column (negative: before the target).
    window = _best(table, "ctcf_3_13")
    assert (window["Target_ID"], window["Optimal_offset"], window["Overlap"]) == ("MA0139.1", 3, 10)
    flank = _best(table, "flank5_ctcf")
    assert (flank["Target_ID"], flank["Optimal_offset"], flank["Overlap"]) == ("MA0139.1", -5, 19)


def test_thresholds_and_one_strand(planted, jaspar2020):
    _, queries, everything = planted
    # q-values depend on every p-value of the call, so compare with the same queries.
    by_q = tomtom(queries, jaspar2020)
    assert 0 < len(by_q) < len(everything)
    assert by_q.rows == tuple(row for row in everything.rows if row[5] <= 0.5)
    by_e = tomtom(queries, jaspar2020, thresh=0.01, evalue=True)
    assert by_e.rows == tuple(row for row in everything.rows if row[4] <= 0.01) and len(by_e) >= 4
    # On the + strand only, CTCF's reverse complement no longer finds CTCF (p ~ 1e-67 with both strands):
    # the best + match is a weak GC-rich one (ZIC4, p ~ 2e-4 here).
    plus_only = tomtom(queries[1:2], jaspar2020, reverse_complement=False)
    assert len(plus_only) > 0 and set(plus_only.column("Orientation")) == {"+"}
    assert plus_only.column("Target_ID")[0] != "MA0139.1" and min(plus_only.column("p-value")) > 1e-10


def _reference_rows(shared):
    with open(shared / REFERENCE / "MAX_JUND_FOXA1_tomtom.tsv") as handle:
        return [r for r in csv.DictReader(handle, delimiter="\t") if r["Query_ID"] and r["Target_ID"]]


def test_against_meme_tomtom(shared, jaspar2020):
    """MEME Tomtom 5.4.1 (ExplaiNN's reference run) on 100 ExplaiNN filters against JASPAR 2020.

    Of the 29 filters whose best MEME match has q < 0.05, memelite's best target is the same for 28
    (filter15: FOXA2 instead of FOXD2, both forkheads, MEME's choice second); offsets agree for all
    29 and orientations for 28 (MYCN's E-box CACGTG is its own reverse complement). We require 90%.
    """
    from pyjaspar import jaspardb

    filters = read_meme(shared / REFERENCE / "explainn_filters.meme").motifs
    ours = tomtom(filters, jaspar2020)
    reference = _reference_rows(shared)
    best_ref = {}
    for row in reference:
        best_ref.setdefault(row["Query_ID"], row)
    significant = {q: r for q, r in best_ref.items() if float(r["q-value"]) < 0.05}
    assert len(significant) == 29
    family = {m.matrix_id: tuple(m.tf_family) for m in jaspardb("JASPAR2020").fetch_motifs(tax_group="vertebrates")}
    same = same_family = offset = strand = 0
    for query, ref in significant.items():
        rows = [r for r in ours.records() if r["Query_ID"] == query]
        targets = [r["Target_ID"] for r in rows]
        assert ref["Target_ID"] in targets[:5], query
        same += targets[0] == ref["Target_ID"]
        same_family += family[targets[0]] == family[ref["Target_ID"]]
        match = rows[targets.index(ref["Target_ID"])]
        offset += match["Optimal_offset"] == int(ref["Optimal_offset"])
        strand += match["Orientation"] == ref["Orientation"]
    assert same / 29 >= 0.9 and same_family == 29
    assert offset / 29 >= 0.9 and strand / 29 >= 0.9


def test_consensus_matches_meme(shared, jaspar2020):
    # Every column with a single most probable letter gives MEME's letter (exact ties MEME breaks either way).
    queries = {m.id: m for m in read_meme(shared / REFERENCE / "explainn_filters.meme").motifs}
    targets = {m.id: m for m in jaspar2020}
    checked = 0
    for row in _reference_rows(shared):
        target = targets[row["Target_ID"]]
        target = target.reverse_complement() if row["Orientation"] == "-" else target
        for motif, meme_consensus in ((queries[row["Query_ID"]], row["Query_consensus"]),
                                      (target, row["Target_consensus"])):
            top = motif.ppm.max(axis=0)
            unique = (motif.ppm == top).sum(axis=0) == 1
            ours = np.array(list(motif.consensus()))
            assert np.array_equal(ours[unique], np.array(list(meme_consensus))[unique]), row
            checked += unique.sum()
    assert checked > 50_000


def test_tomtom_raises(jaspar2020):
    rna = Motif("rna", np.full((4, 3), 0.25), alphabet="ACGU")
    q = list(jaspar2020[:1])
    cases = [
        (InputError, "queries is empty", lambda: tomtom([], jaspar2020)),
        (InputTypeError, "targets must be a list of Motif", lambda: tomtom(q, jaspar2020[0])),
        (InputTypeError, r"queries\[0\] is ndarray", lambda: tomtom([np.full((4, 3), 0.25)], jaspar2020)),
        (InputError, "thresh == -1", lambda: tomtom(q, jaspar2020, thresh=-1)),
        (InputTypeError, "evalue must be bool", lambda: tomtom(q, jaspar2020, evalue="yes")),
        (InputTypeError, "reverse_complement must be bool", lambda: tomtom(q, jaspar2020, reverse_complement=1)),
        (InputError, "n_jobs == 0", lambda: tomtom(q, jaspar2020, n_jobs=0)),
        (InputError, "n_jobs == 100000", lambda: tomtom(q, jaspar2020, n_jobs=100_000)),
        (InputError, "mix alphabets", lambda: tomtom([rna], jaspar2020)),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
