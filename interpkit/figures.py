"""Figures for reports: matplotlib Figures on their own Agg canvas, never through pyplot.

Drawing without pyplot leaves the user's matplotlib backend and open figures alone (a notebook
keeps its inline backend), and a figure is freed as soon as its PNG is taken.
"""

from __future__ import annotations

import io
from typing import Any

__all__ = ["figure_png", "new_figure"]


def new_figure(width: float, height: float) -> Any:
    """A new ``matplotlib.figure.Figure`` of ``width`` x ``height`` inches on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure: Any, *, dpi: int = 80, tight: bool = True) -> bytes:
    """The figure as PNG bytes (``dpi`` dots per inch, cropped to its content when ``tight``); then cleared."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    figure.clear()
    return buffer.getvalue()
