"""Bundled plugin: a minimal numpy backend serving the analytic PWM-scanning model.

Registers backend ``numpy`` (claims MEME files and in-memory numpy models) and the
architecture ``pwm-scan``. The model's outputs, gradients and activations are known
in closed form, which makes it the oracle that tests of every method use.
"""

from __future__ import annotations

from interpkit import BackendSpec, Capability, ModelSpec, hookimpl

__all__ = ["register_backends", "register_models"]


def _claims(source: object) -> bool:
    return type(source).__module__.startswith("interpkit_numpy")


@hookimpl
def register_backends() -> list[BackendSpec]:
    """The numpy backend."""
    return [
        BackendSpec(
            name="numpy",
            load="interpkit_numpy.pwm_scan:load",
            summary="Models written in numpy; reads a MEME file as a PWM-scanning model.",
            suffixes=(".meme",),
            claims=_claims,
            capabilities=frozenset({Capability.PREDICT, Capability.GRADIENT, Capability.LAYERS, Capability.NEURON}),
        )
    ]


@hookimpl
def register_models() -> list[ModelSpec]:
    """The analytic PWM-scanning architecture."""
    return [
        ModelSpec(
            name="pwm-scan",
            backend="numpy",
            load="interpkit_numpy.pwm_scan:PWMScanModel.from_meme",
            summary="Max (or sum) over positions of PWM log-odds scores; one output per motif.",
            source="Stormo (2000) Bioinformatics 16:16-23 (PWM log-odds scoring).",
        )
    ]
