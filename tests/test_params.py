"""Declared method parameters: validation and binding."""

import pytest

from interpkit import BATCH_SIZE, InputError, InputTypeError, Param
from interpkit.params import bind_params


def test_bind_fills_defaults_and_validates():
    params = (BATCH_SIZE, Param("mode", str, "max", "how", choices=("max", "sum")), Param("alpha", float, 0.5, "a"))
    assert bind_params("m", params, {"alpha": 1}) == {"batch_size": None, "mode": "max", "alpha": 1.0}
    assert Param("x", float, None, "h").flag == "--x"
    assert BATCH_SIZE.flag == "--batch-size"


def test_params_raises():
    params = (BATCH_SIZE, Param("mode", str, "max", "how", choices=("max", "sum")))
    with pytest.raises(InputError, match="no option 'batchsize'. Did you mean batch_size"):
        bind_params("m", params, {"batchsize": 2})
    with pytest.raises(InputError, match="batch_size == 0, must be >= 1"):
        bind_params("m", params, {"batch_size": 0})
    with pytest.raises(InputTypeError, match="batch_size must be int, got bool"):
        bind_params("m", params, {"batch_size": True})
    with pytest.raises(InputError, match="must be one of 'max', 'sum'"):
        bind_params("m", params, {"mode": "mean"})
    with pytest.raises(InputTypeError):
        Param("x", list, None, "h")
    with pytest.raises(InputError):
        Param("not a name", int, 1, "h")


def test_resolve_targets():
    from interpkit import resolve_targets

    names = ["MAX", "FOXA1", "JUND"]
    assert resolve_targets(None, names) == (0, 1, 2)
    assert resolve_targets("2,MAX", names) == (2, 0) and resolve_targets(1, names) == (1,)
    assert resolve_targets(["JUND", 2], names) == (2,)
    with pytest.raises(InputError, match="out of range"):
        resolve_targets("3", names)
    with pytest.raises(InputError, match="Did you mean 'FOXA1'"):
        resolve_targets("FOXA", names)


def test_targets_param_accepts_python_ints_and_lists():
    from interpkit import TARGETS

    assert bind_params("m", (TARGETS,), {"target": 0}) == {"target": 0}
    assert bind_params("m", (TARGETS,), {"target": [0, "JUND"]}) == {"target": [0, "JUND"]}
    with pytest.raises(InputTypeError, match="target must be str"):
        bind_params("m", (TARGETS,), {"target": True})
