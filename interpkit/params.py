"""Declared method parameters, from which ``interpkit run METHOD --help`` is generated.

The shared tail (``batch_size``, ``target``, ``random_state``, ``verbose``) is defined
once here, so every method that takes one uses the same name, type and default.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from interpkit.errors import InputError, InputTypeError

__all__ = ["BATCH_SIZE", "RANDOM_STATE", "TARGET", "VERBOSE", "Param", "bind_params"]

_TYPES = (int, float, str, bool)


@dataclass(frozen=True)
class Param:
    """One option of a method.

    Attributes
    ----------
    name : str
        Python keyword name (``batch_size``); the CLI flag is ``--batch-size``.
    type : type
        One of int, float, str, bool.
    default : Any
        Default value; None means "optional, unset" and is always accepted.
    help : str
        One line for ``--help`` and the docs, with units.
    choices : tuple of str or None
        Allowed values for a str option. Default is None.
    min, max : float or None
        Inclusive bounds for numbers. Default is None.
    accepts : tuple of type
        Extra types Python callers may pass, handed to the method unchanged (the CLI
        always gives ``type``); e.g. ``target`` takes an int or a list besides "0,2".
        Default is ().
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    accepts: tuple[type, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise InputError(f"Param name {self.name!r} must be a Python identifier.")
        if self.type not in _TYPES:
            raise InputTypeError(f"Param {self.name!r}: type must be one of int, float, str, bool.")
        if self.default is not None:
            self.validate(self.default)

    @property
    def flag(self) -> str:
        """The CLI flag, e.g. ``--batch-size``."""
        return "--" + self.name.replace("_", "-")

    def validate(self, value: Any) -> Any:
        """Check (and for float, widen int) a value; returns it.

        Raises
        ------
        InputTypeError
            Wrong type (bool is never accepted as a number).
        InputError
            NaN or infinite, out of bounds, or not among ``choices``.
        """
        if value is None:
            return None
        if self.accepts and isinstance(value, self.accepts) and not isinstance(value, bool):
            return value
        if isinstance(value, np.generic):
            value = value.item()  # np.int64 from an array is an int here
        if self.type is float and isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{self.name} == {value}, must be a finite number.")
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) != (self.type is bool) or not isinstance(value, self.type):
            raise InputTypeError(f"{self.name} must be {self.type.__name__}, got {type(value).__name__} ({value!r}).")
        if self.choices is not None and value not in self.choices:
            raise InputError(f"{self.name} == {value!r}, must be one of {', '.join(map(repr, self.choices))}.")
        if self.min is not None and value < self.min:
            raise InputError(f"{self.name} == {value!r}, must be >= {self.min}.")
        if self.max is not None and value > self.max:
            raise InputError(f"{self.name} == {value!r}, must be <= {self.max}.")
        return value


BATCH_SIZE = Param("batch_size", int, None, "Sequences per forward pass; unset lets the backend choose.", min=1)
TARGET = Param("target", int, None, "Output column index (0-based); unset means every output.", min=0)
TARGETS = Param("target", str, None, "Outputs to explain: indices or names, comma-separated (e.g. '0,2' or "
                 "'MAX,JUND'); unset means every output.", accepts=(int, np.integer, list, tuple))
RANDOM_STATE = Param("random_state", int, 0, "Seed for every random draw; the same seed gives the same result.", min=0)
VERBOSE = Param("verbose", bool, False, "Show progress bars on long work.")


def bind_params(method: str, params: Sequence[Param], options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate user options against declared parameters and fill defaults.

    Returns
    -------
    dict
        Every declared parameter by name.

    Raises
    ------
    InputError
        For an unknown option (close names suggested) or an invalid value.
    """
    by_name = {p.name: p for p in params}
    for key in options:
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(by_name) or "none"
            raise InputError(f"method {method!r} has no option {key!r}.{hint} Its options: {known}.")
    return {name: p.validate(options.get(name, p.default)) for name, p in by_name.items()}


def _outputs(names: Sequence[str]) -> str:
    """ "0-2 (a, b, c)": the output indices with their names (the first 10)."""
    shown = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
    return f"0-{len(names) - 1} ({shown})" if names else "none"


def resolve_targets(target: Any, output_names: Sequence[str]) -> tuple[int, ...]:
    """Turn a ``target`` option into output indices.

    Parameters
    ----------
    target : None, int, str or sequence of int/str
        None for every output; an index; an output name; or several, as a sequence or a
        comma-separated string ("0,2", "MAX,JUND").
    output_names : sequence of str
        The model's output names, in column order.

    Returns
    -------
    tuple of int
        Distinct indices, in the order given.

    Raises
    ------
    InputError
        For an index out of range or an unknown name (close names suggested).
    """
    names = list(output_names)
    if target is None:
        return tuple(range(len(names)))
    items = target.split(",") if isinstance(target, str) else [target] if isinstance(target, int) else list(target)
    out: list[int] = []
    for item in items:
        item = item.strip() if isinstance(item, str) else item
        if isinstance(item, str) and item in names:
            index = names.index(item)
        elif isinstance(item, str) and item.lstrip("-").isdigit() or isinstance(item, int) and not isinstance(item, bool):
            index = int(item)
            if not 0 <= index < len(names):
                raise InputError(f"target {index} is out of range; the model has {len(names)} outputs, "
                                 f"{_outputs(names)}; pass an index or a name (--target).")
        else:
            close = difflib.get_close_matches(str(item), names, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InputError(f"target {item!r} is neither an output index nor an output name.{hint} The model's "
                             f"outputs: {_outputs(names)}.")
        if index not in out:
            out.append(index)
    return tuple(out)
