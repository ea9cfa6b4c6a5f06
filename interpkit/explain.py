"""The main job: run every method that applies to a model and write one report (``interpkit explain``).

Methods join through their :class:`~interpkit.specs.MethodSpec`: ``explain(model, context)`` returns the
options to run with, or a one-line reason to skip; a method without that hook (a third-party one, say)
runs with its defaults whenever the model has the capabilities it declares. ``explain_order`` sets the
order, so later methods can use earlier results (GIA embeds the motifs the filter and unit analyses
annotated). One failing method is reported and the run goes on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from interpkit.errors import InputError, InterpkitError
from interpkit.results import Result

__all__ = ["DEFAULT_MODEL", "DEFAULT_SEQUENCES", "ExplainContext", "ExplainRun", "explain"]

_DATA = Path(__file__).resolve().parent / "data"
#: The embedded default model: an ExplaiNN this project trained on the sequences below (see data/SOURCE.txt).
DEFAULT_MODEL = _DATA / "default_model" / "model.pth"
#: 500 GM12878 CTCF ChIP-seq peaks, 200 bp (gimmemotifs, MIT).
DEFAULT_SEQUENCES = _DATA / "gm12878_ctcf_top500.fa"


@dataclass
class ExplainContext:
    """What a method's ``explain`` hook sees.

    Attributes
    ----------
    model : Predictor
    X : ndarray of shape (N, 4, L), float32
        The run's one-hot sequences.
    names : tuple of str
    results : dict of str to Result
        Results of the methods that ran before, by method name.
    requested : mapping of str to mapping
        Options the user gave per method (``--option METHOD.NAME=VALUE``, ``--neuronmotif``).
    """

    model: Any
    X: np.ndarray
    names: tuple[str, ...]
    results: dict[str, Result] = field(default_factory=dict)
    requested: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ExplainRun:
    """What :func:`explain` did.

    Attributes
    ----------
    out : Path
        The output directory.
    report : Path
        ``report.html``.
    results : dict of str to Result
        By method, in run order.
    skipped : dict of str to str
        Method -> why it did not run (or how it failed).
    files : list of Path
        Every file written, ``results.json`` last.
    """

    out: Path
    report: Path
    results: dict[str, Result]
    skipped: dict[str, str]
    files: list[Path]


def _plan(registry: Any, named: Sequence[str]) -> list[Any]:
    """The registered methods in run order, after checking that every method ``named`` exists."""
    methods = registry.methods
    unknown = [m for m in named if m not in methods]
    if unknown:
        raise InputError(f"no method named {', '.join(map(repr, unknown))}; methods: {', '.join(sorted(methods))}.")
    return sorted(methods.values(), key=lambda s: (s.explain_order, s.name))


def _decide(spec: Any, model: Any, context: ExplainContext, only: Sequence[str] | None,
            skip: Sequence[str]) -> dict[str, Any] | str:
    """The options to run ``spec`` with, or why it is skipped."""
    from interpkit.predictor import capabilities_of

    if spec.name in skip:
        return "switched off (--skip)"
    if only is not None and spec.name not in only:
        return "not among --only"
    missing = sorted(str(c) for c in spec.requires - capabilities_of(model))
    if missing:
        return f"needs {', '.join(missing)}, which this model's backend does not provide"
    asked = dict(context.requested.get(spec.name, {}))
    if spec.explain is None:
        return asked
    from interpkit.specs import resolve_callable

    decision = resolve_callable(spec.explain, f"method {spec.name!r} explain hook")(model, context)
    if isinstance(decision, str) and not asked and spec.name not in (only or ()):
        return decision  # a method the user names (options or --only) runs even when off by default
    return {**(decision if isinstance(decision, Mapping) else {}), **asked}  # asking runs a method that is off


def _merged_motifs(results: Mapping[str, Result]) -> list[Any]:
    """Every result's motifs, ids prefixed with the method (``filter_motifs.filter3``)."""
    import dataclasses

    return [dataclasses.replace(m, id=f"{name}.{m.id}") for name, r in results.items() for m in r.motifs]


