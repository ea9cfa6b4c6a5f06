"""The PyTorch training loop the bundled trainable architectures (ExplaiNN, ResidualBind) share.

Adam on a binary cross-entropy (logits) or mean squared error loss, reverse-complement augmentation for
DNA, early stopping on a validation metric (AUPRC/AUROC for classification, Pearson's r for regression),
optional learning-rate decay on a plateau (ResidualBind), seeded weight initialisation and batch order,
a progress bar with the running loss, and the best checkpoint written atomically as ``model.pth`` with
its record ``model.json`` beside it. After every epoch the whole state of the run (weights, optimiser,
random generators, early-stopping bookkeeping, history) is written atomically to ``train_state.pt``, so
that an interrupted run resumes (``resume=True``) exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import pickle
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from interpkit._io import atomic_write
from interpkit.datasets import LabelledSequences
from interpkit.errors import InputError, first_line
from interpkit.tables import Table
from interpkit.training import MONITORS, RESUME_STATE, TrainingResult, evaluate, monitored, sidecar_path
from interpkit_torch.load import _device

__all__ = ["Schedule", "fit", "freeze_rows", "predict_module", "seeded"]

#: Checkpoint record format; bump when model.json changes incompatibly.
RECORD_FORMAT = 1
#: Resume state format (train_state.pt); bump when its content changes.
STATE_FORMAT = 1


@dataclass(frozen=True)
class Schedule:
    """Optimiser and stopping settings.

    Attributes
    ----------
    lr : float
        Adam's learning rate.
    batch_size : int
        Sequences per step.
    max_epochs : int
        Upper bound on passes over the training set.
    patience : int
        Stop after this many epochs without a better validation value (0: never stop early).
    monitor : str
        "auprc", "auroc" or "loss" for classification; "pearson" or "loss" for regression.
    lr_decay : float or None
        Multiply the learning rate by this, in (0, 1), after ``decay_patience`` epochs without
        improvement (ResidualBind: 0.3 after 7, floor 1e-6). None: constant rate. Default is None.
    decay_patience : int
        Epochs without improvement before each decay. Default is 7.
    min_lr : float
        The learning rate never decays below this. Default is 1e-6.

    Raises
    ------
    InputError
        For lr <= 0, batch_size < 2 (BatchNorm needs two sequences per step), max_epochs < 1,
        patience < 0, lr_decay outside (0, 1) or decay_patience < 1.
    """

    lr: float
    batch_size: int
    max_epochs: int
    patience: int
    monitor: str
    lr_decay: float | None = None
    decay_patience: int = 7
    min_lr: float = 1e-6

    def __post_init__(self) -> None:
        problems = [text for bad, text in (
            (not self.lr > 0, f"lr={self.lr} must be > 0"),
            (self.batch_size < 2, f"batch_size={self.batch_size} must be >= 2 (BatchNorm needs two sequences)"),
            (self.max_epochs < 1, f"max_epochs={self.max_epochs} must be >= 1"),
            (self.patience < 0, f"patience={self.patience} must be >= 0 (0: no early stopping)"),
            (self.lr_decay is not None and not 0 < self.lr_decay < 1,
             f"lr_decay={self.lr_decay} must be in (0, 1) (or None / 1 for no decay)"),
            (self.decay_patience < 1, f"decay_patience={self.decay_patience} must be >= 1"),
        ) if bad]
        if problems:
            raise InputError("; ".join(problems) + ".")


def freeze_rows(parameter: nn.Parameter, rows: Any) -> Any:
    """Keep the given rows of a parameter fixed while the rest trains (their gradient is zeroed by a hook).

    With a zero gradient from the first step, Adam's moments stay zero and the rows are not changed
    at all (bit-identical), as long as there is no weight decay.

    Parameters
    ----------
    parameter : nn.Parameter of shape (R, ...)
        E.g. ExplaiNN's first convolution weight (U, 4, F); rows are units.
    rows : iterable of int
        Indices along the first axis.

    Returns
    -------
    torch.utils.hooks.RemovableHandle
        ``.remove()`` lets the rows train again.
    """
    index = torch.as_tensor(list(rows), dtype=torch.long)
    return parameter.register_hook(lambda grad: grad.index_fill(0, index.to(grad.device), 0))


@contextlib.contextmanager
def seeded(random_state: int) -> Iterator[None]:
    """Seed torch for a block (weights, batch order, dropout) and give the caller's random state back after it."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(random_state)
        yield


