"""Bundled plugin: the ONNX backend (onnxruntime, with gradients through a torch translation).

Registers backend ``onnx``: ``.onnx`` files and in-memory ``onnx.ModelProto`` objects
become :class:`interpkit_onnx.model.OnnxModel` (Predictor and LayerProbe). Nothing
here imports onnx, onnxruntime or torch; the loader is imported on first use.

Security: an ONNX file is data and runs no code of its own. Custom-op libraries
(native code) are never registered implicitly; the ``custom_op_libraries`` option is
honoured only with ``trust=True``.
"""

from __future__ import annotations

from interpkit import BackendSpec, Capability, hookimpl

__all__ = ["register_backends"]


def _claims(source: object) -> bool:
    """In-memory ONNX models (``onnx.ModelProto``), recognised without importing onnx."""
    kind = type(source)
    return kind.__name__ == "ModelProto" and kind.__module__.split(".")[0] == "onnx"


@hookimpl
def register_backends() -> list[BackendSpec]:
    """The ONNX backend."""
    return [
        BackendSpec(
            name="onnx",
            load="interpkit_onnx.load:load",
            summary="ONNX models run with onnxruntime (CUDA provider when usable); gradients through a torch "
                    "translation of the common op set.",
            suffixes=(".onnx",),
            claims=_claims,
            requires=("onnx", "onnxruntime"),
            extra="onnx",
            capabilities=frozenset(Capability),
        )
    ]
