"""Bundled plugin: the ``filter_motifs`` method (first-layer filter motifs, Kelley et al. 2016; Koo & Eddy 2019).

For each channel (filter) of a convolutional layer, by default the first convolution after its
normalisation and activation: its PPM from the input windows activating it above a fraction of its maximum,
its information content, and its best Tomtom match in JASPAR. Needs only predictions and layer activations
(:mod:`interpkit.activation_motifs` does the scan), so every backend that lists its layers serves it.

Modules: ``filter_motifs`` (the verb), ``result``, ``report`` and ``explain`` (the ``interpkit explain`` hook).
"""

from __future__ import annotations

import os

from interpkit import BATCH_SIZE, VERBOSE, Capability, MethodSpec, Param, hookimpl

__all__ = ["register_methods"]

_PARAMS = (
    Param("layer", str, None, "Layer whose channels are read, name or layer-table index (`interpkit info MODEL`); "
          "unset: the end of the first convolution's conv/norm/activation chain, before any pooling.",
          accepts=(int,)),
    Param("threshold", float, 0.5, "A site is a position whose activation exceeds this fraction of the filter's "
          "maximum over all sequences and positions.", min=0.0, max=1.0),
    Param("both_strands", bool, True, "Scan the sequences and their reverse complements (DNA only): maxima, "
          "sites and PPMs cover both strands."),
    Param("motif_db", str, "jaspar", "Target motifs for Tomtom: jaspar (pyjaspar, offline, --jaspar-release, CORE "
          "vertebrates), a MEME file, or none.", accepts=(os.PathLike,)),
    Param("jaspar_release", str, "JASPAR2020", "JASPAR release for --motif-db jaspar."),
    Param("q_threshold", float, 0.05, "Tomtom q-value below which a filter is annotated with its best match.",
          min=0.0, max=1.0),
    Param("top", int, 10, "Filters whose logos the report shows (annotated ones first, by q-value).", min=1),
    BATCH_SIZE,
    VERBOSE,
)

_SUMMARY = ("First-layer filter motifs: per convolutional filter, the PPM of the windows activating it above "
            "half its maximum, its information content and its best JASPAR match (Tomtom).")
_SOURCE = ("Kelley, Snoek & Rinn (2016) Genome Res. 26:990 (Basset, Methods 'Filter motifs'); Koo & Eddy (2019) "
           "PLoS Comput. Biol. 15:e1007560; Novakovsky et al. (2023) Genome Biol. 24:154 (ExplaiNN); Tomtom: "
           "Gupta et al. (2007) Genome Biol. 8:R24.")


@hookimpl
def register_methods() -> list[MethodSpec]:
    """The filter_motifs method (needs predictions and layer activations)."""
    return [MethodSpec("filter_motifs", "interpkit_filter_motifs.filter_motifs:filter_motifs", _SUMMARY,
                       requires=frozenset({Capability.PREDICT, Capability.LAYERS}), params=_PARAMS, source=_SOURCE,
                       explain="interpkit_filter_motifs.explain:explain_options", explain_order=20)]