def predict_module(module: nn.Module, X: np.ndarray, *, batch_size: int, device: torch.device) -> np.ndarray:
    """Outputs (N, T) float64 of ``module`` in eval mode, batched, without gradients."""
    module.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, len(X), batch_size):
            out.append(module(torch.from_numpy(X[lo:lo + batch_size]).to(device)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def _loss(task: str) -> nn.Module:
    return nn.MSELoss() if task == "regression" else nn.BCEWithLogitsLoss()


def _validate(module: nn.Module, data: LabelledSequences, loss: nn.Module, batch_size: int,
              device: torch.device) -> dict[str, Any]:
    pred = predict_module(module, data.X, batch_size=batch_size, device=device)
    metrics = evaluate(data.y, pred, data.task)
    metrics["loss"] = float(loss(torch.from_numpy(pred), torch.from_numpy(data.y.astype(np.float64))))
    return metrics


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null, so model.json is strict JSON that every tool reads."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _write_checkpoint(module: nn.Module, out: Path, record: Mapping[str, Any]) -> Path:
    """model.pth, then model.json naming it with its sha256 (so a record never describes another file)."""
    from interpkit._io import file_digest

    path = out / "model.pth"
    with atomic_write(path, mode="wb", overwrite=True) as handle:
        torch.save(module.state_dict(), handle)
    record = {**record, "checkpoint": {"file": path.name, "sha256": file_digest(path)}}
    with atomic_write(sidecar_path(path), overwrite=True) as handle:
        json.dump(_json_safe(record), handle, indent=2, allow_nan=False)
    return path


def fit(
    module: nn.Module,
    train: LabelledSequences,
    valid: LabelledSequences,
    test: LabelledSequences | None,
    *,
    arch: str,
    hyperparameters: Mapping[str, Any],
    schedule: Schedule,
    out: Path,
    overwrite: bool = False,
    resume: bool = False,
    reverse_complement: bool = False,
    random_state: int = 0,
    verbose: bool = False,
    device: str | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    record: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Train ``module`` in place and keep its best epoch (the module ends with those weights, in eval mode).

    Parameters
    ----------
    module : nn.Module
        Input (N, A, L) float32 one-hot, output (N, T) logits (classification) or values (regression),
        initialised by the caller (seed torch before building it).
    train, valid, test : LabelledSequences
        Training, validation (early stopping) and optional test data with the same targets.
    arch : str
        Architecture name for ``model.json`` (``interpkit.load`` uses it).
    hyperparameters : mapping
        The architecture's constructor arguments, recorded in ``model.json``.
    schedule : Schedule
    out : Path
        Existing directory receiving ``model.pth``, ``model.json`` and, after every epoch until the
        caller removes it, the resume state ``train_state.pt``.
    overwrite : bool
        Whether existing ``model.pth`` / ``model.json`` / ``train_state.pt`` may be replaced. Default
        is False.
    resume : bool
        Continue the run whose state ``out/train_state.pt`` holds (weights, Adam's moments, the
        batch-order and dropout generators, early-stopping and learning-rate bookkeeping, history):
        its finished epochs are not run again and the outputs equal an uninterrupted run's. The
        module, data and every option must be the ones of that run. Default is False.
    reverse_complement : bool
        Train on every sequence and its reverse complement (DNA only). Default is False.
    random_state : int
        Seeds the batch order and the dropout masks (the caller's torch random state is restored
        afterwards). Default is 0.
    verbose : bool
        Progress bars (epochs, and batches with the running loss) and one line per epoch with the
        validation metric. Default is False.
    device : str or None
        "cpu", "cuda", "cuda:N"; None: CUDA if available. Default is None.
    after_step : callable or None
        Called with the module after each optimiser step (e.g. to clamp weights). Default is None.
    record : mapping or None
        More entries for ``model.json`` (e.g. how filters were initialised). Default is None.

    Returns
    -------
    TrainingResult
        Without ``arch``/``random_state`` in ``params`` (:func:`interpkit.train` adds them); a
        resumed run's ``provenance`` has ``resumed_after_epochs``.

    Raises
    ------
    InputError
        If the splits are too small, ``monitor`` does not suit the task, ``out`` already holds a
        checkpoint or a resume state and neither ``overwrite`` nor ``resume`` is given, an epoch's
        loss is not finite (lower the learning rate), the monitored metric is undefined on every
        epoch (e.g. a validation split holding one class: use ``monitor="loss"``), or ``resume``
        finds no readable state or one written for other data or options.

    Notes
    -----
    The state is written after each epoch's bookkeeping, and ``model.pth`` (when the epoch is the
    best so far) before it; a run killed between the two repeats that one epoch when resumed, with
    the same result. Only ``train_state.pt`` is read back: ``model.pth`` may be newer.
    """
    with seeded(random_state):
        return _fit(module, train, valid, test, arch=arch, hyperparameters=hyperparameters, schedule=schedule,
                    out=out, overwrite=overwrite, resume=resume, reverse_complement=reverse_complement,
                    random_state=random_state, verbose=verbose, device=device, after_step=after_step, record=record)


@dataclass
class _Progress:
    """Where a run stands after its last finished epoch (saved in the resume state with the tensors)."""

    lr: float
    epoch: int = 0
    best: float = -math.inf
    best_epoch: int = 0
    since_best: int = 0
    since_decay: int = 0
    best_state: dict[str, Any] | None = None
    history: list[tuple] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)  # epochs after which the run was resumed

    def finished(self, schedule: Schedule) -> bool:
        return self.epoch >= schedule.max_epochs or bool(schedule.patience) and self.since_best >= schedule.patience


def _fingerprint(arch: str, hyperparameters: Mapping[str, Any], schedule: Schedule, splits: Mapping[str, Any],
                 reverse_complement: bool, random_state: int, record: Mapping[str, Any]) -> str:
    """JSON of what a resumed run must share with the interrupted one: options, seed and every split's data."""
    def data(part: LabelledSequences | None) -> dict[str, Any] | None:
        if part is None:
            return None
        digest = hashlib.sha256()
        for array in (part.X, part.y):
            digest.update(repr(array.shape).encode())
            digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))  # no copy when contiguous
        return {"sequences": len(part), "sha256": digest.hexdigest()}

    value = {"arch": arch, "hyperparameters": dict(hyperparameters), "schedule": dataclasses.asdict(schedule),
             "reverse_complement": reverse_complement, "random_state": random_state, "record": dict(record),
             "data": {name: data(part) for name, part in splits.items()}}
    return json.dumps(_json_safe(value), sort_keys=True, default=str)


