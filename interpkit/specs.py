"""What plugins register: small frozen dataclasses, one per kind of thing.

Callables may be given as ``"module:attribute"`` strings, resolved on first use, so a
plugin can register without importing torch or tensorflow.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interpkit.errors import PluginError
from interpkit.params import Param
from interpkit.predictor import Capability

__all__ = ["RESERVED_PARAMS", "TRAIN_RESERVED", "BackendSpec", "MethodSpec", "ModelSpec", "resolve_callable"]


def resolve_callable(ref: Callable | str, owner: str) -> Callable:
    """Return ``ref`` itself, or import ``"module:attribute"``.

    Raises
    ------
    PluginError
        If the module or attribute cannot be imported; names ``owner``.
    """
    if callable(ref):
        return ref
    module_name, _, attr = ref.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"{owner}: cannot import {ref!r}: {type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise PluginError(f"{owner}: {ref!r} is not callable.")
    return obj


def _caps(values: Any) -> frozenset[Capability]:
    return frozenset(Capability(v) for v in values)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: Keywords that ``interpkit.run`` and ``interpkit run`` use themselves; a method option may not take them.
RESERVED_PARAMS = frozenset({"model", "X", "names", "registry", "method", "sequences", "out", "force",
                             "backend", "arch", "help"})
#: Keywords ``interpkit.train`` and ``interpkit train`` use for the data, the splits and the output.
TRAIN_RESERVED = frozenset({"data", "train", "valid", "test", "targets", "negatives", "bed", "genome", "length",
                            "alphabet", "task", "n_negatives", "normalise", "random_state", "out", "force",
                            "overwrite", "resume"})


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise PluginError(f"{kind} name {name!r} must be letters, digits, '_', '-' or '.', starting with a "
                          "letter or digit (it becomes a CLI word and a file name).")


@dataclass(frozen=True)
class MethodSpec:
    """An interpretation method.

    Attributes
    ----------
    name : str
        The verb users type: ``interpkit run NAME`` / ``interpkit.run("NAME", ...)``;
        letters, digits, "_", "-", ".".
    func : callable or str
        ``func(model, X, **options) -> Result``; may also accept ``names`` (the
        sequence names) as a keyword, which :func:`interpkit.run` then passes.
    summary : str
        One line for listings.
    requires : frozenset of Capability
        What the model must provide. Default is {PREDICT}.
    params : tuple of Param
        Declared options; the CLI and docs are generated from them. Names must be unique
        and not in :data:`RESERVED_PARAMS`.

    Raises
    ------
    PluginError
        For an invalid name or option names that clash.
    source : str
        The paper (and equation) the method implements.
    needs_sequences : bool
        False for methods that make their own sequences (e.g. NeuronMotif samples windows): they are
        called with X = None and refuse sequences. Default is True.
    checkpoint_param : str or None
        The option (a directory) where the method keeps finished pieces of a long run and resumes
        from; ``interpkit run`` sets it to ``OUT/checkpoints`` unless given, and accepts an output
        directory that holds only that folder, so rerunning an interrupted command resumes it.
        Default is None.
    per_sequence : bool
        Each sequence's outputs depend only on that sequence (random draws are seeded by its index:
        the function takes the keyword ``start_index``, the index of ``X[0]`` in the whole run), and
        the result holds only arrays with the sequences on axis 0 (no tables, no motifs). ``interpkit
        run`` then splits a long run into chunks, writes each finished chunk to disk and resumes an
        interrupted run with ``--resume``, in memory that does not grow with the number of sequences
        (:mod:`interpkit.chunks`). Default is False.
    explain : callable, str or None
        How ``interpkit explain`` runs the method: ``explain(model, context) -> dict | str``, the
        options to run with or a one-line reason to skip it (shown in the report); ``context`` is an
        :class:`~interpkit.explain.ExplainContext` with the results of earlier methods. Options the
        user gives for the method run it even when the hook says skip. Default is None: run with the
        method's defaults whenever the model has the capabilities in ``requires``.
    explain_order : int
        Place in the ``explain`` run, lower first (predict 0, attributions 10, filter motifs 20, unit
        importance 30, GIA 40, NeuronMotif 50). Default is 100.
    """

    name: str
    func: Callable | str
    summary: str
    requires: frozenset[Capability] = frozenset({Capability.PREDICT})
    params: tuple[Param, ...] = ()
    source: str = ""
    needs_sequences: bool = True
    checkpoint_param: str | None = None
    per_sequence: bool = False
    explain: Callable | str | None = None
    explain_order: int = 100

    def __post_init__(self) -> None:
        _check_name("method", self.name)
        object.__setattr__(self, "requires", _caps(self.requires))
        object.__setattr__(self, "params", tuple(self.params))
        names = [p.name for p in self.params]
        clash = sorted(set(names) & RESERVED_PARAMS)
        if clash or len(set(names)) != len(names):
            raise PluginError(f"method {self.name!r}: option names must be unique and not one of "
                              f"{', '.join(sorted(RESERVED_PARAMS))}; got {names}.")

    def resolve(self) -> Callable:
        """The method's function, imported on first use."""
        return resolve_callable(self.func, f"method {self.name!r}")


