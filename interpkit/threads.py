"""Running independent pieces of work side by side on worker threads, one framework thread each."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["cpu_workers", "one_torch_thread"]


def cpu_workers(n_jobs: int) -> int:
    """Worker count for ``n_jobs``: itself when >= 1, one per CPU core for -1.

    Raises
    ------
    InputError
        For 0 or values below -1.
    """
    from interpkit.errors import InputError

    if n_jobs == -1:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise InputError(f"n_jobs == {n_jobs!r}, must be -1 (one per CPU core) or an int >= 1.")
    return n_jobs


@contextmanager
def one_torch_thread() -> Iterator[int]:
    """PyTorch on one intra-op thread inside the block (if PyTorch is loaded); restored after.

    Worker threads then run ops side by side (torch releases the GIL) instead of each small op being split
    over OpenMP threads, whose fork and join cost as much as the work. Yields the thread count PyTorch
    had (the number of workers to use), or the CPU count when PyTorch is not loaded.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield cpu_workers(-1)
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)
