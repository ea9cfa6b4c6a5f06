"""Bundled plugin: the ``predict`` method (model outputs for every sequence)."""

from __future__ import annotations

from interpkit import BATCH_SIZE, VERBOSE, Capability, MethodSpec, hookimpl

__all__ = ["register_methods"]


@hookimpl
def register_methods() -> list[MethodSpec]:
    """The predict method."""
    return [
        MethodSpec(
            name="predict",
            func="interpkit_predict.predict:predict",
            summary="Model outputs for every sequence, as an array and a table.",
            requires=frozenset({Capability.PREDICT}),
            params=(BATCH_SIZE, VERBOSE),
            source="Forward pass of the model; no interpretation.",
            explain_order=0,
        )
    ]
