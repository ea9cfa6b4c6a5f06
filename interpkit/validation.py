"""Shared validators: each checks one kind of input, converts it and returns it.

Messages name the argument, what was found, what was expected and how to fix it
(the practice of scikit-learn's ``check_array``). Every public verb calls these on
its first lines, so all methods reject bad input the same way.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from interpkit.errors import InputError, InputTypeError

__all__ = [
    "check_choice",
    "check_finite_outputs",
    "check_matrix",
    "check_one_hot",
    "check_random_state",
    "check_scalar",
]

_LAYOUT_HINT = "it looks like (N, L, 4), so swap axes 1 and 2 (X.transpose(0, 2, 1))"


def check_one_hot(
    X: Any,
    name: str = "X",
    *,
    length: int | None = None,
    allow_N: bool = True,
    dtype: Any = np.float32,
) -> np.ndarray:
    """Check and convert a batch of one-hot encoded sequences.

    Parameters
    ----------
    X : array-like of shape (N, 4, L)
        One-hot sequences, alphabet on axis 1 in order A, C, G, T (or A, C, G, U).
        An all-zero column stands for ``N`` or another ambiguous base. A single
        sequence of shape (4, L) is not accepted: add the batch axis (``X[None]``).
    name : str
        The argument's name, used in error messages. Default is "X".
    length : int or None
        Required sequence length L in bp, or None for any. Default is None.
    allow_N : bool
        Whether all-zero columns are accepted. Default is True.
    dtype : numpy dtype
        The dtype of the returned array. Default is float32.

    Returns
    -------
    X : ndarray of shape (N, 4, L), ``dtype``
        A contiguous array; the input itself is never modified.

    Raises
    ------
    InputTypeError
        If ``X`` is not array-like or not numeric.
    InputError
        If ``X`` is empty, has the wrong rank or shape, holds values other than 0 and 1,
        has a column with more than one 1, has all-zero columns when ``allow_N`` is
        False, or has the wrong length.
    """
    if isinstance(X, (str, bytes)):
        raise InputTypeError(
            f"{name} is a string but must be a one-hot array of shape (N, 4, L); "
            "encode sequences with interpkit.one_hot_encode first."
        )
    try:
        arr = np.asarray(X)
    except Exception as exc:  # noqa: BLE001 - any failure means "not array-like"
        raise InputTypeError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputTypeError(f"{name} has dtype {arr.dtype} but must be numeric (float32 one-hot).")
    if arr.ndim != 3:
        hint = " Add the batch axis with X[None]." if arr.ndim == 2 and arr.shape[0] == 4 else ""
        raise InputError(f"{name} has shape {arr.shape} but must be (N, 4, L).{hint}")
    if arr.shape[0] == 0:
        raise InputError(f"{name} is empty (0 sequences); pass at least one sequence.")
    if arr.shape[1] != 4:
        hint = f"; {_LAYOUT_HINT}" if arr.shape[2] == 4 else ""
        raise InputError(f"{name} has shape {arr.shape} but must be (N, 4, L){hint}.")
    if arr.shape[2] == 0:
        raise InputError(f"{name} has length 0; sequences must hold at least one base.")
    if length is not None and arr.shape[2] != length:
        raise InputError(
            f"{name} has length {arr.shape[2]} bp but the model needs {length} bp; "
            "cut or pad the sequences to that length (e.g. fixed windows from a BED file)."
        )
    out = np.ascontiguousarray(arr, dtype=dtype)
    col = out.sum(axis=1)
    # Values in [0, 1] whose non-zero count equals their sum are all exactly 0 or 1: four cheap
    # reductions instead of full-size boolean temporaries (validation runs on every call).
    if out.min() < 0 or out.max() > 1 or np.count_nonzero(out) != col.sum():
        bad = (out != 0) & (out != 1)
        n, c, pos = np.argwhere(bad)[0]
        raise InputError(
            f"{name}[{n}, {c}, {pos}] = {out[n, c, pos]!r}; a one-hot array holds only 0 and 1. "
            "Encode sequences with interpkit.one_hot_encode."
        )
    if (col > 1).any():
        n, pos = np.argwhere(col > 1)[0]
        raise InputError(
            f"{name} sequence {n} position {pos} has {int(col[n, pos])} bases set; "
            "a one-hot column has at most one 1."
        )
    if not allow_N and (col == 0).any():
        n, pos = np.argwhere(col == 0)[0]
        raise InputError(
            f"{name} sequence {n} position {pos} is an all-zero (N) column, which this method "
            "does not accept; remove or replace ambiguous bases."
        )
    return out


def check_matrix(M: Any, name: str, *, rows: int = 4, probabilities: bool = False) -> np.ndarray:
    """Check and convert a motif matrix of shape (4, w) (alphabet first, as one-hot).

    Parameters
    ----------
    M : array-like of shape (4, w)
        A PFM, PPM or PWM with the alphabet on axis 0.
    name : str
        The argument's name, used in error messages.
    rows : int
        Alphabet size. Default is 4.
    probabilities : bool
        If True, every column must be non-negative and sum to 1 (within 1e-3).
        Default is False.

    Returns
    -------
    M : ndarray of shape (4, w), float64

    Raises
    ------
    InputTypeError
        If ``M`` is not numeric.
    InputError
        If the shape is wrong, a value is NaN, or (with ``probabilities``) a column
        is negative or does not sum to 1.
    """
    try:
        arr = np.array(M, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputTypeError(f"{name} must be a numeric matrix of shape ({rows}, w): {exc}") from None
    if arr.ndim != 2 or arr.shape[0] != rows or arr.shape[1] == 0:
        hint = f"; it looks like (w, {rows}), so transpose it (M.T)" if arr.ndim == 2 and arr.shape[1] == rows else ""
        raise InputError(f"{name} has shape {arr.shape} but must be ({rows}, w) with w >= 1{hint}.")
    if np.isnan(arr).any():
        raise InputError(f"{name} contains NaN.")
    if probabilities:
        if (arr < 0).any():
            raise InputError(f"{name} has negative entries but must hold probabilities.")
        sums = arr.sum(axis=0)
        off = np.abs(sums - 1) > 1e-3
        if off.any():
            j = int(np.argmax(off))
            raise InputError(
                f"{name} column {j} sums to {sums[j]:.4g} but a PPM column must sum to 1; "
                "normalise counts with interpkit.motifs.pfm_to_ppm."
            )
    return arr


def check_random_state(random_state: Any, name: str = "random_state") -> np.random.Generator:
    """Turn ``None``, an int seed or a Generator into a ``numpy.random.Generator``.

    Parameters
    ----------
    random_state : None, int >= 0 or numpy.random.Generator
        None draws fresh entropy (not reproducible); an int gives a fixed stream.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    InputTypeError
        If ``random_state`` is of another type.
    InputError
        If it is a negative int.
    """
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise InputError(f"{name} == {random_state}, must be >= 0.")
        return np.random.default_rng(int(random_state))
    raise InputTypeError(
        f"{name} must be None, a non-negative int or a numpy.random.Generator; got {type(random_state).__name__}."
    )


def check_scalar(
    x: Any,
    name: str,
    target_type: type | tuple[type, ...],
    *,
    min_val: float | None = None,
    max_val: float | None = None,
) -> Any:
    """Check the type and range of a scalar option (as scikit-learn's ``check_scalar``).

    Raises
    ------
    InputTypeError
        If ``x`` is not an instance of ``target_type`` (bool is never an int here).
    InputError
        If ``x`` is NaN or infinite, below ``min_val`` or above ``max_val``.

    Returns
    -------
    The value, numpy scalars converted to Python scalars.
    """
    types = target_type if isinstance(target_type, tuple) else (target_type,)
    if isinstance(x, np.generic) and not isinstance(x, np.bool_):
        x = x.item()  # numpy scalars (np.int64 from an array) count as their Python type
    if isinstance(x, bool) and bool not in types or not isinstance(x, types):
        names = " or ".join(t.__name__ for t in types)
        raise InputTypeError(f"{name} must be {names}, got {type(x).__name__} ({x!r}).")
    if isinstance(x, float) and not np.isfinite(x):
        raise InputError(f"{name} == {x}, must be a finite number.")
    if min_val is not None and x < min_val:
        raise InputError(f"{name} == {x}, must be >= {min_val}.")
    if max_val is not None and x > max_val:
        raise InputError(f"{name} == {x}, must be <= {max_val}.")
    return x


def check_choice(x: Any, name: str, choices: tuple[str, ...] | list[str]) -> str:
    """Check that ``x`` is one of ``choices``; the error lists them.

    Raises
    ------
    InputError
        If ``x`` is not among ``choices``.
    """
    if x not in choices:
        raise InputError(f"{name} == {x!r}, must be one of {', '.join(map(repr, choices))}.")
    return x


def check_index(index: Any, name: str, size: int | None, *, labels: Sequence[str] | None = None) -> int:
    """Check a 0-based index into ``size`` items (an output ``target``, a ``channel``); returns it as int.

    Parameters
    ----------
    index : int
    name : str
        The argument's name, e.g. "target".
    size : int or None
        Number of items; None when unknown (only index >= 0 is checked).
    labels : sequence of str or None
        Item names, the first few of which the message lists. Default is None.

    Raises
    ------
    InputError
        If ``index`` is not an int (bool excluded; numpy integers accepted) in [0, size - 1].
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0 or \
            (size is not None and index >= size):
        names = f" ({', '.join(labels[:5])}{', ...' if len(labels) > 5 else ''})" if labels else ""
        where = f"[0, {size - 1}]" if size is not None else ">= 0"
        raise InputError(f"{name} == {index!r}, must be an int in {where}{names}.")
    return int(index)


def _listed(indices: Sequence[int], show: int = 5) -> str:
    return ", ".join(map(str, indices[:show])) + (", ..." if len(indices) > show else "")


def check_finite_outputs(values: np.ndarray, model: str, output_names: Sequence[str], *,
                         target: int | None = None) -> np.ndarray:
    """Refuse NaN or infinite model outputs (or input gradients) instead of passing them on silently.

    Parameters
    ----------
    values : ndarray of shape (N, T), or (N, 4, L) with ``target``
        Predictions of N sequences, or the gradient of output ``target`` for each.
    model : str
        The model's name, for the message.
    output_names : sequence of str
        The model's output names (T of them).
    target : int or None
        The output whose gradient ``values`` holds. Default is None (``values`` are predictions).

    Returns
    -------
    ndarray
        ``values`` itself, when every value is finite.

    Raises
    ------
    InputError
        Naming the first output with a non-finite value, what it is (NaN, inf, -inf), the
        0-based indices of the sequences concerned, and what to check.
    """
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    if target is None:
        columns = np.flatnonzero(bad.any(axis=0))
        target, rows = int(columns[0]), np.flatnonzero(bad[:, columns[0]])
        value = values[rows[0], target]
        what = f"model {model}'s output {target}"
        others = f"; {len(columns)} outputs are affected ({_listed(columns.tolist())})" if len(columns) > 1 else ""
    else:
        rows = np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))
        value = values[rows[0]][bad[rows[0]]][0]
        what, others = f"the gradient of model {model}'s output {target}", ""
    kind = "NaN" if np.isnan(value) else "inf" if value > 0 else "-inf"
    label = f" ({output_names[target]!r})" if target < len(output_names) else ""
    raise InputError(
        f"{what}{label} is {kind} for sequence(s) {_listed(rows.tolist())} ({len(rows)} of {len(values)}){others}; "
        "results built on it would be meaningless. Check the checkpoint's weights for NaN/inf (a damaged file or "
        "diverged training) and the model's arithmetic on these sequences (e.g. the log of a negative number)."
    )
