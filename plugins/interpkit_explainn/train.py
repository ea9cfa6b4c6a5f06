"""Training ExplaiNN (Novakovsky et al. 2023): JASPAR-initialised (frozen or refined) filters, or pretrained units.

``interpkit train explainn SEQUENCES ...`` and ``interpkit.train("explainn", data, ...)`` call
:func:`train`. Defaults are the reference CLI's (``scripts/train.py``): 100 units, filter 19,
two per-unit layers, Adam lr 0.003, batch 100, at most 100 epochs, patience 10, reverse-complement
augmentation. Early stopping follows the validation AUPRC (classification) or Pearson's r
(regression) rather than the reference's validation loss.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from interpkit import VERBOSE, Param
from interpkit.errors import InputError

__all__ = ["TRAIN_PARAMS", "motif_filter", "train"]

TRAIN_PARAMS = (
    Param("num_units", int, 100, "Number of independent units U.", min=1),
    Param("filter_size", int, 19, "Width of each unit's filter in bp.", min=1),
    Param("num_fc", int, 2, "Per-unit fully connected layers (0-8).", min=0, max=8),
    Param("pool_size", int, 7, "Max-pool window of each unit in bp.", min=1),
    Param("pool_stride", int, 7, "Max-pool stride in bp.", min=1),
    Param("lr", float, None, "Adam learning rate (default: the reference CLI's 0.003, or with --pretrained "
          "the paper's 0.01 for transfer-learning heads).", min=0.0),
    Param("batch_size", int, 100, "Sequences per step.", min=2),
    Param("max_epochs", int, 100, "Most passes over the training data.", min=1),
    Param("patience", int, 10, "Stop after this many epochs without a better validation metric (0: never).",
          min=0),
    Param("monitor", str, None, "Validation metric for early stopping: auprc (classification default), auroc, "
          "pearson (regression default) or loss.", choices=("auprc", "auroc", "pearson", "loss")),
    Param("reverse_complement", bool, True, "Also train on the reverse complement of every sequence (DNA)."),
    Param("init_motifs", str, None, "Start unit filters from motifs (PPM - 0.25, trimmed or padded to the "
          "filter size): comma-separated JASPAR IDs, 'jaspar' (every CORE vertebrate motif of the release), "
          "or a MEME file. Units beyond the motifs start at random."),
    Param("jaspar_release", str, "JASPAR2020", "JASPAR release for --init-motifs (pyjaspar, offline)."),
    Param("freeze_filters", bool, False, "Keep the motif-initialised filters fixed (their biases, batch norms "
          "and the rest still train)."),
    Param("pretrained", str, None, "Transfer learning: comma-separated PyTorch checkpoints whose outputs, "
          "averaged over both strands, are the units; they stay fixed and only the head trains. Each is a file "
          "interpkit.load reads by itself (e.g. from interpkit train) or ARCH:FILE for a weights-only one "
          "(explainn:model_epoch_best_4.pth). --num-units, --filter-size, --num-fc and the pool are then unused."),
    Param("per_unit_fc", bool, True, "With --pretrained: a per-unit 1-100-1 network before the final layer "
          "(the reference's NAMLayer); --no-per-unit-fc feeds the unit outputs to it directly."),
    Param("device", str, None, "cpu, cuda or cuda:N (default: CUDA if available)."),
    VERBOSE,
)


def motif_filter(ppm: Any, width: int) -> np.ndarray:
    """A unit filter from a PPM: trimmed or padded to ``width`` columns, minus 0.25.

    Following the reference's JASPAR initialisation (wassermanlab/ExplaiNN
    ``utils/tools.py::_PWM_to_filter_weights``, Novakovsky et al. 2023 Fig. 5): the PPM gets
    ``width`` uniform columns on each side, then the flank whose end column has the lower
    maximum probability loses that column until ``width`` remain (on a tie, the side trimmed less
    so far, the left first), and 0.25 is subtracted so uniform columns become 0.

    Parameters
    ----------
    ppm : array-like of shape (4, w)
        Position probability matrix, rows A, C, G, T.
    width : int
        Filter size F in bp.

    Returns
    -------
    ndarray of shape (4, width), float32
        Entries in [-0.25, 0.75].
    """
    ppm = np.asarray(ppm, dtype=np.float64)
    columns = [np.full(4, 0.25)] * width + list(ppm.T) + [np.full(4, 0.25)] * width
    left = right = 0
    lo, hi = 0, len(columns)
    while hi - lo > width:
        left_max, right_max = columns[lo].max(), columns[hi - 1].max()
        if left_max < right_max or (left_max == right_max and left <= right):
            lo, left = lo + 1, left + 1
        else:
            hi, right = hi - 1, right + 1
    return (np.stack(columns[lo:hi], axis=1) - 0.25).astype(np.float32)


def _init_motifs(spec: str, release: str, units: int) -> list[Any]:
    """The motifs named by ``init_motifs``: a MEME file, 'jaspar', or JASPAR IDs."""
    from interpkit.jaspar import fetch_jaspar

    if os.path.isfile(spec) or spec.lower().endswith((".meme", ".txt")):
        from interpkit.meme import read_meme

        motifs = read_meme(spec)
    elif spec.strip().lower() == "jaspar":
        motifs = fetch_jaspar(release=release)
    else:
        motifs = fetch_jaspar(release=release, ids=[s.strip() for s in spec.split(",") if s.strip()])
    if not motifs:
        raise InputError(f"init_motifs={spec!r} gives no motifs; name JASPAR IDs, 'jaspar' or a MEME file.")
    if len(motifs) > units:
        raise InputError(f"init_motifs={spec!r} gives {len(motifs)} motifs for {units} units; raise num_units "
                         f"to at least {len(motifs)} or name fewer motifs.")
    return motifs


def train(train_data: Any, valid: Any, test: Any, *, out: Path, random_state: int = 0, overwrite: bool = False,
          resume: bool = False, num_units: int = 100, filter_size: int = 19, num_fc: int = 2, pool_size: int = 7,
          pool_stride: int = 7,
          lr: float | None = None, batch_size: int = 100, max_epochs: int = 100, patience: int = 10,
          monitor: str | None = None, reverse_complement: bool = True, init_motifs: str | None = None,
          jaspar_release: str = "JASPAR2020", freeze_filters: bool = False, pretrained: str | None = None,
          per_unit_fc: bool = True, device: str | None = None, verbose: bool = False) -> Any:
    """Train an ExplaiNN on labelled sequences and write its best checkpoint (see :func:`interpkit.train`).

    Parameters
    ----------
    train_data, valid, test : LabelledSequences
        (N, 4, L) float32 one-hot DNA and (N, T) targets; ``test`` may be None.
    out : Path
        Directory for ``model.pth`` (reference state_dict layout, so the reference code and
        ``interpkit.load(..., arch="explainn")`` both read it) and ``model.json``.
    random_state : int
        Seeds the initial weights, the batch order and dropout. Default is 0.
    overwrite : bool
        Replace an existing ``model.pth``. Default is False.
    resume : bool
        Continue the interrupted run in ``out`` (:func:`interpkit_torch.training.fit`). Default is False.
    num_units ... verbose
        As :data:`TRAIN_PARAMS`.

    Returns
    -------
    TrainingResult

    Raises
    ------
    InputError
        For RNA data with reverse-complement augmentation, sequences too short for the filter
        and pool, motifs that do not fit, ``freeze_filters`` without ``init_motifs``,
        ``pretrained`` with ``init_motifs`` or with unit checkpoints that do not load, or the
        loop's own errors (:func:`interpkit_torch.training.fit`).
    """
    import torch
    from interpkit_torch.training import Schedule, fit, freeze_rows, seeded

    from interpkit_explainn.architecture import ExplaiNN, pooled_length

    length = int(train_data.X.shape[2])
    if reverse_complement and train_data.alphabet != "ACGT":
        raise InputError("reverse_complement=True needs DNA (ACGT) data; pass --no-reverse-complement for RNA.")
    if freeze_filters and not init_motifs:
        raise InputError("freeze_filters=True needs init_motifs (the filters to keep fixed); name the motifs.")
    if lr is None:
        lr = 0.01 if pretrained else 0.003
    schedule = Schedule(lr=lr, batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                        monitor=monitor or ("pearson" if train_data.task == "regression" else "auprc"))
    common = {"schedule": schedule, "out": out, "overwrite": overwrite, "resume": resume,
              "reverse_complement": reverse_complement, "random_state": random_state, "verbose": verbose,
              "device": device}
    if pretrained:
        return _train_transfer(train_data, valid, test, pretrained, per_unit_fc, init_motifs, **common)
    if num_fc and pooled_length(length, filter_size, pool_size, pool_stride) < 1:
        raise InputError(f"sequences of {length} bp are too short for filter_size={filter_size} and pool "
                         f"{pool_size}/{pool_stride}; use shorter filters or longer sequences.")
    hyper = {"num_units": num_units, "input_length": length, "num_classes": len(train_data.targets),
             "filter_size": filter_size, "num_fc": num_fc, "pool_size": pool_size, "pool_stride": pool_stride}
    with seeded(random_state):
        module = ExplaiNN(**hyper)
    record: dict[str, Any] = {}
    if init_motifs:
        motifs = _init_motifs(init_motifs, jaspar_release, num_units)
        with torch.no_grad():
            for unit, motif in enumerate(motifs):
                module.linears[0].weight[unit] = torch.from_numpy(motif_filter(motif.ppm, filter_size))
        record["init_motifs"] = [{"unit": u, "id": m.id, "name": m.name} for u, m in enumerate(motifs)]
        record["frozen_filters"] = list(range(len(motifs))) if freeze_filters else []
        if freeze_filters:
            freeze_rows(module.linears[0].weight, range(len(motifs)))
    return fit(module, train_data, valid, test, arch="explainn", hyperparameters=hyper, record=record, **common)


def _train_transfer(train_data: Any, valid: Any, test: Any, pretrained: str, per_unit_fc: bool,
                    init_motifs: str | None, **common: Any) -> Any:
    """ExplaiNN whose units are the pretrained models' outputs (Novakovsky et al. 2023, Fig. 5)."""
    from interpkit_torch.training import fit, seeded

    from interpkit._io import file_digest
    from interpkit_explainn.transfer import TransferExplaiNN, load_units, split_unit

    if init_motifs:
        raise InputError("init_motifs and pretrained exclude each other: pretrained units have no filters to set.")
    units = [split_unit(p) for p in pretrained.split(",") if p.strip()]
    length = int(train_data.X.shape[2])
    modules = load_units(units, length)
    with seeded(common["random_state"]):
        module = TransferExplaiNN(modules, len(train_data.targets), length, per_unit_fc=per_unit_fc,
                                  strand_average=train_data.alphabet == "ACGT")
    record = {"pretrained": [{"path": p, "arch": a, "sha256": file_digest(p)} for p, a in units]}
    hyper = {k: v for k, v in module.options.items() if k != "unit_widths"}
    return fit(module, train_data, valid, test, arch="explainn-transfer", hyperparameters=hyper, record=record,
               **common)