@dataclass(frozen=True)
class BackendSpec:
    """A framework backend: turns a file or an in-memory model into a Predictor.

    Attributes
    ----------
    name : str
        e.g. "torch", "keras", "onnx".
    load : callable or str
        ``load(source, **options) -> Predictor``; ``source`` is a path or an
        in-memory framework model.
    summary : str
    suffixes : tuple of str
        File suffixes this backend claims (".pth", ".h5", ...). Default is ().
    claims : callable or None
        ``claims(source) -> bool`` for in-memory objects (must be cheap and must not
        import the framework). Default is None.
    requires : tuple of str
        Importable modules the backend needs (e.g. "torch"). Default is ().
    extra : str or None
        The pip extra that installs them ("torch" for ``interpkit[torch]``).
    capabilities : frozenset of Capability
        The most this backend can provide. Default is {PREDICT}.
    """

    name: str
    load: Callable | str
    summary: str
    suffixes: tuple[str, ...] = ()
    claims: Callable[[Any], bool] | None = None
    requires: tuple[str, ...] = ()
    extra: str | None = None
    capabilities: frozenset[Capability] = frozenset({Capability.PREDICT})

    def __post_init__(self) -> None:
        _check_name("backend", self.name)
        object.__setattr__(self, "capabilities", _caps(self.capabilities))
        object.__setattr__(self, "suffixes", tuple(s.lower() for s in self.suffixes))

    def available(self) -> bool:
        """Whether every module in ``requires`` is installed (checked without importing it)."""
        return all(importlib.util.find_spec(m) is not None for m in self.requires)

    def missing_message(self) -> str:
        """What to install when :meth:`available` is False."""
        extra = f" (pip install 'interpkit[{self.extra}]')" if self.extra else ""
        return f"the {self.name} backend needs {', '.join(self.requires)}{extra}"

    def claims_source(self, source: Any) -> bool:
        """Whether this backend recognises ``source`` by its suffix or its ``claims`` test."""
        if isinstance(source, (str, os.PathLike)):
            name = Path(source).name.lower()
            if any(name.endswith(s) for s in self.suffixes):
                return True
        return bool(self.claims and self.claims(source))

    def resolve(self) -> Callable:
        """The backend's loader, imported on first use."""
        return resolve_callable(self.load, f"backend {self.name!r}")


@dataclass(frozen=True)
class ModelSpec:
    """A named architecture from a model plugin (``interpkit.load(path, arch=NAME)``).

    Attributes
    ----------
    name : str
        e.g. "basset", "explainn".
    backend : str
        The backend that runs it.
    load : callable or str
        ``load(source, **options)`` returning a Predictor, or a framework model that
        the ``backend`` then wraps (e.g. an ``nn.Module`` built from a state_dict).
    summary : str
    source : str
        The paper or repository the architecture comes from.
    backend_options : mapping
        Options the backend loader receives for this architecture (e.g. Basset's
        ``{"layout": "NCL1", "length": 600}``); the user's options override them.
    train : callable, str or None
        For architectures that can be trained here: ``train(train, valid, test, *, out, **options)
        -> TrainingResult`` with the splits as :class:`~interpkit.datasets.LabelledSequences`
        (``test`` may be None); it writes the best checkpoint into ``out`` (see
        :func:`interpkit.train`). A trainer that can continue an interrupted run takes the keyword
        ``resume: bool`` (``--resume``), keeping its state in ``out/train_state.pt``, which the core
        deletes once every output is written. Default is None (not trainable).
    train_params : tuple of Param
        The training options (hyper-parameters and optimiser settings); ``interpkit train NAME``
        is generated from them. Names must be unique and not in :data:`RESERVED_PARAMS`.
    """

    name: str
    backend: str
    load: Callable | str
    summary: str
    source: str = ""
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    train: Callable | str | None = None
    train_params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        _check_name("model", self.name)
        object.__setattr__(self, "train_params", tuple(self.train_params))
        names = [p.name for p in self.train_params]
        clash = sorted(set(names) & (RESERVED_PARAMS | TRAIN_RESERVED))
        if clash or len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise PluginError(f"model {self.name!r}: training options {', '.join(clash + twice)} are reserved by "
                              "interpkit or declared twice; rename them.")

    def resolve(self) -> Callable:
        """The architecture's loader, imported on first use."""
        return resolve_callable(self.load, f"model {self.name!r}")

    def resolve_train(self) -> Callable:
        """The architecture's trainer, imported on first use.

        Raises
        ------
        PluginError
            If the architecture cannot be trained here.
        """
        if self.train is None:
            raise PluginError(f"architecture {self.name!r} has no trainer; it loads checkpoints only.")
        return resolve_callable(self.train, f"model {self.name!r} trainer")
