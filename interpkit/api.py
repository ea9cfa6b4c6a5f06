"""The two verbs everything else builds on: :func:`load` a model, :func:`run` a method."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interpkit import __version__
from interpkit.errors import CapabilityError, InputError, InterpkitError, MissingFileError, PluginError
from interpkit.plugins import Registry, get_registry
from interpkit.predictor import Predictor, capabilities_of
from interpkit.probe import LayerProbe, layer_table
from interpkit.results import Result
from interpkit.validation import check_one_hot, check_scalar

__all__ = ["describe_model", "load", "run"]


def _backend_of(model: Any) -> str:
    return getattr(model, "backend_name", None) or type(model).__module__.split(".")[0]


def load(
    source: Any,
    *,
    backend: str | None = None,
    arch: str | None = None,
    registry: Registry | None = None,
    **options: Any,
) -> Predictor:
    """Load a model through whichever backend (or architecture plugin) claims it.

    Parameters
    ----------
    source : path-like, str or object
        A checkpoint file, or an in-memory framework model, or a Predictor (returned
        as is).
    backend : str or None
        Force a backend by name ("torch", "keras", "onnx", "numpy"). Default is None
        (chosen from the file suffix or the object's type).
    arch : str or None
        A named architecture from a model plugin (e.g. "basset") for checkpoints that
        hold weights only. Options its loader declares go to it; the others, over the
        architecture's ``backend_options``, go to its backend. Default is None: the
        ``arch`` recorded in ``model.json`` beside a checkpoint written by
        :func:`interpkit.train`, else none.
    registry : Registry or None
        Plugin registry to use. Default is None (the installed plugins).
    **options
        Passed to the backend or architecture loader (e.g. ``layout``, ``alphabet``,
        ``trust``).

    Returns
    -------
    Predictor

    Raises
    ------
    MissingFileError
        If ``source`` is a path that does not exist.
    PluginError
        If no backend claims the source, several do, or the named backend or
        architecture is unknown.
    CapabilityError
        If the backend's framework is not installed.
    InputError
        If an option is not one the loader takes.
    """
    if isinstance(source, Predictor) and backend is None and arch is None:
        return source
    if "trust" in options:  # a string such as "false" must never count as trust
        check_scalar(options["trust"], "trust", bool)
    registry = registry or get_registry()
    if isinstance(source, (str, os.PathLike)) and not Path(source).exists():
        raise MissingFileError(f"model file {source} does not exist.")
    if arch is None and backend is None and isinstance(source, (str, os.PathLike)):
        from interpkit.training import read_sidecar

        record = read_sidecar(source)  # model.json beside a checkpoint written by interpkit.train
        arch = record["arch"] if record else None
    if arch is not None:
        spec = registry.get("models", arch)
        loader = spec.resolve()
        own = _accepted(loader)
        mine = {k: v for k, v in options.items() if own is None or k in own}
        rest = {k: v for k, v in options.items() if k not in mine}
        if rest and spec.backend not in registry.backends:
            raise PluginError(f"architecture {arch!r} needs backend {spec.backend!r}, which no plugin provides.")
        model = _call_loader(loader, f"architecture {arch!r}", source, mine)
        if isinstance(model, Predictor):
            if rest:
                raise InputError(f"architecture {arch!r} does not take option(s) {', '.join(sorted(rest))}; "
                                 f"it takes: {', '.join(own or []) or 'none'}.")
            return model
        source, backend, options = model, spec.backend, {**spec.backend_options, **rest}
    if backend is not None:
        spec = registry.get("backends", backend)
    else:
        claimed = [b for b in registry.backends.values() if b.claims_source(source)]
        if not claimed:
            suffixes = sorted({s for b in registry.backends.values() for s in b.suffixes})
            raise PluginError(
                f"no backend recognises {source!r}; known file types: {', '.join(suffixes)}. "
                "Pass backend=... (--backend), or arch=... (--arch) for a weights-only checkpoint."
            )
        if len(claimed) > 1:
            names = ", ".join(b.name for b in claimed)
            raise PluginError(f"several backends claim {source!r} ({names}); choose one with backend=... (--backend).")
        spec = claimed[0]
    if not spec.available():
        raise CapabilityError(f"cannot load {source!r}: {spec.missing_message()}.")
    return _call_loader(spec.resolve(), f"backend {spec.name!r}", source, options)


def _accepted(loader: Any) -> list[str] | None:
    """The keyword options a loader takes after its source argument; None when it takes **kwargs."""
    params = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in list(params.items())[1:] if p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _call_loader(loader: Any, owner: str, source: Any, options: dict[str, Any]) -> Any:
    """Call a loader after checking the option names against its signature."""
    accepted = _accepted(loader)
    unknown = sorted(set(options) - set(accepted)) if accepted is not None else []
    if unknown:
        raise InputError(f"{owner} does not take option(s) {', '.join(unknown)}; "
                         f"it takes: {', '.join(accepted) or 'none'}.")
    return loader(source, **options)


def _read_X(X: Any, model: Predictor) -> tuple[np.ndarray, tuple[str, ...]]:
    spec = model.input_spec
    if isinstance(X, (str, os.PathLike)):
        from interpkit.sequences import read_sequences

        names, arr = read_sequences(X, alphabet=spec.alphabet, length=spec.length, min_length=spec.min_length)
        return arr, tuple(names)
    arr = check_one_hot(X, "X", length=spec.length)
    return arr, tuple(f"seq{i}" for i in range(len(arr)))


def run(
    method: str,
    model: Any,
    X: Any = None,
    *,
    names: Sequence[str] | None = None,
    start_index: int = 0,
    registry: Registry | None = None,
    **options: Any,
) -> Result:
    """Run a registered method on a model and sequences.

    Parameters
    ----------
    method : str
        A method name, as listed by ``interpkit plugins``.
    model : Predictor, path or framework object
        Anything :func:`load` accepts.
    X : ndarray of shape (N, 4, L) float32, path or None
        One-hot sequences, or a FASTA / ``.npy`` file read with
        :func:`interpkit.sequences.read_sequences`; None (the default) only for methods that make
        their own sequences (``MethodSpec.needs_sequences`` False, e.g. neuronmotif).
    names : sequence of str or None
        Sequence names (default: the FASTA names, else "seq0", "seq1", ...).
    start_index : int
        The index of the first sequence in a longer run split into chunks, for methods that take it
        (``MethodSpec.per_sequence``): their random draws for sequence i are seeded by
        ``start_index + i``, so a chunked run equals an unchunked one. Default is 0.
    registry : Registry or None
        Default is None (the installed plugins).
    **options
        The method's declared options; unknown names are an error.

    Returns
    -------
    Result
        With ``params`` filled in and ``provenance`` naming interpkit, the plugin and
        the model.

    Raises
    ------
    PluginError
        If the method is unknown or its function does not return a Result.
    CapabilityError
        If the model lacks a capability the method declares; raised before any work.
    InputError
        For invalid sequences, options, or a ``names`` list of the wrong length.
    PluginError
        Also when the method's function fails with an error that is not an
        :class:`~interpkit.errors.InterpkitError` (the original is the ``__cause__``).
    """
    from interpkit.params import bind_params

    registry = registry or get_registry()
    spec = registry.get("methods", method)
    model = load(model, registry=registry)
    missing = sorted(str(c) for c in spec.requires - capabilities_of(model))
    if missing:
        raise CapabilityError(
            f"method {method!r} needs {', '.join(missing)}, which model {model.name} "
            f"(backend {_backend_of(model)}) does not provide; pick a method that needs only "
            f"{', '.join(sorted(map(str, capabilities_of(model))))}."
        )
    params = bind_params(method, spec.params, options)
    if not spec.needs_sequences:
        if X is not None:
            raise InputError(f"method {method!r} makes its own sequences; leave out X (--sequences).")
        arr, names = None, ()
    else:
        if X is None:
            raise InputError(f"method {method!r} needs sequences: give X (--sequences FILE).")
        arr, default_names = _read_X(X, model)
        names = tuple(names) if names is not None else default_names
        if len(names) != len(arr):
            raise InputError(f"names has {len(names)} entries for {len(arr)} sequences; give one name per sequence.")
    func = spec.resolve()
    kwargs = dict(params)
    accepted = inspect.signature(func).parameters
    if "names" in accepted:
        kwargs["names"] = names
    if "start_index" in accepted:
        kwargs["start_index"] = check_scalar(start_index, "start_index", int, min_val=0)
    plugin = registry.plugin_of("methods", method)
    try:
        result = func(model, arr, **kwargs)
    except InterpkitError:
        raise
    except Exception as exc:  # a bug in the method or its framework: name the plugin, keep the cause
        raise PluginError(
            f"method {method!r} from plugin {plugin.name} ({plugin.distribution} {plugin.version}) failed: "
            f"{type(exc).__name__}: {exc}. Set INTERPKIT_DEBUG=1 for the traceback and report it to the plugin."
        ) from exc
    if not isinstance(result, Result):
        raise PluginError(f"method {method!r} (plugin {plugin.name}) returned {type(result).__name__}, not a Result.")
    provenance = {
        "interpkit": __version__,
        "plugin": plugin.name,
        "distribution": plugin.distribution,
        "plugin_version": plugin.version,
        "model": model.name,
        "backend": _backend_of(model),
        **result.provenance,
    }
    return dataclasses.replace(result, params={**params, **result.params}, provenance=provenance,
                               sequence_names=result.sequence_names or names)


def describe_model(model: Predictor) -> dict[str, Any]:
    """What ``interpkit info`` prints: name, backend, input spec, outputs, capabilities, layers.

    Parameters
    ----------
    model : Predictor
        A loaded model (see :func:`load`).

    Returns
    -------
    dict
        JSON-ready; ``layers`` is the layer table as a list of dicts (empty without
        the LAYERS capability); ``output_reduction`` appears for per-position models.
    """
    caps = capabilities_of(model)
    info: dict[str, Any] = {
        "name": model.name,
        "backend": _backend_of(model),
        "input": model.input_spec.describe(),
        "outputs": list(model.output_names),
        "capabilities": sorted(map(str, caps)),
        "checkpoint": dict(model.checkpoint),
        "layers": [],
    }
    reduction = getattr(model, "output_reduction", None)
    if reduction is not None:
        info["output_reduction"] = reduction.describe()
    if isinstance(model, LayerProbe) and "layers" in info["capabilities"]:
        info["layers"] = layer_table(model.layers()).records()
    return info
