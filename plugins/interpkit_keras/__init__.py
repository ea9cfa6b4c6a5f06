"""Bundled plugin: the Keras backend (Keras 3, and tf_keras for legacy Keras 1/2 files).

Registers backend ``keras``: it claims ``.keras``, ``.h5``, ``.hdf5`` and ``.json`` files and
in-memory Keras 3 / tf_keras models, and serves predictions, gradients (``tf.GradientTape``),
the layer table, activations (with pre-activation values), single neurons and max-pool inputs.
Importing this module imports no framework; :mod:`interpkit_keras.load` does, lazily.
"""

from __future__ import annotations

from interpkit import BackendSpec, Capability, hookimpl

from ._runtime import is_keras_model

__all__ = ["register_backends"]


@hookimpl
def register_backends() -> list[BackendSpec]:
    """The keras backend."""
    return [
        BackendSpec(
            name="keras",
            load="interpkit_keras.load:load",
            summary="Keras models: .keras, full-model HDF5, JSON + HDF5 weights (Keras 3, then tf_keras), or objects.",
            suffixes=(".keras", ".h5", ".hdf5", ".json"),
            claims=is_keras_model,
            requires=("tensorflow", "keras"),  # tf_keras only for legacy files, imported then
            extra="keras",
            capabilities=frozenset(Capability),
        )
    ]
