"""Result types: what every method returns, able to write itself to files.

A method returns one :class:`Result`: named arrays (shapes documented by the method),
named tables, motifs, the parameters it ran with, the provenance (interpkit version,
the plugin and its version, the model) and an optional convergence ``delta``.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interpkit._io import atomic_write, write_npz
from interpkit.errors import InputError
from interpkit.tables import Table

if TYPE_CHECKING:
    from interpkit.motifs import Motif

__all__ = ["AttributionResult", "Result", "png_img", "write_result"]


def png_img(png: bytes, alt: str) -> str:
    """An HTML ``<img>`` holding PNG bytes inline (base64 data URL), so a report is one self-contained file."""
    import base64

    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _cell(value: Any) -> str:
    """A table cell as shown in reports: floats to 4 significant digits (the TSV files keep every digit)."""
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class Result:
    """The output of one method run.

    Attributes
    ----------
    method : str
        The method's registered name; also the stem of every file written.
    arrays : mapping of str to ndarray
        Named arrays; each method documents their shapes and units.
    tables : mapping of str to Table
        Named tables (written as TSV).
    motifs : tuple of Motif
        Motifs found (written as MEME).
    params : mapping
        The options the method ran with, defaults filled in.
    provenance : mapping
        interpkit version, plugin name/distribution/version, model name and backend.
    sequence_names : tuple of str
        Names of the N input sequences, in order.
    delta : ndarray or None
        Convergence delta where the method has one (e.g. DeepLIFT), shape per method.
    warnings : tuple of str
        Problems the user should see in the report.
    """

    method: str
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    tables: Mapping[str, Table] = field(default_factory=dict)
    motifs: tuple[Motif, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    sequence_names: tuple[str, ...] = ()
    delta: np.ndarray | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, arr in self.arrays.items():
            if not isinstance(arr, np.ndarray):
                raise InputError(f"Result {self.method!r}: array {name!r} is {type(arr).__name__}, not an ndarray.")
        for name, table in self.tables.items():
            if not isinstance(table, Table):
                raise InputError(f"Result {self.method!r}: table {name!r} is {type(table).__name__}, not a Table.")
        object.__setattr__(self, "motifs", tuple(self.motifs))
        object.__setattr__(self, "sequence_names", tuple(self.sequence_names))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def write(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
        """Write every part of the result into ``out_dir`` (created if absent).

        Files: ``<method>.npz`` (arrays, plus ``delta`` and ``sequence_names``), any further
        ``.npz`` files of :meth:`npz_files`, ``<method>_<table>.tsv`` per table,
        ``<method>.meme`` when there are motifs, and ``<method>.json`` (params, provenance,
        warnings and the list of files). Every target is checked before anything is written,
        and each file is written atomically; values JSON cannot hold are written as their ``repr``.

        Returns
        -------
        list of Path
            The files written, the JSON manifest last.

        Raises
        ------
        InputError
            If any of the files exists and ``overwrite`` is False (nothing is written).
        OutOfSpaceError
            If the disk fills; the files this call had created are removed.
        """
        return write_result(self, out_dir, self.npz_files(), self.tables, overwrite=overwrite)

    def npz_files(self) -> dict[str, dict[str, np.ndarray]]:
        """The ``.npz`` files :meth:`write` writes: {file name: {key: array}}.

        ``<method>.npz`` holds the arrays, ``delta`` and ``sequence_names``; subclasses add files
        (e.g. the tfmodisco-lite inputs of :class:`AttributionResult`).
        """
        arrays = dict(self.arrays)
        if self.delta is not None:
            arrays["delta"] = self.delta
        if self.sequence_names:
            arrays["sequence_names"] = np.array(self.sequence_names)
        return {f"{self.method}.npz": arrays} if arrays else {}

    def report_section(self, *, max_rows: int = 50) -> str:
        """An HTML fragment for the run report: parameters, warnings and tables.

        Methods with figures subclass :class:`Result` and extend this.
        """
        esc = html.escape
        parts = [f"<section class='result' id='{esc(self.method)}'><h2>{esc(self.method)}</h2>"]
        if self.warnings:
            parts.append("<ul class='warnings'>" + "".join(f"<li>{esc(w)}</li>" for w in self.warnings) + "</ul>")
        params = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in self.params.items())
        parts.append(f"<table class='params'>{params}</table>")
        for name, table in self.tables.items():
            head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(_cell(v))}</td>" for v in row) + "</tr>"
                for row in table.rows[:max_rows]
            )
            more = f"<p>{len(table) - max_rows} more rows in the TSV file.</p>" if len(table) > max_rows else ""
            parts.append(f"<h3>{esc(name)}</h3><table class='sortable'><tr>{head}</tr>{body}</table>{more}")
        parts.append("</section>")
        return "".join(parts)


@dataclass(frozen=True)
class AttributionResult(Result):
    """Per-base attributions (ISM, saliency, DeepLIFT, ...), in the layout tfmodisco-lite reads.

    Arrays (each method may add more, e.g. ISM's raw deltas):

    - ``one_hot``: ndarray of shape (N, 4, L), float32, the sequences explained;
    - ``attributions``: ndarray of shape (N, K, 4, L), float32, for the K explained outputs
      (``targets``), non-zero only at the observed base (the usual "projected" scores);
    - ``hypothetical``: ndarray of shape (N, K, 4, L), float32, the contribution each base
      would make at each position (Shrikumar et al. 2018, TF-MoDISco's hypothetical scores).

    Units are those of the model's outputs (e.g. logits) per base. ``targets`` are the output
    indices explained, in order.
    """

    targets: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("one_hot", "attributions", "hypothetical"):
            if name not in self.arrays:
                raise InputError(f"AttributionResult {self.method!r} lacks array {name!r}.")
        n, _, length = self.arrays["one_hot"].shape
        for name in ("attributions", "hypothetical"):
            if self.arrays[name].shape != (n, len(self.targets), 4, length):
                raise InputError(f"AttributionResult {self.method!r}: {name} has shape {self.arrays[name].shape}, "
                                 f"expected {(n, len(self.targets), 4, length)}.")
        object.__setattr__(self, "targets", tuple(int(t) for t in self.targets))

    def npz_files(self) -> dict[str, dict[str, np.ndarray]]:
        """As :meth:`Result.npz_files`, plus tfmodisco-lite inputs.

        ``<method>_ohe.npz`` (one-hot, key ``arr_0``, (N, 4, L)) and, per explained output,
        ``<method>_hyp_<index>.npz`` (hypothetical scores, key ``arr_0``), so that
        ``modisco motifs -s <method>_ohe.npz -a <method>_hyp_<index>.npz`` runs on them.
        """
        files = super().npz_files()
        files[f"{self.method}_ohe.npz"] = {"arr_0": self.arrays["one_hot"]}
        for k, target in enumerate(self.targets):
            files[f"{self.method}_hyp_{target}.npz"] = {"arr_0": self.arrays["hypothetical"][:, k]}
        return files

    def top_windows(self, k: int, *, n: int = 3, width: int = 40) -> list[tuple[int, int]]:
        """The ``n`` sequences with the largest total |attribution| for explained output number ``k``,
        each with the start of its ``width``-bp window of largest |attribution|: [(sequence, start)].
        """
        scores = np.abs(self.arrays["attributions"][:, k]).sum(axis=1)  # (N, L)
        width = min(width, scores.shape[1])
        windows = np.lib.stride_tricks.sliding_window_view(scores, width, axis=1).sum(axis=2)  # (N, L - w + 1)
        order = np.argsort(-scores.sum(axis=1), kind="stable")[:n]
        return [(int(i), int(windows[i].argmax())) for i in order]

    def report_section(self, *, max_rows: int = 50) -> str:
        """The base section plus, per explained output, logos of the attributions of the top sequences
        (the 40-bp window of largest |attribution| of the 3 sequences with the most), as inline PNG."""

        from interpkit.logos import logo_png

        esc = html.escape
        names = list(self.provenance.get("output_names") or [])
        parts = [super().report_section(max_rows=max_rows).removesuffix("</section>")]
        for k, target in enumerate(self.targets):
            label = names[target] if target < len(names) else f"output {target}"
            parts.append(f"<h3>Top sequences for {esc(label)}</h3>")
            for i, start in self.top_windows(k):
                window = self.arrays["attributions"][i, k][:, start:start + 40]
                name = self.sequence_names[i] if i < len(self.sequence_names) else f"seq{i}"
                parts.append(png_img(logo_png(window, kind="weight", title=f"{name} {start}-{start + 40}"), name))
        parts.append("</section>")
        return "".join(parts)


def write_result(result: Result, out_dir: str | os.PathLike, npz: Mapping[str, Mapping[str, Any]],
                 tables: Mapping[str, Table], *, overwrite: bool = False) -> list[Path]:
    """Write ``result``'s files (see :meth:`Result.write`) with the given ``.npz`` contents and tables.

    :meth:`Result.write` passes the result's own; a chunked run (:mod:`interpkit.chunks`) passes
    arrays streamed from its chunk files (:class:`~interpkit._io.RowBlocks`) and no tables. Files are checked before anything is written; if a write fails, the files
    this call created are removed (files it replaced under ``overwrite`` stay replaced).

    Returns
    -------
    list of Path
        The files written, the JSON manifest last.

    Raises
    ------
    InputError
        If any of the files exists and ``overwrite`` is False (nothing is written).
    OutOfSpaceError
        If the disk fills.
    """
    from interpkit.meme import write_meme

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    planned = [*npz, *(f"{result.method}_{name}.tsv" for name in tables)]
    planned += [f"{result.method}.meme"] if result.motifs else []
    manifest = f"{result.method}.json"
    main = npz.get(f"{result.method}.npz", {})
    body = json.dumps({
        "method": result.method,
        "params": _jsonable(result.params),
        "provenance": _jsonable(result.provenance),
        "warnings": list(result.warnings),
        "arrays": {k: {"shape": list(v.shape), "dtype": str(np.dtype(v.dtype))} for k, v in main.items()},
        "files": planned,
    }, indent=2, default=repr)
    existing = [name for name in [*planned, manifest] if (out / name).exists()]
    if existing and not overwrite:  # check everything before writing anything
        raise InputError(f"{out} already holds {', '.join(existing)}; choose another directory or pass "
                         "overwrite=True (--force).")
    created: list[Path] = []
    try:
        for name, arrays in npz.items():
            write_npz(out / name, arrays, overwrite=overwrite)
            created.append(out / name)
        for name, table in tables.items():
            table.to_tsv(out / f"{result.method}_{name}.tsv", overwrite=overwrite)
            created.append(out / f"{result.method}_{name}.tsv")
        if result.motifs:
            write_meme(out / f"{result.method}.meme", result.motifs, overwrite=overwrite)
            created.append(out / f"{result.method}.meme")
        with atomic_write(out / manifest, overwrite=overwrite) as handle:
            handle.write(body)
    except BaseException:
        for path in created:
            if path.name not in existing:
                path.unlink(missing_ok=True)
        raise
    return [*created, out / manifest]
