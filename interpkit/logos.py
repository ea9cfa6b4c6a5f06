"""Sequence logos of motifs and attribution matrices, drawn with logomaker on a private Agg canvas.

Letter heights follow logomaker's matrix types (Tareen & Kinney, Bioinformatics 36:2272, 2020):
"information" (p * information content, bits; Schneider & Stephens, NAR 18:6097, 1990),
"probability" (p) and "weight" (values as given, negatives below the axis: PWMs, attributions).
Figures are ``matplotlib.figure.Figure`` objects that pyplot never sees, so nothing leaks into
pyplot's figure list and the user's backend is untouched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from interpkit._io import atomic_write
from interpkit.errors import InputError
from interpkit.motifs import ALPHABETS, Motif, check_background, information_content
from interpkit.validation import check_choice, check_matrix, check_scalar

__all__ = ["KINDS", "logo_heights", "logo_png", "plot_logo", "save_logo"]

KINDS = ("information", "probability", "weight")
_YLABEL = {"information": "bits", "probability": "probability", "weight": "weight"}
_FORMATS = (".png", ".svg")


def logo_heights(matrix: Any, *, kind: str = "information", background: Any = None) -> np.ndarray:
    """Letter heights of a logo.

    Parameters
    ----------
    matrix : array-like of shape (4, w)
        A PPM for "information" and "probability"; any real values for "weight".
    kind : {"information", "probability", "weight"}
        "information": ``p[b, j] * IC[j]`` in bits, where IC is the information content of column j
        against ``background`` (a column's stack is as tall as its IC: 2 bits for one certain
        letter, 0 for a uniform column). "probability": ``p``. "weight": the values as given.
        Default is "information".
    background : None or array-like of shape (4,)
        Background for "information"; None means uniform. Default is None.

    Returns
    -------
    heights : ndarray of shape (4, w), float64

    Raises
    ------
    InputTypeError
        If ``matrix`` is not numeric.
    InputError
        If ``kind`` is unknown, ``matrix`` is not (4, w) (or not a PPM where one is needed), or
        ``background`` is given with a kind other than "information".
    """
    check_choice(kind, "kind", KINDS)
    if background is not None and kind != "information":
        raise InputError(f"background is only used with kind='information', not kind={kind!r}; drop it.")
    if kind == "weight":
        return check_matrix(matrix, "matrix")
    p = check_matrix(matrix, "matrix", probabilities=True)
    if kind == "probability":
        return p
    return p * information_content(p, background=check_background(background))[None, :]


def plot_logo(
    matrix: Any,
    *,
    kind: str = "information",
    ax: Any = None,
    alphabet: str | None = None,
    title: str | None = None,
) -> Any:
    """Draw a sequence logo with logomaker.

    Parameters
    ----------
    matrix : Motif or array-like of shape (4, w)
        A motif (its PPM is drawn) or a matrix as :func:`logo_heights` takes it.
    kind : {"information", "probability", "weight"}
        Letter heights, see :func:`logo_heights`. Default is "information".
    ax : matplotlib.axes.Axes or None
        Axes to draw into; None creates a new figure (not registered with pyplot), reachable as
        ``ax.figure``. Default is None.
    alphabet : {"ACGT", "ACGU"} or None
        Row letters; None means the motif's alphabet, or "ACGT" for a matrix. Default is None.
    title : str or None
        Axes title. Default is None.

    Returns
    -------
    matplotlib.axes.Axes
        The axes holding the logo; x = position (0-based), y = ``kind``'s unit (bits for
        "information").

    Raises
    ------
    InputTypeError
        If ``matrix`` is not numeric or ``title`` not a string.
    InputError
        As :func:`logo_heights`, or if ``alphabet`` is not standard or differs from the motif's.
    """
    matrix, alphabet = _unpack(matrix, alphabet)
    heights = logo_heights(matrix, kind=kind)
    if title is not None:
        check_scalar(title, "title", str)
    import logomaker
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        ax = _figure(heights.shape[1]).add_subplot()
    logomaker.Logo(pd.DataFrame(heights.T, columns=list(alphabet)), ax=ax, color_scheme="classic")
    if kind == "information":
        ax.set_ylim(0, max(2.0, heights.sum(axis=0).max()))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(_YLABEL[kind])
    ax.set_xlabel("position")
    if title is not None:
        ax.set_title(title)
    return ax


def save_logo(
    motif_or_matrix: Any,
    path: str | os.PathLike,
    *,
    kind: str = "information",
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Draw a logo and write it as PNG or SVG (chosen by the suffix of ``path``), atomically.

    Parameters
    ----------
    motif_or_matrix : Motif or array-like of shape (4, w)
        What to draw, as :func:`plot_logo` takes it.
    path : path-like
        Output file ending in ".png" (150 dpi) or ".svg"; its directory must exist.
    kind : {"information", "probability", "weight"}
        Letter heights, see :func:`logo_heights`. Default is "information".
    title : str or None
        Title; None means "<id> <name>" for a motif and no title for a matrix. Default is None.
    overwrite : bool
        Whether an existing file may be replaced. Default is False.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        If the suffix is neither .png nor .svg, ``path`` exists and ``overwrite`` is False, or as
        :func:`plot_logo`.
    """
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in _FORMATS:
        raise InputError(f"logo file {path} must end in .png or .svg, found {path.suffix!r}; rename it.")
    check_scalar(overwrite, "overwrite", bool)
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another name or pass overwrite=True (--force).")
    if title is None and isinstance(motif_or_matrix, Motif):
        title = f"{motif_or_matrix.id} {motif_or_matrix.name}".strip()
    ax = plot_logo(motif_or_matrix, kind=kind, title=title)
    with atomic_write(path, mode="wb", overwrite=overwrite) as handle:
        ax.figure.savefig(handle, format=fmt[1:], dpi=150, bbox_inches="tight")
    ax.figure.clear()  # the figure was never registered with pyplot; clearing frees its artists now
    return path


def logo_png(matrix: Any, *, kind: str = "information", title: str | None = None, dpi: int = 100) -> bytes:
    """A logo as PNG bytes (for embedding in an HTML report); arguments as :func:`plot_logo`.

    Parameters
    ----------
    matrix : Motif or array-like of shape (4, w)
    kind : {"information", "probability", "weight"}
        Default is "information"; attributions use "weight".
    title : str or None
        Default is None.
    dpi : int
        Resolution. Default is 100.

    Returns
    -------
    bytes

    Raises
    ------
    InputError
        As :func:`plot_logo`.
    """
    from interpkit.figures import figure_png

    return figure_png(plot_logo(matrix, kind=kind, title=title).figure, dpi=dpi)


def _unpack(matrix: Any, alphabet: str | None) -> tuple[Any, str]:
    """A Motif's PPM and alphabet, or the matrix with the requested alphabet (default ACGT)."""
    if isinstance(matrix, Motif):
        if alphabet not in (None, matrix.alphabet):
            raise InputError(f"alphabet == {alphabet!r} but motif {matrix.id} is {matrix.alphabet}; drop alphabet.")
        return matrix.ppm, matrix.alphabet
    return matrix, check_choice("ACGT" if alphabet is None else alphabet, "alphabet", ALPHABETS)


def _figure(width: int) -> Any:
    """A new Figure on its own Agg canvas (no pyplot), sized to the motif."""
    from interpkit.figures import new_figure

    return new_figure(min(max(2.0, 0.4 * width + 1.0), 40.0), 2.0)