def explain(
    model: Any = None,
    X: Any = None,
    *,
    out: str | os.PathLike,
    names: Sequence[str] | None = None,
    only: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
    registry: Any = None,
    **load_options: Any,
) -> ExplainRun:
    """Run every method that applies to ``model`` on ``X`` and write one self-contained HTML report.

    Parameters
    ----------
    model : Predictor, path, framework object or None
        Anything :func:`interpkit.load` accepts; None runs the embedded default (:data:`DEFAULT_MODEL`,
        an ExplaiNN trained here on 500 CTCF peaks) on :data:`DEFAULT_SEQUENCES`. Default is None.
    X : ndarray of shape (N, 4, L) float32, path or None
        Sequences (FASTA or ``.npy``). Required with a model, except when only methods that make
        their own sequences run. Default is None.
    out : path-like
        Output directory, created; it must be empty unless ``force``. Receives ``report.html``,
        every method's files (``<method>.npz``, ``<method>_<table>.tsv``, ``<method>.meme``,
        ``<method>.json``), ``motifs.meme`` (all motifs) and ``results.json`` (every file).
    names : sequence of str or None
        Sequence names. Default is None (the FASTA's).
    only : sequence of str or None
        Run only these methods. Default is None (every method that applies).
    skip : sequence of str
        Methods not to run. Default is ().
    options : mapping of str to mapping or None
        Options per method, e.g. ``{"gia": {"n_backgrounds": 500}, "neuronmotif": {"layers": "conv2"}}``;
        asking for a method that is off by default (NeuronMotif, saliency) runs it. Default is None.
    force : bool
        Write into a non-empty ``out``. Default is False.
    registry : Registry or None
        Default is None (the installed plugins).
    **load_options
        Passed to :func:`interpkit.load` (``arch``, ``layout``, ``alphabet``, ``output``, ...).

    Returns
    -------
    ExplainRun

    Raises
    ------
    InputError
        For an unknown method in ``only``/``skip``/``options``, a non-empty ``out``, or bad sequences;
        also when a method the user named (in ``only`` or ``options``) fails: then after every other
        method ran and the report was written, the message saying why.
    MissingFileError, PluginError, CapabilityError
        As :func:`interpkit.load`.
    """
    from interpkit import __version__
    from interpkit._io import atomic_write, check_out_dir, prepare_out_dir
    from interpkit.api import _read_X, describe_model, load, run
    from interpkit.meme import write_meme
    from interpkit.plugins import get_registry
    from interpkit.report import write_report

    registry = registry or get_registry()
    requested = {k: dict(v) for k, v in (options or {}).items()}
    specs = _plan(registry, [*(only or ()), *skip, *requested])
    check_out_dir(out, force=force)
    if model is not None and X is None and "neuronmotif" not in requested:
        raise InputError("explain needs sequences for a model of your own: give X (--sequences FILE.fa); only "
                         "NeuronMotif (--neuronmotif LAYER) runs without them.")
    if model is None:
        model, X = DEFAULT_MODEL, DEFAULT_SEQUENCES if X is None else X
    source = model
    model = load(model, registry=registry, **load_options)
    arr, default_names = _read_X(X, model) if X is not None else (None, ())
    names = tuple(names) if names is not None else default_names
    context = ExplainContext(model, arr, names, {}, requested)
    skipped: dict[str, str] = {}
    seconds: dict[str, float] = {}
    out = prepare_out_dir(out, force=force)
    files: list[Path] = []
    for spec in specs:
        decision = _decide(spec, model, context, only, skip)
        if isinstance(decision, str):
            skipped[spec.name] = decision
            continue
        if spec.needs_sequences and arr is None:
            skipped[spec.name] = "needs sequences (--sequences)"
            continue
        started = time.perf_counter()
        try:
            result = run(spec.name, model, arr if spec.needs_sequences else None,
                         names=names if spec.needs_sequences else None, registry=registry, **decision)
        except InterpkitError as exc:
            skipped[spec.name] = f"failed: {exc}"
            continue
        seconds[spec.name] = round(time.perf_counter() - started, 2)
        context.results[spec.name] = result
        files += result.write(out, overwrite=force)
    motifs = _merged_motifs(context.results)
    if motifs:
        files.append(write_meme(out / "motifs.meme", motifs, overwrite=force))
    info = describe_model(model)
    info["file"] = str(source) if isinstance(source, (str, os.PathLike)) else None
    report = write_report(out / "report.html", model=info, results=context.results, skipped=skipped,
                          run={"interpkit": __version__, "sequences": str(X) if isinstance(X, (str, os.PathLike))
                               else f"{len(names)} sequences", "n_sequences": len(names),
                               "options": requested, "only": list(only) if only else None, "skip": list(skip),
                               "seconds": seconds},
                          overwrite=force)
    files.append(report)
    manifest = out / "results.json"
    body = {"interpkit": __version__, "model": info, "report": report.name,
            "methods": {**{n: {"status": "ran", "seconds": seconds[n], "files": [p.name for p in files if p.name.startswith(f"{n}.")
                                                          or p.name.startswith(f"{n}_")]}
                           for n in context.results},
                        **{n: {"status": "skipped", "reason": r} for n, r in skipped.items()}},
            "files": [{"path": p.name, "kind": _kind(p)} for p in files]}
    with atomic_write(manifest, overwrite=force) as handle:
        json.dump(body, handle, indent=2, default=str)
    asked = [n for n, reason in skipped.items() if reason.startswith("failed: ") and (n in requested or n in (only or ()))]
    if asked:  # the user named it: a failure is an error, raised once every other result is safe on disk
        raise InputError(f"{asked[0]} {skipped[asked[0]]} (the other methods' results and the report are in {out}).")
    return ExplainRun(out, report, dict(context.results), skipped, [*files, manifest])


def _kind(path: Path) -> str:
    return {".npz": "arrays", ".tsv": "table", ".meme": "motifs", ".json": "record", ".html": "report",
            ".png": "figure"}.get(path.suffix, "file")
