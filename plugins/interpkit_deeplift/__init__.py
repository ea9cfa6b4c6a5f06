"""Bundled plugin: the ``deeplift`` method (DeepLIFT rescale rule, dinucleotide-shuffled references).

Registration imports nothing heavy: the method lives in :mod:`interpkit_deeplift.deeplift`
(torch is imported on first use).
"""

from __future__ import annotations

from interpkit import BATCH_SIZE, RANDOM_STATE, TARGETS, VERBOSE, Capability, MethodSpec, Param, hookimpl

__all__ = ["register_methods"]

N_REFERENCES = Param("n_references", int, 20, "Dinucleotide-shuffled references per sequence.", min=1)
WARNING_THRESHOLD = Param("warning_threshold", float, 1e-3,
                          "Largest convergence delta (output units) accepted without a warning.", min=0)
DL_BATCH_SIZE = Param(BATCH_SIZE.name, BATCH_SIZE.type, BATCH_SIZE.default,
                      "Sequences per pass (each with all its references); unset chooses from memory.", min=1)


@hookimpl
def register_methods() -> list[MethodSpec]:
    """The deeplift method."""
    return [
        MethodSpec(
            name="deeplift",
            func="interpkit_deeplift.deeplift:deeplift",
            summary="DeepLIFT (rescale rule) contributions against dinucleotide shuffles; models with a "
                    "PyTorch form (PyTorch, ONNX, Keras).",
            requires=frozenset({Capability.PREDICT, Capability.TORCH_FUNCTION}),
            params=(TARGETS, N_REFERENCES, RANDOM_STATE, DL_BATCH_SIZE, WARNING_THRESHOLD, VERBOSE),
            per_sequence=True,  # interpkit run: in chunks on disk, resumable
            source="Shrikumar, Greenside & Kundaje (2017) ICML, rescale rule (sec. 3.5.1), summation-to-delta "
                   "(eq. 1); references averaged as DeepSHAP (Lundberg & Lee 2017); hypothetical contributions "
                   "as TF-MoDISco (Shrikumar et al. 2018).",
            explain_order=10,  # runs whenever the model has a PyTorch form (TORCH_FUNCTION)
        )
    ]
