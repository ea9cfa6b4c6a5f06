"""Bundled plugin: the ``ism`` method (in silico saturation mutagenesis)."""

from __future__ import annotations

from interpkit import TARGETS, VERBOSE, Capability, MethodSpec, Param, hookimpl

__all__ = ["explain_options", "register_methods"]


def explain_options(model: object, context: object) -> dict | str:
    """In ``interpkit explain``, ISM gives the attributions of models DeepLIFT cannot run on."""
    if "deeplift" in context.results:
        return "DeepLIFT gave the attributions (ISM is the fallback for models without a PyTorch form)"
    return {}


@hookimpl
def register_methods() -> list[MethodSpec]:
    """The ism method."""
    return [
        MethodSpec(
            name="ism",
            func="interpkit_ism.ism:ism",
            summary="In silico saturation mutagenesis: the output change for every single-base substitution.",
            requires=frozenset({Capability.PREDICT}),
            params=(
                TARGETS,
                Param("start", int, None, "First mutated position, 0-based; unset means 0.", min=0),
                Param("end", int, None, "Position after the last mutated one (exclusive); unset means the "
                      "sequence length.", min=1),
                Param("batch_size", int, None, "Variants per forward pass; unset sizes batches to the model.",
                      min=1),
                VERBOSE,
            ),
            per_sequence=True,  # interpkit run: in chunks on disk, resumable
            source="Alipanahi et al. (2015) Nat. Biotechnol. 33:831; Zhou & Troyanskaya (2015) Nat. Methods "
                   "12:931; mean-centred projection as tangermeme's saturation_mutagenesis.",
            explain=explain_options,
            explain_order=11,
        )
    ]
