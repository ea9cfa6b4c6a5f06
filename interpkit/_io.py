"""Atomic file output: a file is either absent or complete, and never silently replaced."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from interpkit.errors import InputError

__all__ = ["atomic_write", "check_out_dir", "file_digest", "prepare_out_dir"]


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
    half-written file never takes the final name.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another name or pass overwrite=True (--force).")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
