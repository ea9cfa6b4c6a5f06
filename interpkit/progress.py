"""Progress bars on long work (tqdm, on stderr), and the batching they count."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["batch_slices"]


def batch_slices(n: int, batch_size: int, *, verbose: bool = False, desc: str = "", unit: str = "seq"
                 ) -> Iterator[slice]:
    """Yield ``slice(i, i + batch_size)`` over ``range(n)``, with a progress bar when verbose.

    Parameters
    ----------
    n : int
        Number of items (sequences).
    batch_size : int
        Items per batch, >= 1.
    verbose : bool
        Show a tqdm bar on stderr counting items. Default is False.
    desc : str
        Bar label. Default is "".
    unit : str
        What is counted (e.g. "seq", "variant"). Default is "seq".

    Raises
    ------
    InputError
        If ``batch_size`` < 1.
    """
    from interpkit.validation import check_scalar

    check_scalar(batch_size, "batch_size", int, min_val=1)
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=desc, unit=unit, leave=False)
    try:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield slice(start, stop)
            if bar is not None:
                bar.update(stop - start)
    finally:
        if bar is not None:
            bar.close()
