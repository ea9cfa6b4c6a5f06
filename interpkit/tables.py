"""A small column-named table, written as TSV: what results, Tomtom and the CLI share."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from interpkit._io import atomic_write
from interpkit.errors import InputError, MissingFileError

__all__ = ["Table"]


def _plain(value: Any) -> Any:
    """Convert numpy scalars to Python scalars so tables print and serialise cleanly."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Table:
    """Rows of values under named columns (no pandas in the core).

    Attributes
    ----------
    columns : tuple of str
        Column names, e.g. MEME Tomtom's ``Query_ID``, ``Target_ID``, ``p-value``.
    rows : tuple of tuple
        One tuple per row, values in column order (str, int, float or None).
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "rows", tuple(tuple(_plain(v) for v in row) for row in self.rows))
        if len(set(self.columns)) != len(self.columns):
            raise InputError(f"Table columns must be unique, got {self.columns}.")
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise InputError(f"Table row {i} has {len(row)} values for {len(self.columns)} columns.")

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Table:
        """Build a table from dicts; ``columns`` fixes the order (default: the first record's keys)."""
        records = list(records)
        if columns is None:
            columns = list(records[0]) if records else []
        return cls(tuple(columns), tuple(tuple(r.get(c) for c in columns) for r in records))

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        """All values of one column; raises InputError naming the columns if absent."""
        if name not in self.columns:
            raise InputError(f"no column {name!r}; columns are {', '.join(self.columns)}.")
        j = self.columns.index(name)
        return [row[j] for row in self.rows]

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row)) for row in self.rows]

    def to_tsv(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write tab-separated values with a header line, atomically (no padding, '' for None).

        Raises
        ------
        InputError
            If ``path`` exists and ``overwrite`` is False.
        """
        with atomic_write(path, overwrite=overwrite) as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(self.columns)
            for row in self.rows:
                writer.writerow(["" if v is None else v for v in row])

    @classmethod
    def read_tsv(cls, path: str | os.PathLike) -> Table:
        """Read a TSV written by :meth:`to_tsv`; values come back as strings.

        Raises
        ------
        MissingFileError
            If ``path`` does not exist.
        InputError
            If the file is empty or a row has another number of fields than the header.
        """
        if not os.path.isfile(path):
            raise MissingFileError(f"TSV file {path} does not exist.")
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path} is empty; expected a header line.")
            return cls(tuple(header), tuple(tuple(r) for r in reader))
