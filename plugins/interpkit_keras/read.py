"""Reading Keras files: ``.keras``, full-model HDF5, and JSON architecture + HDF5 weights.

Keras 3 is tried first; files it refuses (Keras 1/2 configs such as Optimus 5-Prime's HDF5 or the
list-style Sequential JSON of the TAL/GATA model) are read with tf_keras. Before either framework
sees a file, its model config is scanned for Lambda layers and serialized Python lambdas: loading
those runs code stored in the file, so they are refused unless ``trust=True`` (tf_keras would run
a Lambda from an HDF5 file even in its own safe mode).
"""

from __future__ import annotations

import contextlib
import json
import sys
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from interpkit.errors import CapabilityError, InputError, InterpkitError, MissingFileError

from ._runtime import import_framework, quiet_warnings, reason

__all__ = ["read_keras_file", "weights_for"]

_H5 = (".h5", ".hdf5")


def weights_for(path: Path) -> Path:
    """The HDF5 weights file beside a JSON architecture file.

    Rule: ``<stem>_modelJson.json`` pairs with ``<stem>_modelWeights.h5`` (the Kundaje lab
    convention of the TAL/GATA model); any other ``<stem>.json`` with the first of
    ``<stem>.weights.h5``, ``<stem>.h5``, ``<stem>.hdf5`` that exists.

    Raises
    ------
    MissingFileError
        If no such file exists; the message lists the names tried and the ``weights=`` option.
    """
    stem = path.name[: -len(path.suffix)]
    if stem.endswith("_modelJson"):
        candidates = [path.with_name(stem[: -len("_modelJson")] + "_modelWeights.h5")]
    else:
        candidates = [path.with_name(stem + s) for s in (".weights.h5", ".h5", ".hdf5")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(c.name for c in candidates)
    raise MissingFileError(f"no weights file beside the architecture {path} (looked for {tried}); pass "
                           "weights='path/to/weights.h5' (the HDF5 file saved with model.save_weights).")


def _model_config(path: Path) -> tuple[dict, str | None, str]:
    """The model config (a dict), for JSON files the JSON text, and the Keras version that wrote the file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            text = path.read_text()
            config = json.loads(text)
            return config, text, str(config.get("keras_version", "")) if isinstance(config, dict) else ""
        if suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json")), None, "3"
        import h5py

        with h5py.File(path, "r") as handle:
            raw, version = handle.attrs.get("model_config"), handle.attrs.get("keras_version", b"")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        kind = {".json": "a Keras JSON architecture", ".keras": "a Keras 3 .keras archive"}.get(suffix, "HDF5")
        raise InputError(f"{path} is not readable as {kind} ({type(exc).__name__}: {exc}).") from None
    if raw is None:
        raise InputError(f"{path} holds weights only (no model config); load its architecture JSON with "
                         f"weights='{path}' (interpkit.load('model.json', weights=...)).")
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path} has a damaged model config ({exc}); re-save the model, or load its architecture "
                         "JSON with weights=.") from None
    return config, None, version.decode() if isinstance(version, bytes) else str(version)


def _code_layers(node: Any, owner: str | None = None) -> list[str]:
    """Names of layers whose config holds a Lambda layer or a serialized Python lambda."""
    found: list[str] = []
    if isinstance(node, dict):
        config = node.get("config")
        name = config.get("name") if isinstance(config, dict) and isinstance(config.get("name"), str) else owner
        if node.get("class_name") in ("Lambda", "__lambda__"):
            found.append(name or "?")
        for value in node.values():
            found += _code_layers(value, name)
    elif isinstance(node, list):
        for value in node:
            found += _code_layers(value, owner)
    return list(dict.fromkeys(found))


#: Model classes a config may name besides the layers of ``keras.layers``/``tf_keras.layers``.
_MODEL_CLASSES = ("Functional", "Sequential", "Model", "TFOpLambda", "SlicingOpLambda")


def _unknown_classes(config: Any, custom: Mapping[str, Any]) -> list[str]:
    """Layer classes in a model config that neither Keras package defines and ``custom`` does not give."""
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for layers in (node.get("layers"), node.get("config") if node.get("class_name") == "Sequential" else None):
                if isinstance(layers, list):  # a model's layer list (Keras 1/2 Sequential: its config)
                    names.extend(item["class_name"] for item in layers
                                 if isinstance(item, dict) and isinstance(item.get("class_name"), str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    packages = [sys.modules[m].layers for m in ("keras", "tf_keras") if m in sys.modules]
    return [n for n in dict.fromkeys(names) if n not in custom and n not in _MODEL_CLASSES and
            not any(hasattr(layers, n) for layers in packages)]


def read_keras_file(
    path: Path, *, weights: Any = None, custom_objects: Mapping[str, Any] | None = None, trust: bool = False
) -> Any:
    """Load a Keras model file with Keras 3, falling back to tf_keras.

    Parameters
    ----------
    path : Path
        ``.keras``, ``.h5``/``.hdf5`` (full model) or ``.json`` (architecture; weights from
        ``weights`` or the sibling file found by :func:`weights_for`).
    weights : path-like or None
        HDF5 weights for a JSON architecture. Default is None.
    custom_objects : mapping of str to class or function, or None
        Custom layers, activations and functions, passed to the framework's loader. Default is None.
    trust : bool
        Allow Lambda layers (code stored in the file) and pass ``safe_mode=False``. Default is False.

    Returns
    -------
    keras.Model or tf_keras.Model

    Raises
    ------
    InputError
        For a file that is unreadable, holds weights only, contains code while not trusted, or
        that neither Keras 3 nor tf_keras can load (both reasons are given).
    MissingFileError
        If the weights of a JSON architecture cannot be found.
    """
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".json", *_H5):
        raise InputError(f"{path}: the keras backend reads .keras, .h5/.hdf5 and .json (+ weights) files, "
                         f"not {suffix or 'files without a suffix'}.")
    if weights is not None and suffix != ".json":
        raise InputError(f"weights= is for JSON architecture files; {path} is a full model file.")
    config, text, version = _model_config(path)
    if not trust:
        code = _code_layers(config)
        if code:
            raise InputError(
                f"{path} holds Lambda layer(s) {', '.join(code)}: loading them would run Python code stored in "
                "the file, so interpkit refuses them by default (safe mode). If you trust the file's source, "
                "pass trust=True (--trust)."
            )
    weights_path = None
    if suffix == ".json":
        weights_path = Path(weights) if weights is not None else weights_for(path)
        if not weights_path.is_file():
            raise MissingFileError(f"weights file {weights_path} does not exist.")
    custom = dict(custom_objects or {})

    def keras3() -> Any:
        keras = import_framework("keras")
        if weights_path is None:
            return keras.models.load_model(str(path), custom_objects=custom, compile=False, safe_mode=not trust)
        model = keras.saving.deserialize_keras_object(config, custom_objects=custom, safe_mode=not trust)
        model.load_weights(str(weights_path))
        return model

    def legacy() -> Any:
        tf_keras = import_framework("tf_keras")
        try:  # model_from_json takes no safe_mode; the scope is tf_keras-internal
            from tf_keras.src.saving.serialization_lib import SafeModeScope
        except ImportError:  # then tf_keras's own default holds: safe mode, Lambda layers refused
            SafeModeScope = lambda _safe: contextlib.nullcontext()

        with SafeModeScope(not trust):
            if weights_path is None:
                return tf_keras.models.load_model(str(path), custom_objects=custom, compile=False,
                                                  safe_mode=not trust)
            model = tf_keras.models.model_from_json(text, custom_objects=custom)
        model.load_weights(str(weights_path))
        return model

    failures = []
    attempts: list[tuple[str, Callable[[], Any]]] = [("Keras 3", keras3), ("tf_keras", legacy)]
    for label, attempt in attempts:
        try:
            with quiet_warnings():
                return attempt()
        except CapabilityError as exc:  # this framework is missing or unusable: say so, try the next
            failures.append(f"{label}: {exc}")
        except InterpkitError:
            raise
        except Exception as exc:  # noqa: BLE001 - any framework failure: try the next, then report all
            failures.append(f"{label}: {reason(exc)}")
    unknown = _unknown_classes(config, custom)
    if unknown:
        raise InputError(
            f"cannot load {path}: its config uses class(es) {', '.join(unknown)}, which neither Keras 3 nor tf_keras "
            "defines (custom layers); interpkit never imports code a file names. Pass the classes in Python: "
            f"interpkit.load(path, custom_objects={{'{unknown[0]}': {unknown[0]}, ...}}).")
    if version.startswith("1."):
        hint = (f"the file was written by Keras {version}, whose configs neither reads: rebuild the architecture "
                "in Keras and copy the weights over (h5py reads them)")
    else:
        hint = ("custom layers or functions need custom_objects={'Name': object}; weights must be the ones saved "
                "with this architecture")
    where = f" with weights {weights_path}" if weights_path else ""
    raise InputError(f"cannot load {path}{where}: {'; '.join(failures)}. Hint: {hint}.")