def _differences(saved: Any, now: Any, name: str = "") -> list[str]:
    """``name: saved -> now`` for each leaf of two JSON values that differs (long values shortened)."""
    if isinstance(saved, dict) and isinstance(now, dict):
        return [d for key in sorted(set(saved) | set(now))
                for d in _differences(saved.get(key), now.get(key), f"{name}.{key}" if name else key)]
    if saved == now:
        return []
    shown = [text if len(text) <= 24 else text[:20] + "..." for text in (repr(saved), repr(now))]  # sha256: a start
    return [f"{name}: {shown[0]} -> {shown[1]}"]


def _write_state(path: Path, module: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                 dev: torch.device, progress: _Progress, fingerprint: str) -> None:
    """Everything needed to continue the run exactly, atomically (tensors, dicts, lists, numbers, strings only)."""
    state = {"format": STATE_FORMAT, "fingerprint": fingerprint, "model": module.state_dict(),
             "optimizer": optimizer.state_dict(), "generator": generator.get_state(), "rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
             "progress": {**dataclasses.asdict(dataclasses.replace(progress, best_state=None, history=[])),
                          "best_state": progress.best_state, "history": [list(row) for row in progress.history]}}
    with atomic_write(path, mode="wb", overwrite=True) as handle:
        torch.save(state, handle)


def _restore(path: Path, module: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
             dev: torch.device, fingerprint: str) -> _Progress:
    """Load a resume state into the module, optimiser and generators; its progress, with this resumption noted."""
    fix = "pass --force to start the run over"
    if not path.is_file():
        raise InputError(f"cannot resume: {path} does not exist (no interrupted run there); {fix}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        raise InputError(f"cannot resume from {path}: it does not load ({first_line(exc)}); {fix}.") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise InputError(f"cannot resume from {path}: not a resume state of this interpkit (format "
                         f"{state.get('format') if isinstance(state, dict) else None!r}, expected {STATE_FORMAT}); "
                         f"{fix}.")
    changed = _differences(json.loads(state["fingerprint"]), json.loads(fingerprint))
    options = [c for c in changed if not c.startswith("data.")]
    splits = sorted({c.split(".")[1] for c in changed if c.startswith("data.")})
    if changed:
        shown = options[:3] + (["..."] if len(options) > 3 else []) + (
            [f"the {'/'.join(splits)} data: other sequences, targets or split"] if splits else [])
        raise InputError(f"cannot resume from {path}: the interrupted run had other data or options "
                         f"({'; '.join(shown)}); give the same ones, or {fix}.")
    try:
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] is not None and dev.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], dev)
        saved = dict(state["progress"])
        progress = _Progress(**{**saved, "history": [tuple(row) for row in saved["history"]]})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"cannot resume from {path}: {first_line(exc)}; {fix}.") from None
    progress.resumed.append(progress.epoch)
    return progress


