"""Input layout/alphabet adaptation and output reductions, against hand-made arrays."""

import numpy as np
import pytest

from interpkit import InputError
from interpkit.adapt import (
    OutputReduction,
    alphabet_permutation,
    auto_batch_size,
    from_model_layout,
    infer_layout,
    to_model_layout,
)
from interpkit.sequences import one_hot_encode


@pytest.mark.parametrize("shape,expected", [
    ((None, 4, 200), ("NCL", 200)),          # ExplaiNN, PyTorch Conv1d
    ((None, 200, 4), ("NLC", 200)),          # Keras Conv1D (TAL/GATA)
    ((None, None, 4), ("NLC", None)),        # fully convolutional Keras model
    ((None, 4, 600, 1), ("NCL1", 600)),      # Kipoi Basset
    ((None, 4, 1, 1000), ("NC1L", 1000)),    # Kipoi DeepSEA
])
def test_infer_layout(shape, expected):
    assert infer_layout(shape) == expected


def test_layout_round_trip_with_deepsea_alphabet():
    X = one_hot_encode(["ACGTN", "GGCAT"])
    for layout in ("NCL", "NLC", "NC1L", "NCL1"):
        M = to_model_layout(X, layout, model_alphabet="AGCT")
        np.testing.assert_array_equal(from_model_layout(M, layout, model_alphabet="AGCT"), X)
    M = to_model_layout(X, "NCL", model_alphabet="AGCT")
    # In A,G,C,T order, C of "ACGTN" (position 1) is channel 2 and G (position 2) is channel 1.
    assert M[0, 2, 1] == 1 and M[0, 1, 2] == 1
    assert to_model_layout(X, "NLC").shape == (2, 5, 4) and to_model_layout(X, "NC1L").shape == (2, 4, 1, 5)
    assert alphabet_permutation("AGCT").tolist() == [0, 2, 1, 3]


def test_output_reduction_by_hand():
    y = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # (N=2, C=3, P=4)
    assert OutputReduction().apply(y).tolist() == [[1.5, 5.5, 9.5], [13.5, 17.5, 21.5]]
    assert OutputReduction(window=(1, 3), reduce="sum", channels=(2, 0)).apply(y)[0].tolist() == [9 + 10, 1 + 2]
    assert OutputReduction(reduce="center").apply(y)[0].tolist() == [1, 5, 9]
    assert OutputReduction(reduce="max", positions="middle").apply(y.transpose(0, 2, 1))[1].tolist() == [15, 19, 23]
    assert OutputReduction(window=(-1, None)).apply(y)[0].tolist() == [3, 7, 11]


def test_auto_batch_size_bounds():
    assert 1 <= auto_batch_size(10**12) <= 4096
    assert auto_batch_size(1, maximum=64) == 64
    assert auto_batch_size(1 << 20) <= 128  # 1 MiB per sequence: the 128 MiB CPU cap
    assert auto_batch_size(1 << 20, cap_bytes=None) >= auto_batch_size(1 << 20)


def test_adapt_raises():
    with pytest.raises(InputError, match=r"fits NCL or NLC\); pass layout="):
        infer_layout((None, 4, 4))
    with pytest.raises(InputError, match="fits none"):
        infer_layout((None, 200, 5))
    with pytest.raises(InputError, match="not an ordering"):
        alphabet_permutation("ACGG")
    with pytest.raises(InputError, match="selects no positions"):
        OutputReduction(window=(5, 9)).apply(np.zeros((1, 2, 4)))
    with pytest.raises(InputError, match="out of range"):
        OutputReduction(channels=(3,)).apply(np.zeros((1, 2, 4)))
    with pytest.raises(InputError, match="reduce == 'median'"):
        OutputReduction(reduce="median")


def test_output_reduction_parse():
    assert OutputReduction.parse("max:4000:6000@1,2") == OutputReduction(window=(4000, 6000), reduce="max",
                                                                          channels=(1, 2))
    assert OutputReduction.parse("mean:-100:@2") == OutputReduction(window=(-100, None), channels=(2,))
    assert OutputReduction.parse("center", positions="middle").positions == "middle"
    for bad in ("max:1", "mean@x", "median"):
        with pytest.raises(InputError):
            OutputReduction.parse(bad)


def test_output_reduction_on_torch_tensors_matches_numpy_and_has_gradients():
    torch = pytest.importorskip("torch")
    y = np.random.default_rng(0).normal(size=(2, 3, 7)).astype(np.float32)
    for rule in (OutputReduction(), OutputReduction(window=(1, 5), reduce="max", channels=(2, 0)),
                 OutputReduction(reduce="center"), OutputReduction(reduce="sum", positions="middle")):
        t = torch.tensor(y, requires_grad=True)
        out = rule.apply(t)
        np.testing.assert_allclose(out.detach().numpy(), rule.apply(y), rtol=1e-6)
        out.sum().backward()
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_output_reduction_parse_axis_prefix():
    assert OutputReduction.parse("NPC:max@1", positions="last").positions == "middle"
    assert OutputReduction.parse("ncp:center", positions="middle").positions == "last"
    assert OutputReduction.parse("max:0:10", positions="middle").window == (0, 10)  # no prefix: convention kept


def test_alphabet_and_output_name_helpers(tmp_path):
    from interpkit.adapt import check_output_names, read_output_names, resolve_alphabet
    from interpkit.errors import InputTypeError, MissingFileError
    from interpkit.validation import check_index

    assert resolve_alphabet(None) == ("ACGT", None)
    assert resolve_alphabet("agct") == ("ACGT", "AGCT") and resolve_alphabet("ACGU") == ("ACGU", None)
    X = one_hot_encode(["ACGTT"])
    M = to_model_layout(X, "NCL", model_alphabet="CGTA")
    assert M[0, :, 0].tolist() == [0, 0, 0, 1]  # base A sits in model channel 3 ("CGTA".index("A"))
    np.testing.assert_array_equal(from_model_layout(M, "NCL", model_alphabet="CGTA"), X)
    labels = tmp_path / "labels.txt"
    labels.write_text("\ufeffMAX\n\nFOXA1\nJUND\n")
    assert read_output_names(labels=labels) == ("MAX", "FOXA1", "JUND")
    assert check_output_names(("a", "b"), 2, "m") == ("a", "b")
    assert check_index(np.int64(2), "target", 3) == 2
    for call, error, message in [
        (lambda: resolve_alphabet("ACGG"), InputError, "not an ordering"),
        (lambda: resolve_alphabet(5), InputTypeError, "alphabet must be a str"),
        (lambda: read_output_names(["a"], labels), InputError, "not both"),
        (lambda: read_output_names(labels=tmp_path / "none.txt"), MissingFileError, "does not exist"),
        (lambda: check_output_names(("a", "a"), 2, "m"), InputError, "one distinct name per output"),
        (lambda: check_index(3, "target", 3, labels=["x", "y", "z"]), InputError, r"\[0, 2\] \(x, y, z\)"),
        (lambda: check_index(True, "channel", None), InputError, ">= 0"),
    ]:
        with pytest.raises(error, match=message):
            call()
