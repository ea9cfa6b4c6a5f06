"""Bundled plugin: the ``unit_importance`` method (ExplaiNN, Novakovsky et al. 2023).

For each unit of an ExplaiNN model: its PPM from the windows activating it above half its maximum, its
best JASPAR match (Tomtom), its final-layer weights (recovered by an exact least-squares fit) and its
importance, unit output x weight, on the sequences activating it. Needs only predictions and layer
activations, so it runs on ExplaiNN from any backend (PyTorch, ONNX export, Keras).

Modules: ``units`` (layer detection, the activation scan, PPM counts, the output-layer fit),
``unit_importance`` (the verb), ``result`` and ``report``.
"""

from __future__ import annotations

import os

from interpkit import BATCH_SIZE, RANDOM_STATE, VERBOSE, Capability, MethodSpec, Param, hookimpl

__all__ = ["explain_options", "register_methods"]

_PARAMS = (
    Param("activation_layer", str, None, "Layer of the unit activation maps (N, U, L'), name or layer-table index "
          "(`interpkit info MODEL`); unset: the end of the first convolution's conv/norm/activation chain "
          "(ExplaiNN: the exp activation).", accepts=(int,)),
    Param("unit_layer", str, None, "Layer of the unit outputs (N, U) feeding the linear output layer, name or "
          "index; unset: the input of the last dense layer.", accepts=(int,)),
    Param("both_strands", bool, True, "Use the sequences and their reverse complements (the reference's "
          "--rev-complement): thresholds, sites, PPMs and importance distributions cover both strands."),
    Param("motif_db", str, "jaspar", "Target motifs for Tomtom: jaspar (pyjaspar, offline, --jaspar-release, CORE "
          "vertebrates), a MEME file, or none.", accepts=(os.PathLike,)),
    Param("jaspar_release", str, "JASPAR2020", "JASPAR release for --motif-db jaspar (the reference's)."),
    Param("q_threshold", float, 0.05, "Tomtom q-value below which a unit is annotated with its best match.",
          min=0.0, max=1.0),
    Param("top", int, 10, "Units per output in the report's box plots (by median importance).", min=1),
    BATCH_SIZE,
    RANDOM_STATE,
    VERBOSE,
)

_SUMMARY = ("ExplaiNN unit interpretation: unit PPMs (windows above half the unit's maximum activation), JASPAR "
            "annotation, final-layer weights and unit importance (unit output x weight) per output.")
_SOURCE = ("Novakovsky, Fornes, Saraswat, Mostafavi & Wasserman (2023) Genome Biol. 24:154, Methods (model "
           "interpretation) and Figs 2-3; reference code wassermanlab/ExplaiNN.")


@hookimpl
def register_methods() -> list[MethodSpec]:
    """The unit_importance method (needs predictions and layer activations)."""
    return [MethodSpec("unit_importance", "interpkit_unit_importance.unit_importance:unit_importance", _SUMMARY,
                       requires=frozenset({Capability.PREDICT, Capability.LAYERS}), params=_PARAMS, source=_SOURCE,
                       explain=explain_options, explain_order=30)]


def explain_options(model: object, context: object) -> dict | str:
    """In ``interpkit explain``: run on ExplaiNN-like models (unit activation and unit-output layers found)."""
    from interpkit.errors import InterpkitError
    from interpkit_unit_importance.units import find_unit_layers

    try:
        find_unit_layers(model.layers())
    except InterpkitError as exc:
        return f"not an ExplaiNN-like model ({str(exc).split(';')[0]})"
    return {}
