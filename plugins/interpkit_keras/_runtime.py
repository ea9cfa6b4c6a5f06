"""Lazy, quiet imports of TensorFlow, Keras 3 and tf_keras, and which of them owns a model.

Keras 3 (``keras``) and legacy Keras 2 (``tf_keras``) are separate packages and import side by
side in one process: ``TF_USE_LEGACY_KERAS`` only decides what ``tf.keras`` points to, so this
backend never sets it and imports ``tf_keras`` by its own name when it needs it.

TensorFlow logs quietly: when the user has not set ``TF_CPP_MIN_LOG_LEVEL`` before the first import,
it is set to "2" (errors only; TensorFlow reads it at its first log message, which may come long
after the import), and stderr is closed while TensorFlow is imported and probes for GPUs, since absl
prints its start-up notes (oneDNN, CUDA drivers, the cuInit error of CPU-only hosts) whatever that
variable says. A value the user set is left as it is, and then nothing is hidden.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from interpkit.errors import CapabilityError

__all__ = ["framework_of", "gpus", "import_framework", "is_keras_model", "quiet_warnings", "reason"]

_LOG_VAR = "TF_CPP_MIN_LOG_LEVEL"
_quiet = {"ours": False}  # whether this module set TF_CPP_MIN_LOG_LEVEL (then later imports are quiet too)


@contextlib.contextmanager
def _quiet_start() -> Iterator[None]:
    if os.environ.get(_LOG_VAR) is not None and not _quiet["ours"]:
        yield
        return
    os.environ[_LOG_VAR], _quiet["ours"] = "2", True
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_NOISE = ("Graph execution error", "Detected at node", "File ", "[[")


def reason(exc: BaseException) -> str:
    """The informative line of a framework exception (TensorFlow prepends tracebacks of graph nodes)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    useful = [re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line) for line in lines
              if line and not line.startswith(_NOISE)]
    return f"{type(exc).__name__}: {useful[0][:240] if useful else ''}"


def import_framework(name: str) -> ModuleType:
    """Import ``"tensorflow"``, ``"keras"`` (Keras 3) or ``"tf_keras"`` quietly.

    Raises
    ------
    CapabilityError
        If the package is missing, or Keras 3 runs on a backend other than TensorFlow
        (gradients here go through ``tf.GradientTape``).
    """
    module = sys.modules.get(name)
    if module is None:
        try:
            with _quiet_start(), quiet_warnings():
                module = importlib.import_module(name)
                sys.modules["tensorflow"].config.list_physical_devices("GPU")  # CUDA probing logs on CPU hosts
        except ImportError as exc:
            raise CapabilityError(f"the keras backend needs {name} ({exc}); pip install 'interpkit[keras]'.") from None
    if name == "keras" and module.backend.backend() != "tensorflow":
        raise CapabilityError(f"Keras 3 runs on the {module.backend.backend()!r} backend; the interpkit keras backend "
                              "needs TensorFlow: set KERAS_BACKEND=tensorflow before starting Python.")
    return module


def gpus() -> list[Any]:
    """The GPUs TensorFlow sees."""
    return import_framework("tensorflow").config.list_physical_devices("GPU")


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """Hide Keras' and TensorFlow's own warnings (legacy configs, input structure, tracing notes) meanwhile."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        with warnings.catch_warnings():
            for category in (UserWarning, DeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category, module=r"(keras|tf_keras|tensorflow)(\.|$)")
            yield
    finally:
        logger.setLevel(level)


def is_keras_model(obj: Any) -> bool:
    """Whether ``obj`` is a Keras 3 or tf_keras model, judged by its class's module (imports nothing)."""
    return any(c.__module__.split(".")[0] in ("keras", "tf_keras") and c.__name__ in ("Model", "Functional",
               "Sequential") for c in type(obj).__mro__)


def framework_of(model: Any) -> ModuleType:
    """The package (``keras`` or ``tf_keras``) whose classes built ``model``."""
    return import_framework("tf_keras" if type(model).__module__.startswith("tf_keras") else "keras")
