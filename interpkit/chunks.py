"""Long runs on disk: per-sequence methods in chunks that survive interruption, in memory independent of N.

``interpkit run`` splits the sequences of a per-sequence method (``MethodSpec.per_sequence``: the
attribution methods) into chunks of ``chunk_size``. Each finished chunk is written atomically to
``OUT/checkpoints/chunk_<i>.npz``, with ``OUT/checkpoints/run.json`` recording what the run is
(method, options, model and sequence fingerprints). A rerun with ``resume=True`` (``--resume``)
checks that record and skips the chunks already there; a killed process leaves at most a hidden
``.part`` file, which is never taken for a chunk. When every chunk is done the outputs are
assembled by streaming the chunks into the files :meth:`~interpkit.results.Result.write` writes,
so memory depends on ``chunk_size``, not on the number of sequences; then the checkpoints go.

Methods that keep their own checkpoints (``MethodSpec.checkpoint_param``, e.g. NeuronMotif's
finished neurons) share the folder and its ``--resume`` / ``--force`` rules through
:func:`checkpoint_dir`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from interpkit._io import atomic_write, check_out_dir, check_resume, file_digest, remove_partials, write_npz
from interpkit.errors import InputError, InterpkitError, MissingFileError, PluginError
from interpkit.plugins import Registry, get_registry
from interpkit.results import Result, _jsonable, write_result
from interpkit.validation import check_one_hot, check_scalar

__all__ = ["CHECKPOINTS", "checkpoint_dir", "make_checkpoint_dir", "remove_checkpoint_dir", "run_chunked"]

#: The folder of an output directory that holds an unfinished run's finished pieces.
CHECKPOINTS = "checkpoints"
_RECORD = "run.json"
_MARKER = ".interpkit"  # in a checkpoints folder interpkit made: only such a folder is ever deleted
_META = "__meta__"
#: Options that do not change a result, so a resume may differ in them.
_UNRECORDED = frozenset({"verbose", "batch_size"})


def checkpoint_dir(out: str | os.PathLike, *, resume: bool = False, force: bool = False) -> Path:
    """Check ``out`` for a run that keeps finished pieces in ``out/checkpoints``; return that folder.

    Parameters
    ----------
    out : path-like
        The output directory (created later, by the run).
    resume : bool
        Continue the interrupted run whose checkpoints ``out`` holds. Default is False.
    force : bool
        Start over: delete ``out/checkpoints`` (interpkit's own folder, known by its marker file)
        and write over same-named outputs; other files in ``out`` are kept. Default is False.

    Returns
    -------
    Path
        ``out/checkpoints``; create it with :func:`make_checkpoint_dir`.

    Raises
    ------
    InputError
        If both ``resume`` and ``force`` are given; if ``out/checkpoints`` exists but interpkit did
        not make it; if ``out`` holds an interrupted run and neither ``resume`` nor ``force`` is
        given; if ``resume`` is given and there is nothing to resume; if ``out`` is a file or
        (without ``force``) a directory holding other files.
    """
    out = Path(out)
    work = out / CHECKPOINTS
    _clear_done(out / f".{CHECKPOINTS}.done")  # left by a process killed while deleting finished checkpoints
    if work.exists() and not (work / _MARKER).is_file():
        raise InputError(f"{work} exists but interpkit did not make it (it lacks {_MARKER}); interpkit keeps "
                         "unfinished runs there, so choose another --out.")
    check_resume(out, work, resume=resume, force=force)
    if resume:
        remove_partials(work)  # temporary files of the killed process
        remove_partials(out)
        return work
    if work.is_dir():  # --force: start over
        shutil.rmtree(work)
    check_out_dir(out, force=force)
    return work


def make_checkpoint_dir(work: str | os.PathLike) -> Path:
    """Create the folder :func:`checkpoint_dir` named, with the marker that makes it interpkit's.

    Parameters
    ----------
    work : path-like
        The checkpoints folder (``out/checkpoints``, or a method's own ``checkpoint_dir``).

    Returns
    -------
    Path
        ``work``.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / _MARKER).is_file():
        with atomic_write(work / _MARKER) as handle:
            handle.write("Finished pieces of an interrupted interpkit run: continue it with --resume; --force "
                         "deletes this folder.\n")
    return work


def remove_checkpoint_dir(work: str | os.PathLike) -> None:
    """Delete a finished run's checkpoints. The folder is first renamed (one atomic step) to a hidden
    ``.checkpoints.done``, so that a process killed while deleting leaves a finished run, not a
    half-deleted one that ``--resume`` would recompute; :func:`checkpoint_dir` clears such leftovers.

    Parameters
    ----------
    work : path-like
        A folder made by :func:`make_checkpoint_dir`.
    """
    work = Path(work)
    done = work.with_name(f".{work.name}.done")
    _clear_done(done)
    os.replace(work, done)
    shutil.rmtree(done)


def _clear_done(done: Path) -> None:
    if done.is_dir() and (done / _MARKER).is_file():  # only what interpkit renamed
        shutil.rmtree(done)


def run_chunked(
    method: str,
    model: Any,
    X: Any,
    out: str | os.PathLike,
    *,
    chunk_size: int = 10_000,
    resume: bool = False,
    force: bool = False,
    registry: Registry | None = None,
    **options: Any,
) -> list[Path]:
    """Run a per-sequence method over many sequences in chunks, writing its files into ``out``.

    The files are those :meth:`Result.write` writes for the whole run (for attributions
    ``<method>.npz``, ``<method>_ohe.npz``, ``<method>_hyp_<t>.npz``, ``<method>.json``), with
    the same arrays as ``interpkit.run(method, model, X, **options).write(out)`` (the manifest's
    warnings are the chunks', each once); memory is bounded by ``chunk_size`` sequences, not by N.
    Every sequence is read and checked before the first chunk runs.

    Parameters
    ----------
    method : str
        A method whose spec is ``per_sequence`` (e.g. "deeplift", "saliency", "ism").
    model : Predictor, path or framework object
        Anything :func:`interpkit.load` accepts.
    X : path or ndarray of shape (N, 4, L)
        FASTA (read as it goes) or ``.npy`` (memory-mapped) file, or one-hot sequences.
    out : path-like
        Output directory; must be new or empty unless ``force`` or ``resume``.
    chunk_size : int
        Sequences per chunk, >= 1. Default is 10,000 (for 200-bp sequences and one output, about
        0.1 GB of attribution arrays per chunk).
    resume : bool
        Continue an interrupted run in ``out``: chunks already written are not recomputed.
        Default is False.
    force : bool
        Start over in an ``out`` that holds files or an interrupted run. Default is False.
    registry : Registry or None
        Default is None (the installed plugins).
    **options
        The method's options.

    Returns
    -------
    list of Path
        The files written, the JSON manifest last.

    Raises
    ------
    InputError
        For a method that is not per-sequence, an ``out`` that holds files or an interrupted run
        (see :func:`checkpoint_dir`), a resume whose method, options, model or sequences differ
        from the interrupted run's (the message names them), and invalid sequences or options.
    MissingFileError
        If the sequence file does not exist.
    CapabilityError, PluginError
        As :func:`interpkit.run`.
    OutOfSpaceError
        If the disk fills; finished chunks stay, so ``resume`` continues after space is freed.

    Errors raised while a chunk runs say which sequences it holds and how many finished chunks
    were kept.
    """
    from interpkit.api import load, run
    from interpkit.params import bind_params

    registry = registry or get_registry()
    spec = registry.get("methods", method)
    if not spec.per_sequence:
        raise InputError(f"method {method!r} does not work sequence by sequence, so it cannot run in chunks; "
                         "use interpkit.run.")
    chunk_size = check_scalar(chunk_size, "chunk_size", int, min_val=1)
    model = load(model, registry=registry)
    bound = bind_params(method, spec.params, options)  # bad options fail before any work
    out = Path(out)
    work = checkpoint_dir(out, resume=resume, force=force)
    source = _Sequences(X, model)
    record = _record(method, bound, model, registry, source, chunk_size)
    if resume:
        _check_record(work, record)
    for _ in source.chunks(chunk_size):  # every record is checked before any work (memory: one chunk)
        pass
    chunks: list[Path] = []
    for i, (start, names, arr) in enumerate(source.chunks(chunk_size)):
        path = work / f"chunk_{i:06d}.npz"
        if not path.exists():  # a finished chunk is complete: it is renamed into place only once written
            try:
                result = run(method, model, arr, names=names, start_index=start, registry=registry, **options)
                if not work.is_dir():  # the first chunk ran, so options the method refuses have left nothing
                    make_checkpoint_dir(work)
                    with atomic_write(work / _RECORD) as handle:
                        json.dump(record, handle, indent=2)
                _write_chunk(path, result, len(arr))
            except InterpkitError as exc:
                raise _in_chunk(exc, start, names, len(chunks), work) from None
            del result
        chunks.append(path)
        del arr  # one chunk in memory at a time: not this one while the next is read
    if not chunks:
        raise InputError(f"no sequences in {X}; pass a file with at least one sequence.")
    files = _assemble(chunks, out, overwrite=force or resume)
    remove_checkpoint_dir(work)
    return files


def _record(method: str, bound: Mapping[str, Any], model: Any, registry: Registry, source: _Sequences,
            chunk_size: int) -> dict[str, Any]:
    """What a run is, as JSON: a resume must match it in every key."""
    from interpkit import __version__

    plugin = registry.plugin_of("methods", method)
    reduction = getattr(model, "output_reduction", None)
    record = {
        "method": method,
        "options": {k: v for k, v in sorted(bound.items()) if k not in _UNRECORDED},
        "model": {"name": model.name, "checkpoint": dict(model.checkpoint), "input": model.input_spec.describe(),
                  "outputs": list(model.output_names), "reduction": reduction.describe() if reduction else None},
        "versions": {"interpkit": __version__, plugin.name: plugin.version},
        "sequences": source.fingerprint,
        "chunk_size": chunk_size,
    }
    return json.loads(json.dumps(_jsonable(record), default=repr))  # as it reads back from run.json


def _in_chunk(exc: InterpkitError, start: int, names: list[str], done: int, work: Path) -> InterpkitError:
    """``exc`` (same type) saying which sequences failed and what was kept for ``--resume``."""
    kept = (f"; {done} finished chunk(s) are kept in {work}: fix the cause and rerun with --resume"
            if done else "")
    return type(exc)(f"{exc} (in sequences {start}-{start + len(names) - 1} of the run, from {names[0]!r}{kept})")


def _check_record(work: Path, record: Mapping[str, Any]) -> None:
    """Refuse a resume whose run differs from the interrupted one, naming what differs."""
    try:
        old = json.loads((work / _RECORD).read_text())
    except (OSError, ValueError):
        raise InputError(f"cannot resume: {work / _RECORD} is missing or unreadable; start over with --force "
                         "(without --resume).") from None
    differ = [key for key in record if old.get(key) != record[key]]
    if differ:
        raise InputError(f"cannot resume the run in {work.parent}: its {', '.join(differ)} differ from this "
                         "command's (or interpkit was upgraded); rerun with the same model, loading options, "
                         "sequences and options, or start over with --force (without --resume).")


def _write_chunk(path: Path, result: Result, n: int) -> None:
    """One chunk's arrays (keys "<file>:<key>") and its params, provenance and warnings, atomically."""
    if result.tables or result.motifs:
        raise PluginError(f"method {result.method!r} is declared per_sequence but returned tables or motifs.")
    arrays, layout = {}, {}
    for name, contents in result.npz_files().items():
        layout[name] = list(contents)
        for key, array in contents.items():
            if np.ndim(array) == 0 or len(array) != n:
                raise PluginError(f"method {result.method!r} is declared per_sequence but its array {key!r} has "
                                  f"shape {np.shape(array)}, not {n} sequences first.")
            arrays[f"{name}:{key}"] = array
    meta = {"method": result.method, "layout": layout, "params": _jsonable(result.params),
            "provenance": _jsonable(result.provenance), "warnings": list(result.warnings)}
    arrays[_META] = np.array(json.dumps(meta, default=repr))
    write_npz(path, arrays, compress=False)


class _Rows:
    """One array of the whole run, read chunk by chunk (:class:`interpkit._io.RowBlocks`)."""

    def __init__(self, chunks: list[Path], member: str) -> None:
        self.chunks, self.member = chunks, member
        headers = [_header(path, member) for path in chunks]
        self.shape = (sum(shape[0] for shape, _ in headers), *headers[0][0][1:])
        self.dtype = np.result_type(*(dtype for _, dtype in headers))  # e.g. names: the longest

    def blocks(self) -> Iterator[np.ndarray]:
        for path in self.chunks:
            with np.load(path, allow_pickle=False) as archive:
                yield archive[self.member]


def _header(path: Path, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array of an .npz file, without reading its data."""
    import zipfile

    with zipfile.ZipFile(path) as archive, archive.open(f"{member}.npy") as handle:
        version = np.lib.format.read_magic(handle)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(handle)
    return shape, dtype


def _assemble(chunks: list[Path], out: Path, *, overwrite: bool) -> list[Path]:
    """The run's files, streamed from its chunk files by :func:`interpkit.results.write_result`."""
    metas = []
    for path in chunks:
        with np.load(path, allow_pickle=False) as archive:
            metas.append(json.loads(str(archive[_META])))
    first = metas[0]
    warnings = list(dict.fromkeys(w for meta in metas for w in meta["warnings"]))
    shell = Result(first["method"], params=first["params"],
                   provenance=first["provenance"], warnings=tuple(warnings))
    npz = {name: {key: _Rows(chunks, f"{name}:{key}") for key in keys} for name, keys in first["layout"].items()}
    return write_result(shell, out, npz, {}, overwrite=overwrite)


class _Sequences:
    """The run's sequences, read one chunk at a time, and their fingerprint."""

    def __init__(self, X: Any, model: Any) -> None:
        self.spec = model.input_spec
        if isinstance(X, (str, os.PathLike)):
            self.path: Path | None = Path(X)
            self.array = None
            if not self.path.is_file():
                raise MissingFileError(f"sequence file {X} does not exist; check the path.")
            self.fingerprint = {"file": self.path.name, "bytes": self.path.stat().st_size,
                                "sha256": file_digest(self.path)}
        else:
            self.path = None
            self.array = check_one_hot(X, "X", length=self.spec.length)
            self.fingerprint = {"sha256": hashlib.sha256(self.array.reshape(-1).view(np.uint8)).hexdigest(),
                                "shape": list(self.array.shape)}

    def chunks(self, size: int) -> Iterator[tuple[int, list[str], np.ndarray]]:
        """(index of the first sequence, names, one-hot (n, 4, L) float32) per chunk of ``size``."""
        if self.array is not None:
            for start in range(0, len(self.array), size):
                stop = min(start + size, len(self.array))
                yield start, [f"seq{i}" for i in range(start, stop)], self.array[start:stop]
            return
        from interpkit.sequences import iter_sequences

        start = 0
        for names, arr in iter_sequences(self.path, alphabet=self.spec.alphabet, length=self.spec.length,
                                         min_length=self.spec.min_length, chunk_size=size):
            n = len(arr)
            yield start, names, arr
            del arr  # not kept while the next chunk is read
            start += n
