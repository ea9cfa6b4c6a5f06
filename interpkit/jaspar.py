"""JASPAR motifs offline, through pyjaspar (which ships every release as an sqlite database).

JASPAR (Fornes et al., NAR 2020; Rauluseviciute et al., NAR 2024) stores counts (PFMs); the motifs
returned here hold the PPM computed from them without a pseudocount, as JASPAR's own MEME files do.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from interpkit.errors import InputError, InputTypeError
from interpkit.motifs import Motif, pfm_to_ppm

__all__ = ["fetch_jaspar", "jaspar_releases"]

_URL = "https://jaspar.elixir.no/matrix/{}/"


@functools.cache
def _database(release: str | None) -> Any:
    """One pyjaspar database object per release (None: pyjaspar's default), reused across calls."""
    from pyjaspar import jaspardb

    return jaspardb() if release is None else jaspardb(release=release)


def jaspar_releases() -> list[str]:
    """The JASPAR releases pyjaspar ships, newest first.

    Returns
    -------
    list of str
        Release names such as "JASPAR2024", ordered by year, newest first.

    Raises
    ------
    ImportError
        If pyjaspar is not installed (it is a dependency of interpkit).
    """
    names = _database(None).get_releases()
    return sorted(names, key=lambda r: int(re.sub(r"\D", "", r) or 0), reverse=True)


def _to_motif(record: Any) -> Motif:
    """A pyjaspar/Biopython JASPAR motif as a Motif: PPM from its counts, nsites from column 1."""
    counts = np.array([record.counts[letter] for letter in "ACGT"], dtype=np.float64)
    return Motif(
        record.matrix_id,
        pfm_to_ppm(counts),
        name=record.name or "",
        nsites=int(counts[:, 0].sum()),  # as JASPAR's own MEME files write it
        url=_URL.format(record.matrix_id),
    )


def fetch_jaspar(
    *,
    release: str | None = None,
    ids: Sequence[str] | None = None,
    collection: str = "CORE",
    tax_group: str | None = "vertebrates",
) -> list[Motif]:
    """Fetch JASPAR motifs from the database shipped with pyjaspar (no network).

    Parameters
    ----------
    release : str or None
        A release name from :func:`jaspar_releases`, e.g. "JASPAR2020"; None means the newest one
        pyjaspar ships. Default is None.
    ids : sequence of str or None
        Matrix IDs to fetch, e.g. ["MA0139.1"]; an ID without version ("MA0139") gives its latest
        version in ``release``. When given, ``collection`` and ``tax_group`` are not used. None
        fetches the latest version of every motif of ``collection`` in ``tax_group`` (pyjaspar's
        ``fetch_motifs(..., all_versions=False)``). Default is None.
    collection : str
        JASPAR collection, e.g. "CORE" or "UNVALIDATED". Default is "CORE".
    tax_group : str or None
        Taxonomic group, e.g. "vertebrates", "plants", "insects"; None for all. Default is
        "vertebrates".

    Returns
    -------
    list of Motif
        In ``ids`` order (or database order): id = matrix ID, name = TF name, ppm of shape (4, w)
        = counts / column total (float64), nsites = the first column's total truncated to int (as
        in JASPAR's MEME files), url =
        ``https://jaspar.elixir.no/matrix/<ID>/``.

    Raises
    ------
    InputTypeError
        If ``ids`` is a single string or holds non-strings.
    InputError
        If ``release`` is not shipped (the message lists those that are), an ID is not in the
        release, or the collection and tax group select no motif.
    """
    available = jaspar_releases()
    release = available[0] if release is None else release
    if release not in available:
        raise InputError(f"release == {release!r} is not shipped with pyjaspar; choose one of {', '.join(available)}.")
    db = _database(release)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyjaspar warns (BiopythonWarning) where we raise below
        if ids is None:
            records = db.fetch_motifs(collection=collection, tax_group=tax_group, all_versions=False)
            if not records:
                raise InputError(
                    f"collection == {collection!r} with tax_group == {tax_group!r} selects no motif in {release}; "
                    "check the spelling (e.g. 'CORE', 'vertebrates') or pass tax_group=None."
                )
            return [_to_motif(r) for r in records]
        if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
            raise InputTypeError(f"ids must be a list of matrix ID strings such as ['MA0139.1'], got {ids!r}.")
        motifs = []
        for matrix_id in ids:
            record = db.fetch_motif_by_id(matrix_id) if matrix_id.strip() else None
            if record is None:
                raise InputError(
                    f"matrix ID {matrix_id!r} is not in {release}; check it at https://jaspar.elixir.no "
                    "or choose another release."
                )
            motifs.append(_to_motif(record))
    return motifs
