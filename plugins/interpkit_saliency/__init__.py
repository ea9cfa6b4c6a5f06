"""Bundled plugin: the ``saliency`` method (input gradients and gradient x input)."""

from __future__ import annotations

from interpkit import BATCH_SIZE, TARGETS, VERBOSE, Capability, MethodSpec, Param, hookimpl

__all__ = ["explain_options", "register_methods"]


def explain_options(model: object, context: object) -> str:
    """Off in ``interpkit explain``: DeepLIFT or ISM give the attributions there."""
    return "off by default (DeepLIFT or ISM give the attributions); ask for it with --option saliency.correction=true"


@hookimpl
def register_methods() -> list[MethodSpec]:
    """The saliency method (its ``attributions`` are gradient x input for one-hot input)."""
    return [
        MethodSpec(
            name="saliency",
            func="interpkit_saliency.saliency:saliency",
            summary="Input gradients as hypothetical contributions; attributions = gradient x input.",
            requires=frozenset({Capability.PREDICT, Capability.GRADIENT}),
            params=(
                TARGETS,
                Param("correction", bool, False, "Subtract the mean over the 4 bases from the gradient at each "
                      "position (Majdandzic et al. 2023)."),
                BATCH_SIZE,
                VERBOSE,
            ),
            per_sequence=True,  # interpkit run: in chunks on disk, resumable
            source="Simonyan et al. (2014) ICLR workshop; Shrikumar et al. (2016) arXiv:1605.01713 "
                   "(gradient x input); Majdandzic et al. (2023) Genome Biol. 24:109 (correction).",
            explain=explain_options,
            explain_order=12,
        )
    ]