def _train_epoch(module: nn.Module, X: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
                 generator: torch.Generator, loss_fn: nn.Module, batch_size: int, dev: torch.device,
                 after_step: Callable[[nn.Module], None] | None, bar: Any) -> float:
    """One pass over the training data in a seeded random order; the mean training loss."""
    module.train()
    order = torch.randperm(len(X), generator=generator)
    total, seen = 0.0, 0
    for lo in range(0, len(order), batch_size):
        idx = order[lo:lo + batch_size]
        bar.update()
        if len(idx) < 2:  # BatchNorm cannot train on one sequence
            continue
        optimizer.zero_grad()
        batch_loss = loss_fn(module(X[idx].to(dev)), y[idx].to(dev))
        batch_loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step(module)
        total, seen = total + float(batch_loss.detach()) * len(idx), seen + len(idx)
        bar.set_postfix(loss=f"{total / seen:.4f}")
    bar.close()
    return total / max(seen, 1)


def _fit(module: nn.Module, train: LabelledSequences, valid: LabelledSequences, test: LabelledSequences | None, *,
         arch: str, hyperparameters: Mapping[str, Any], schedule: Schedule, out: Path, overwrite: bool, resume: bool,
         reverse_complement: bool, random_state: int, verbose: bool, device: str | None,
         after_step: Callable[[nn.Module], None] | None, record: Mapping[str, Any] | None) -> TrainingResult:
    from tqdm.auto import tqdm

    task = train.task
    if schedule.monitor not in MONITORS[task]:
        raise InputError(f"monitor={schedule.monitor!r} does not suit a {task} task; use one of "
                         f"{', '.join(MONITORS[task])}.")
    if len(train) < 2 or len(valid) < 1:
        raise InputError(f"training needs at least 2 training and 1 validation sequences; got {len(train)} and "
                         f"{len(valid)}. Give more data or change valid=/test=.")
    state_path = out / RESUME_STATE
    existing = [p.name for p in (out / "model.pth", out / "model.json", state_path) if p.exists()]
    if existing and not (overwrite or resume):
        raise InputError(f"{out} already holds {', '.join(existing)}; choose another directory or pass --force.")
    record = dict(record or {})
    fingerprint = _fingerprint(arch, hyperparameters, schedule, {"train": train, "valid": valid, "test": test},
                               reverse_complement, random_state, record)
    if reverse_complement:
        train = train.with_reverse_complements()
    dev = _device(device)
    module.to(dev)
    loss_fn = _loss(task)
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=schedule.lr)
    generator = torch.Generator().manual_seed(random_state)
    progress = (_restore(state_path, module, optimizer, generator, dev, fingerprint) if resume
                else _Progress(lr=schedule.lr))
    X, y = torch.from_numpy(train.X), torch.from_numpy(train.y.astype(np.float32))
    epochs = tqdm(total=schedule.max_epochs, initial=progress.epoch, desc=f"train {arch}", unit="epoch",
                  disable=not verbose)
    steps = -(-len(X) // schedule.batch_size)
    while not progress.finished(schedule):
        epoch = progress.epoch + 1
        batches = tqdm(total=steps, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not verbose)
        train_loss = _train_epoch(module, X, y, optimizer, generator, loss_fn, schedule.batch_size, dev, after_step,
                                  batches)
        if not math.isfinite(train_loss):
            raise InputError(f"epoch {epoch}: the training loss is {train_loss}; lower lr (now {progress.lr:g}) or "
                             "check the targets (normalise regression targets).")
        metrics = _validate(module, valid, loss_fn, schedule.batch_size, dev)
        value = monitored(metrics, schedule.monitor)
        shown = value if schedule.monitor != "loss" else -value
        progress.history.append((epoch, train_loss, metrics["loss"], shown, progress.lr))
        if verbose:
            tqdm.write(f"epoch {epoch}: train loss {train_loss:.4f}, valid loss {metrics['loss']:.4f}, "
                       f"valid {schedule.monitor} {shown:.4f}, lr {progress.lr:g}")
        if value > progress.best:  # NaN never improves
            progress.best, progress.best_epoch, progress.since_best, progress.since_decay = value, epoch, 0, 0
            progress.best_state = copy.deepcopy(module.state_dict())
            _write_checkpoint(module, out, _record(arch, hyperparameters, train, epoch, metrics, None, schedule,
                                                   reverse_complement, random_state, record))
        else:
            progress.since_best, progress.since_decay = progress.since_best + 1, progress.since_decay + 1
            if schedule.lr_decay and progress.since_decay >= schedule.decay_patience:
                progress.lr, progress.since_decay = max(progress.lr * schedule.lr_decay, schedule.min_lr), 0
                for group in optimizer.param_groups:
                    group["lr"] = progress.lr
        progress.epoch = epoch
        _write_state(state_path, module, optimizer, generator, dev, progress, fingerprint)
        epochs.update()
        epochs.set_postfix(loss=f"{train_loss:.4f}", **{f"valid_{schedule.monitor}": f"{shown:.4f}"})
    epochs.close()
    if progress.best_state is None:
        raise InputError(f"the validation {schedule.monitor} was undefined on every epoch (NaN: e.g. a validation "
                         "split holding one class, or constant predictions); no checkpoint was kept. Use "
                         "monitor='loss' or a larger validation split (valid=).")
    module.load_state_dict(progress.best_state)
    module.eval()
    valid_metrics = _validate(module, valid, loss_fn, schedule.batch_size, dev)
    test_metrics = _validate(module, test, loss_fn, schedule.batch_size, dev) if test is not None and len(test) else None
    checkpoint = _write_checkpoint(module, out, _record(arch, hyperparameters, train, progress.best_epoch,
                                                        valid_metrics, test_metrics, schedule, reverse_complement,
                                                        random_state, record))
    result = _result(progress.history, schedule, train, valid_metrics, test_metrics, progress.best_epoch, checkpoint,
                     hyperparameters, reverse_complement, record)
    if progress.resumed:
        result = dataclasses.replace(result, provenance={**result.provenance, "resumed_after_epochs": progress.resumed})
    return result


def _record(arch: str, hyperparameters: Mapping[str, Any], train: LabelledSequences, epoch: int,
            valid: Mapping[str, Any], test: Mapping[str, Any] | None, schedule: Schedule, reverse_complement: bool,
            random_state: int, extra: Mapping[str, Any]) -> dict[str, Any]:
    from interpkit import __version__

    return {"format": RECORD_FORMAT, "arch": arch, "hyperparameters": dict(hyperparameters),
            "targets": list(train.targets), "task": train.task, "alphabet": train.alphabet,
            "length": int(train.X.shape[2]), "normalisation": getattr(train, "normalisation", None),
            "best_epoch": epoch, "valid": dict(valid), "test": dict(test) if test else None,
            "training": {"optimizer": "Adam", "lr": schedule.lr, "batch_size": schedule.batch_size,
                         "max_epochs": schedule.max_epochs, "patience": schedule.patience,
                         "monitor": schedule.monitor, "lr_decay": schedule.lr_decay,
                         "reverse_complement": reverse_complement, "random_state": random_state},
            "interpkit": __version__, **extra}


def _history_table(history: list[tuple], monitor: str) -> Table:
    """One row per epoch: train and validation loss, the monitored metric (unless it is the loss), learning rate."""
    if monitor == "loss":
        return Table(("epoch", "train_loss", "valid_loss", "learning_rate"), [(e, t, v, lr) for e, t, v, _, lr in history])
    return Table(("epoch", "train_loss", "valid_loss", f"valid_{monitor}", "learning_rate"), [tuple(r) for r in history])


def _result(history: list[tuple], schedule: Schedule, train: LabelledSequences, valid: Mapping[str, Any],
            test: Mapping[str, Any] | None, best_epoch: int, checkpoint: Path, hyperparameters: Mapping[str, Any],
            reverse_complement: bool, extra: Mapping[str, Any]) -> TrainingResult:
    cols = np.array([row[1:] for row in history], dtype=np.float64)
    monitor = schedule.monitor
    rows = []
    for split, metrics in (("valid", valid), ("test", test)):
        for name in ("auroc", "auprc", "pearson"):
            for target, value in zip(train.targets, (metrics or {}).get(name, [])):
                rows.append((split, target, name, value))
        if metrics:
            rows.append((split, "", "loss", metrics["loss"]))
    return TrainingResult(
        method="train",
        arrays={"train_loss": cols[:, 0], "valid_loss": cols[:, 1], "valid_metric": cols[:, 2],
                "learning_rate": cols[:, 3]},
        tables={"history": _history_table(history, monitor),
                "metrics": Table(("split", "target", "metric", "value"), rows)},
        params={"hyperparameters": dict(hyperparameters), "lr": schedule.lr, "batch_size": schedule.batch_size,
                "max_epochs": schedule.max_epochs, "patience": schedule.patience, "monitor": monitor,
                "lr_decay": schedule.lr_decay, "reverse_complement": reverse_complement, "best_epoch": best_epoch,
                "epochs_run": len(history), "task": train.task, "targets": list(train.targets), **extra},
        checkpoint=checkpoint,
    )
