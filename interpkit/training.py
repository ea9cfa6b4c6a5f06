"""Training the bundled architectures: the verb :func:`train`, validation metrics and the run's record.

The core reads and splits the data (:mod:`interpkit.datasets`) and checks the options; the
architecture's plugin (``ModelSpec.train``) runs the framework's training loop and writes the best
checkpoint, ``model.pth``, with ``model.json`` beside it (architecture, hyper-parameters, targets,
metrics), so that ``interpkit.load("OUT/model.pth")`` finds the architecture by itself.

A trainer that can resume keeps the state of an unfinished run in ``OUT/train_state.pt``
(:data:`RESUME_STATE`), rewritten atomically after every finished epoch; ``train(..., resume=True)``
(``interpkit train ... --resume``) continues from it and gives the same outputs as a run that was never
interrupted. The file is removed once the run's outputs are all written, so it marks an interrupted run.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interpkit.errors import CapabilityError, InputError, PluginError
from interpkit.results import Result, png_img
from interpkit.validation import check_choice, check_scalar

if TYPE_CHECKING:
    from interpkit.datasets import LabelledSequences
    from interpkit.plugins import Registry

__all__ = ["MONITORS", "RESUME_STATE", "TASKS", "TrainingResult", "check_train_out", "evaluate", "monitored",
           "read_sidecar", "sidecar_path", "train"]

#: What the targets are: one 0/1 target, several 0/1 targets, or real values.
TASKS = ("binary", "multilabel", "regression")
#: Validation metrics that can drive early stopping, by task family.
MONITORS = {"binary": ("auprc", "auroc", "loss"), "multilabel": ("auprc", "auroc", "loss"),
            "regression": ("pearson", "loss")}
#: The file in OUT where a trainer keeps an unfinished run's state (removed when the run is complete).
RESUME_STATE = "train_state.pt"


def evaluate(y_true: Any, y_pred: Any, task: str) -> dict[str, Any]:
    """Per-target validation or test metrics.

    Parameters
    ----------
    y_true : array-like of shape (N, T)
        Targets: 0/1 for classification, real values for regression.
    y_pred : array-like of shape (N, T)
        Predictions: logits or probabilities for classification (both rank the same way),
        values for regression.
    task : {"binary", "multilabel", "regression"}

    Returns
    -------
    dict
        Classification: ``auroc`` and ``auprc`` (lists of T floats; NaN for a target whose
        labels hold one class only) and their means over the defined targets ``mean_auroc``,
        ``mean_auprc``. Regression: ``pearson`` (T floats; NaN for a constant column) and
        ``mean_pearson``. AUROC and AUPRC (average precision) are scikit-learn's
        ``roc_auc_score`` and ``average_precision_score``; Pearson's r is
        ``scipy.stats.pearsonr``.

    Raises
    ------
    InputError
        If the shapes differ or ``task`` is unknown.
    """
    task = check_choice(task, "task", TASKS)
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape != y_pred.shape:
        raise InputError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must both be (N, T).")
    if task == "regression":
        from scipy.stats import pearsonr

        r = [float(pearsonr(t, p).statistic) if np.ptp(t) > 0 and np.ptp(p) > 0 else float("nan")
             for t, p in zip(y_true.T, y_pred.T)]
        return {"pearson": r, "mean_pearson": _mean(r)}
    from sklearn.metrics import average_precision_score, roc_auc_score

    auroc, auprc = [], []
    for t, p in zip(y_true.T, y_pred.T):
        both = 0 < t.sum() < len(t)
        auroc.append(float(roc_auc_score(t, p)) if both else float("nan"))
        auprc.append(float(average_precision_score(t, p)) if both else float("nan"))
    return {"auroc": auroc, "auprc": auprc, "mean_auroc": _mean(auroc), "mean_auprc": _mean(auprc)}


def _mean(values: Sequence[float]) -> float:
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def monitored(metrics: Mapping[str, Any], monitor: str) -> float:
    """The number early stopping maximises: the mean metric, or minus the loss for ``"loss"``."""
    return -float(metrics["loss"]) if monitor == "loss" else float(metrics[f"mean_{monitor}"])


def sidecar_path(checkpoint: str | os.PathLike) -> Path:
    """``model.json`` for ``model.pth``: where :func:`train` records how a checkpoint was made."""
    return Path(checkpoint).with_suffix(".json")


def read_sidecar(checkpoint: str | os.PathLike) -> dict[str, Any] | None:
    """The record :func:`train` wrote beside a checkpoint, or None when ``checkpoint`` has none.

    The record counts only when it names this very file (``checkpoint.file``), so ``model.onnx`` or
    ``model.h5`` put beside ``model.json`` are not taken for the trained ``model.pth``; other JSON
    (another tool's, or unreadable) is ignored.

    Warns
    -----
    InterpkitWarning
        If the file's sha256 differs from the recorded one (the record may describe another
        epoch's weights of the same architecture).
    """
    import warnings

    from interpkit._io import file_digest
    from interpkit.errors import InterpkitWarning

    path, checkpoint = sidecar_path(checkpoint), Path(checkpoint)
    if not path.is_file() or checkpoint.suffix.lower() == ".json" or not checkpoint.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    written = record.get("checkpoint") if isinstance(record, dict) else None
    if not isinstance(record.get("arch") if isinstance(record, dict) else None, str) or \
            not isinstance(written, dict) or written.get("file") != checkpoint.name:
        return None
    if written.get("sha256") and written["sha256"] != file_digest(checkpoint):
        warnings.warn(f"{checkpoint} differs from the file {path.name} describes (sha256); its architecture and "
                      "hyper-parameters are used, its metrics may be another epoch's.", InterpkitWarning, stacklevel=2)
    return record


@dataclass(frozen=True)
class TrainingResult(Result):
    """The record of one training run (``method`` = "train").

    Attributes
    ----------
    checkpoint : Path or None
        The best checkpoint (``model.pth``) with its record ``model.json`` beside it.
    arrays
        ``train_loss``, ``valid_loss``, ``valid_metric`` (E,) float64, one value per epoch run;
        ``learning_rate`` (E,).
    tables
        ``history`` (epoch, train_loss, valid_loss, the monitored metric, learning rate) and
        ``metrics`` (split, target, metric, value) for the best epoch on validation and test data.
    params
        Architecture, hyper-parameters and training options.
    """

    checkpoint: Path | None = None

    def report_section(self, *, max_rows: int = 50) -> str:
        """Learning curves, then the metrics and history tables."""
        base = super().report_section(max_rows=max_rows)
        curve = _curve_png(self.arrays, str(self.params.get("monitor", "")))
        link = (f"<p>Best checkpoint: <code>{html.escape(str(self.checkpoint))}</code></p>"
                if self.checkpoint else "")
        head = base.index("</h2>") + len("</h2>")
        return base[:head] + link + (png_img(curve, "learning curves") if curve else "") + base[head:]


def _curve_png(arrays: Mapping[str, np.ndarray], monitor: str) -> bytes | None:
    if "train_loss" not in arrays or not len(arrays["train_loss"]):
        return None
    from interpkit.figures import figure_png, new_figure

    epochs = np.arange(1, len(arrays["train_loss"]) + 1)
    fig = new_figure(8, 3)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(epochs, arrays["train_loss"], label="train")
    ax1.plot(epochs, arrays["valid_loss"], label="validation")
    ax1.set(xlabel="epoch", ylabel="loss")
    ax1.legend()
    ax2.plot(epochs, arrays["valid_metric"])
    ax2.set(xlabel="epoch", ylabel=f"validation {monitor}")
    fig.tight_layout()
    return figure_png(fig)


def _splits(data: Any, valid: float, test: float, random_state: int) -> tuple[Any, Any, Any]:
    from interpkit.datasets import LabelledSequences, split

    if isinstance(data, LabelledSequences):
        return split(data, valid=valid, test=test, random_state=random_state)
    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and \
            all(isinstance(d, LabelledSequences) for d in data if d is not None) and data[0] is not None \
            and data[1] is not None:
        parts = (*data, None)[:3]
        first = parts[0]
        for part in parts[1:]:
            if part is not None and (part.targets != first.targets or part.task != first.task
                                     or part.X.shape[1:] != first.X.shape[1:] or part.alphabet != first.alphabet):
                raise InputError("the given splits differ in targets, task, alphabet or sequence shape; read them "
                                 "with the same options.")
        return parts
    raise InputError(f"data must be LabelledSequences (split here) or a tuple (train, valid[, test]) of them "
                     f"(interpkit.datasets.read_labelled); got {type(data).__name__}.")


def check_train_out(out: str | os.PathLike, *, force: bool, resume: bool) -> Path:
    """Check, creating nothing, that ``out`` may receive a new training run (empty, or ``force``) or
    holds an interrupted one to resume (``out/train_state.pt``).

    Returns
    -------
    Path

    Raises
    ------
    InputError
        For ``resume`` with ``force``, ``resume`` with nothing to resume, an interrupted run without
        ``resume`` or ``force``, or (as :func:`interpkit._io.check_out_dir`) a non-empty ``out``.
    """
    from interpkit._io import check_out_dir, check_resume

    check_resume(out, Path(out) / RESUME_STATE, resume=resume, force=force, what="training run")
    return Path(out) if resume else check_out_dir(out, force=force)


def _accepts(func: Any, name: str) -> bool:
    """Whether ``func`` takes the keyword ``name`` (by name or through ``**kwargs``)."""
    import inspect

    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def train(
    arch: str,
    data: LabelledSequences | tuple[LabelledSequences, ...],
    *,
    out: str | os.PathLike,
    valid: float | None = None,
    test: float | None = None,
    random_state: int = 0,
    force: bool = False,
    resume: bool = False,
    registry: Registry | None = None,
    **options: Any,
) -> TrainingResult:
    """Train a bundled architecture and write its best checkpoint.

    Parameters
    ----------
    arch : str
        An architecture whose plugin can train it (``interpkit plugins``: e.g. "explainn",
        "residualbind").
    data : LabelledSequences or tuple
        Sequences with targets (:func:`interpkit.datasets.read_labelled`), split here into
        training, validation and test sets (stratified for binary targets), or the splits
        ``(train, valid)`` / ``(train, valid, test)`` yourself.
    out : path-like
        Output directory, created; it must be empty unless ``force``. Receives ``model.pth``
        (the best epoch's state_dict, loadable with ``weights_only``), ``model.json`` (arch,
        hyper-parameters, targets, task, alphabet, metrics), ``train.json``,
        ``train_history.tsv``, ``train_metrics.tsv`` and ``train.npz``.
    valid, test : float or None
        Fractions of ``data`` held out for validation (early stopping) and testing; None means
        0.1 each (as ExplaiNN's reference parsers: 80/10/10). Only for data split here: with
        splits given they must be None. Default is None.
    random_state : int
        Seed of the split, the weight initialisation and the batch order. Default is 0.
    force : bool
        Write into a non-empty ``out`` (files of the same names are replaced), and start over a run
        that was interrupted there. Default is False.
    resume : bool
        Continue the interrupted run in ``out`` from its last finished epoch (``out/train_state.pt``,
        written after every epoch and removed when the run is complete). Give the same data and
        options: the outputs are then identical to those of an uninterrupted run (same weights,
        bit for bit, on the same machine). Default is False.
    registry : Registry or None
        Default is None (the installed plugins).
    **options
        The architecture's training options (``interpkit train ARCH --help``).

    Returns
    -------
    TrainingResult
        Its ``checkpoint`` is the path of ``model.pth``. A resumed run's ``provenance`` lists the
        epochs after which it was resumed (``resumed_after_epochs``).

    Raises
    ------
    PluginError
        If ``arch`` is unknown or cannot be trained, or its trainer fails with an error that is
        not an interpkit error.
    CapabilityError
        If ``resume`` and the architecture's trainer cannot resume.
    InputError
        For bad data, splits or options; an output directory that is not empty, or that holds an
        interrupted run while neither ``resume`` nor ``force`` is given; ``resume`` with no
        interrupted run in ``out``, or with ``force``, or with data or options other than the
        interrupted run's.
    """
    import dataclasses

    from interpkit import __version__
    from interpkit._io import prepare_out_dir, remove_partials
    from interpkit.datasets import LabelledSequences
    from interpkit.errors import InterpkitError
    from interpkit.params import bind_params
    from interpkit.plugins import get_registry

    registry = registry or get_registry()
    spec = registry.get("models", arch)
    trainer = spec.resolve_train()
    random_state = check_scalar(random_state, "random_state", int, min_val=0)
    if not isinstance(data, LabelledSequences) and (valid is not None or test is not None):
        raise InputError("valid= and test= split data here; with the splits given as a tuple, leave them out.")
    valid = 0.1 if valid is None else check_scalar(valid, "valid", float, min_val=0.0, max_val=1.0)
    test = 0.1 if test is None else check_scalar(test, "test", float, min_val=0.0, max_val=1.0)
    params = bind_params(f"train {arch}", spec.train_params, options)
    check_train_out(out, force=force, resume=resume)
    plugin = registry.plugin_of("models", arch)
    if resume and not _accepts(trainer, "resume"):
        raise CapabilityError(f"the trainer of {arch!r} (plugin {plugin.name} {plugin.version}) cannot resume a run; "
                              "pass --force to start it over.")
    parts = _splits(data, valid, test, random_state)
    if resume:
        out = Path(out)
        remove_partials(out)  # temporary files of writes the interruption cut short
    else:
        out = prepare_out_dir(out, force=force)
        (out / RESUME_STATE).unlink(missing_ok=True)  # --force: the interrupted run is started over
    try:
        result = trainer(*parts, out=out, random_state=random_state, overwrite=force or resume,
                         **({"resume": True} if resume else {}), **params)
    except InterpkitError:
        raise
    except Exception as exc:
        raise PluginError(f"training {arch!r} (plugin {plugin.name} {plugin.version}) failed: "
                          f"{type(exc).__name__}: {exc}. Set INTERPKIT_DEBUG=1 for the traceback.") from exc
    if not isinstance(result, TrainingResult):
        raise PluginError(f"the trainer of {arch!r} returned {type(result).__name__}, not a TrainingResult.")
    sizes = {name: (len(p) if p is not None else 0) for name, p in zip(("train", "valid", "test"), parts)}
    provenance = {"interpkit": __version__, "plugin": plugin.name, "plugin_version": plugin.version,
                  "arch": arch, **result.provenance}
    result = dataclasses.replace(result, params={"arch": arch, "random_state": random_state, "valid": valid,
                                                 "test": test, "sizes": sizes, **params, **result.params},
                                 provenance=provenance)
    result.write(out, overwrite=force or resume)
    (out / RESUME_STATE).unlink(missing_ok=True)  # every output is written: the run is complete
    return result
