"""``filter_motifs`` in ``interpkit explain``: runs with its defaults on every model with a convolution."""

from __future__ import annotations

from typing import Any

__all__ = ["explain_options"]


def explain_options(model: Any, context: Any) -> dict[str, Any] | str:
    """In ``interpkit explain``: runs with its defaults on every model with a convolution layer.

    Parameters
    ----------
    model : Predictor with LayerProbe
    context : ExplainContext
        Not used.

    Returns
    -------
    dict or str
        {} when the default layer (the end of the first convolution's conv/norm/activation chain,
        :func:`interpkit.activation_motifs.first_conv_chain`) exists; otherwise a one-line reason.
    """
    from interpkit.activation_motifs import first_conv_chain
    from interpkit.errors import InterpkitError

    try:
        layers = model.layers()
    except InterpkitError as exc:
        return f"the model cannot list its layers ({str(exc).split(';')[0]})"
    if first_conv_chain(layers) is None:
        return "no convolution layer in the layer table"
    return {}
