"""Atomic file output: a file is either absent or complete, and never silently replaced."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from interpkit.errors import InputError, OutOfSpaceError, PluginError

__all__ = ["RowBlocks", "atomic_write", "check_out_dir", "check_resume", "file_digest", "prepare_out_dir",
           "remove_partials", "write_npz"]

#: errno values of a write that failed for lack of room: a full disk, a quota, a file-size limit.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, mode: str = "w", overwrite: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it into place only on success.

    Parameters
    ----------
    path : path-like
        The final file name. Its directory must exist.
    mode : {"w", "wb"}
        Text or binary. Default is "w".
    overwrite : bool
        Whether an existing ``path`` may be replaced. Default is False.

    Raises
    ------
    InputError
        If ``path`` exists and ``overwrite`` is False.

    Notes
    -----
    The temporary file is removed if the body raises (a full disk included), so a
    half-written file never takes the final name. A write that fails for lack of room (full
    disk, quota, file-size limit) raises :class:`~interpkit.errors.OutOfSpaceError` naming
    ``path``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another name or pass overwrite=True (--force).")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            raise OutOfSpaceError(f"no room left to write {path} ({os.strerror(exc.errno)}); the partial file was "
                                  "removed and nothing else was touched. Free some space (or choose another --out) "
                                  "and run again.") from None
        raise


def remove_partials(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write` that a killed process left in ``directory``.

    A write cut short (e.g. by SIGKILL) leaves ``.NAME.XXXX.part`` beside ``NAME``; no reader takes
    it for ``NAME``. A run that resumes in ``directory`` calls this first, as nobody else writes there.

    Parameters
    ----------
    directory : path-like
        The folder to clean (not its subfolders).

    Returns
    -------
    list of Path
        The files removed (none if ``directory`` does not exist).
    """
    folder = Path(directory)
    removed = [p for p in sorted(folder.glob(".*.part")) if p.is_file()] if folder.is_dir() else []
    for part in removed:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return removed


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_out_dir(out_dir: str | os.PathLike, *, force: bool = False, resumable: str | None = None) -> Path:
    """Check, without creating anything, that ``out_dir`` may receive a run's outputs.

    Parameters
    ----------
    resumable : str or None
        A subdirectory name (e.g. "checkpoints") that an interrupted run of the same method left; a
        directory holding only it counts as empty. Default is None.

    Raises
    ------
    InputError
        If ``out_dir`` is a file, or a non-empty directory and ``force`` is False.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a directory name.")
    if out.is_dir() and any(p.name != resumable for p in out.iterdir()) and not force:
        raise InputError(f"output directory {out} is not empty; choose a new directory or pass --force.")
    return out


def check_resume(out: str | os.PathLike, state: str | os.PathLike, *, resume: bool, force: bool,
                 what: str = "run") -> None:
    """The ``--resume`` / ``--force`` rules for a run in ``out`` whose unfinished state is ``state``
    (a file or folder that exists only while the run is unfinished).

    Parameters
    ----------
    out : path-like
        The output directory.
    state : path-like
        E.g. ``out/checkpoints`` (chunked methods, NeuronMotif) or ``out/train_state.pt`` (training).
    resume, force : bool
        The user's flags.
    what : str
        The kind of run, for the messages (e.g. "training run"). Default is "run".

    Raises
    ------
    InputError
        For ``resume`` with ``force``; ``resume`` with no ``state``; a ``state`` with neither flag.
    """
    out, state = Path(out), Path(state)
    if resume and force:
        raise InputError(f"--resume continues the interrupted {what} in {out} and --force starts it over; pass "
                         "only one of them.")
    if resume and not state.exists():
        raise InputError(f"nothing to resume in {out}: it holds no interrupted {what} (no {state.name}); drop "
                         "--resume, or choose another --out.")
    if state.exists() and not (resume or force):
        raise InputError(f"{out} holds an interrupted {what} ({state.name}); pass --resume to continue it or "
                         "--force to start it over.")


def prepare_out_dir(out_dir: str | os.PathLike, *, force: bool = False, resumable: str | None = None) -> Path:
    """Create an output directory, refusing to write into a non-empty one.

    Parameters
    ----------
    out_dir : path-like
        Directory for a run's outputs; created with its parents if absent.
    force : bool
        Allow a directory that already holds files (files of the same names are
        replaced; nothing else is touched). Default is False.
    resumable : str or None
        As :func:`check_out_dir`. Default is None.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        If ``out_dir`` is a file, or holds files and ``force`` is False.
    """
    out = check_out_dir(out_dir, force=force, resumable=resumable)
    out.mkdir(parents=True, exist_ok=True)
    return out


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks (for checkpoint fingerprints and checksums).

    Parameters
    ----------
    path : path-like
    algorithm : str
        A :mod:`hashlib` algorithm name, e.g. "sha256" or "md5". Default is "sha256".

    Returns
    -------
    str
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RowBlocks(Protocol):
    """An array too large to hold, given as blocks of rows: ``shape``, ``dtype`` and ``blocks()``,
    which yields C-ordered arrays whose concatenation along axis 0 is the whole array."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def blocks(self) -> Iterable[np.ndarray]: ...


def write_npz(path: str | os.PathLike, arrays: Mapping[str, Any], *, overwrite: bool = False,
              compress: bool = True) -> None:
    """Write arrays as an ``.npz`` file (what :func:`numpy.savez_compressed` writes), atomically.

    Parameters
    ----------
    path : path-like
    arrays : mapping of str to ndarray or RowBlocks
        A :class:`RowBlocks` is streamed block by block, so memory does not grow with its size.
    overwrite : bool
        As :func:`atomic_write`. Default is False.
    compress : bool
        Deflate the members. Default is True.

    Raises
    ------
    InputError
        If ``path`` exists and ``overwrite`` is False.
    OutOfSpaceError
        If the disk fills (the partial file is removed).
    """
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_write(path, mode="wb", overwrite=overwrite) as handle, \
            zipfile.ZipFile(handle, "w", compression=method, allowZip64=True) as archive:
        for name, array in arrays.items():
            if not hasattr(array, "blocks"):
                array = np.asarray(array)
                shape, dtype, blocks = array.shape, array.dtype, (array,)
            else:
                shape, dtype, blocks = tuple(array.shape), np.dtype(array.dtype), array.blocks()
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_2_0(member, header)
                rows = 0
                for block in blocks:
                    block = np.require(block, dtype, "C")
                    if block.shape[1:] != shape[1:]:
                        raise PluginError(f"write_npz: {name} has a block of shape {block.shape}, not (n, "
                                          f"{', '.join(map(str, shape[1:]))}) as announced.")
                    rows += len(block) if block.ndim else 1
                    if block.size:
                        member.write(block.reshape(-1).view(np.uint8))
                if shape and rows != shape[0]:
                    raise PluginError(f"write_npz: {name} had {rows} rows, not the {shape[0]} announced.")
