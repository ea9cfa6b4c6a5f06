"""Bundled plugin: the DeepSEA architecture (Zhou & Troyanskaya 2015) for Kipoi's PyTorch weights.

Registers two architectures, both on the ``torch`` backend with input (N, 4, 1, 1000) in
A, C, G, T order (the model recodes to DeepSEA's A, G, C, T itself) and 919 outputs:

* ``deepsea``: Kipoi DeepSEA/predict, the mean of forward and reverse-complement predictions;
* ``deepsea-veff``: Kipoi DeepSEA/variantEffects, one strand (use it for DeepLIFT and other
  methods that batch inputs with references).

Output names are ``out0`` ... ``out918`` unless ``labels=`` names a file (Kipoi's
``DeepSEA/predictor_names.txt``, CC-BY 3.0, is not shipped).
"""

from __future__ import annotations

from interpkit import ModelSpec, hookimpl

__all__ = ["register_models"]

_SOURCE = ("Zhou & Troyanskaya (2015) Nat. Methods 12:931-934; Kipoi DeepSEA "
           "(kipoi/models DeepSEA/model_architecture.py, zenodo 1466993).")
_OPTIONS = {"layout": "NC1L", "length": 1000}


@hookimpl
def register_models() -> list[ModelSpec]:
    """The DeepSEA architectures."""
    return [
        ModelSpec(
            name="deepsea",
            backend="torch",
            load="interpkit_deepsea.model:load_predict",
            summary="DeepSEA chromatin-feature CNN, 1000 bp -> 919 features, averaged over both strands "
                    "(Kipoi DeepSEA/predict weights).",
            source=_SOURCE,
            backend_options=dict(_OPTIONS),
        ),
        ModelSpec(
            name="deepsea-veff",
            backend="torch",
            load="interpkit_deepsea.model:load_variant_effects",
            summary="DeepSEA, forward strand only (Kipoi DeepSEA/variantEffects weights); for DeepLIFT and ISM.",
            source=_SOURCE,
            backend_options=dict(_OPTIONS),
        ),
    ]
