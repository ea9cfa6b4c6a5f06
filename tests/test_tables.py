"""Table TSV round trip and atomic output."""

import pytest

from interpkit import InputError, MissingFileError, Table
from interpkit._io import atomic_write, prepare_out_dir


def test_table_tsv_round_trip(tmp_path):
    table = Table(("Query_ID", "p-value", "note"), (("f1", 1e-5, None), ("f2", 0.5, "x\ty")))
    table.to_tsv(tmp_path / "t.tsv")
    back = Table.read_tsv(tmp_path / "t.tsv")
    assert back.columns == table.columns
    assert back.rows == (("f1", "1e-05", ""), ("f2", "0.5", "x\ty"))
    assert table.column("p-value") == [1e-5, 0.5]


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("partial")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_io_raises(tmp_path):
    (tmp_path / "a.txt").write_text("keep me")
    with pytest.raises(InputError, match="already exists"), atomic_write(tmp_path / "a.txt") as handle:
        handle.write("new")
    assert (tmp_path / "a.txt").read_text() == "keep me"
    with pytest.raises(InputError, match="not empty"):
        prepare_out_dir(tmp_path)
    with pytest.raises(InputError, match="is a file"):
        prepare_out_dir(tmp_path / "a.txt")
    with pytest.raises(InputError, match="unique"):
        Table(("a", "a"))
    with pytest.raises(InputError, match="row 0 has 1 values"):
        Table(("a", "b"), (("x",),))
    with pytest.raises(InputError, match="no column 'c'"):
        Table(("a",)).column("c")


def test_batch_slices_cover_range_with_progress(capsys):
    from interpkit.progress import batch_slices

    slices = list(batch_slices(10, 4, verbose=True, desc="counting", unit="variant"))
    assert [(s.start, s.stop) for s in slices] == [(0, 4), (4, 8), (8, 10)]
    assert "counting" in capsys.readouterr().err  # the bar went to stderr
    with pytest.raises(InputError, match="batch_size == 0"):
        list(batch_slices(3, 0))


def test_result_write_checks_every_file_first(tmp_path):
    import numpy as np

    from interpkit import Result

    result = Result("m", arrays={"a": np.zeros(2)}, tables={"t": Table(("x",), ((1,),))},
                    params={"odd": object()})
    out = tmp_path / "new" / "dir"
    files = result.write(out)  # creates the directory; the odd param is written as its repr
    assert [p.name for p in files] == ["m.npz", "m_t.tsv", "m.json"]
    (out / "m.npz").unlink()
    with pytest.raises(InputError, match="already holds m_t.tsv, m.json"):
        result.write(out)
    assert not (out / "m.npz").exists()  # nothing was written by the refused call
    with pytest.raises(MissingFileError):
        Table.read_tsv(tmp_path / "absent.tsv")


def test_attribution_result_writes_tfmodisco_inputs(tmp_path):
    import numpy as np

    from interpkit import AttributionResult

    rng = np.random.default_rng(0)
    one_hot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (3, 10))].transpose(0, 2, 1)
    hyp = rng.normal(size=(3, 2, 4, 10)).astype(np.float32)
    result = AttributionResult("ism", arrays={"one_hot": one_hot, "attributions": hyp * one_hot[:, None],
                                              "hypothetical": hyp}, targets=(0, 2))
    names = [p.name for p in result.write(tmp_path)]
    assert names[-1] == "ism.json" and "ism_ohe.npz" in names and "ism_hyp_2.npz" in names
    np.testing.assert_array_equal(np.load(tmp_path / "ism_ohe.npz")["arr_0"], one_hot)  # tfmodisco-lite reads arr_0
    np.testing.assert_array_equal(np.load(tmp_path / "ism_hyp_2.npz")["arr_0"], hyp[:, 1])
    with pytest.raises(InputError, match="expected"):
        AttributionResult("x", arrays={"one_hot": one_hot, "attributions": hyp, "hypothetical": hyp}, targets=(0,))


def test_attribution_report_shows_logos_of_the_top_windows():
    import numpy as np

    from interpkit import AttributionResult

    one_hot = np.zeros((3, 4, 60), dtype=np.float32)
    one_hot[:, 0] = 1
    hyp = np.zeros((3, 1, 4, 60), dtype=np.float32)
    hyp[1, 0, 0, 30:35] = 5.0  # sequence 1 holds the only signal, at 30-34
    result = AttributionResult("ism", arrays={"one_hot": one_hot, "attributions": hyp * one_hot[:, None],
                                              "hypothetical": hyp}, targets=(0,), sequence_names=("a", "b", "c"))
    i, start = result.top_windows(0)[0]
    assert i == 1 and start <= 30 and start + 40 >= 35
    html_text = result.report_section()
    assert html_text.count("data:image/png;base64,") == 3 and "alt='b'" in html_text
