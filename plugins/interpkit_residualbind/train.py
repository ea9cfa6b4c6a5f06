"""Training ResidualBind (Koo et al. 2021) as its reference code does: Adam, MSE, plateau decay, early stopping.

``interpkit train residualbind SEQUENCES --targets TSV ...`` and ``interpkit.train("residualbind", data, ...)``
call :func:`train`. Defaults are the reference's ``ResidualBind.fit``: Adam lr 0.001, batch 100, at
most 300 epochs, the learning rate times 0.3 after 7 epochs without a better validation Pearson's r
(floor 1e-6), stop after 25 (the RNAcompete 2013 script used 20).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interpkit import VERBOSE, Param
from interpkit.errors import InputError

__all__ = ["TRAIN_PARAMS", "train"]

TRAIN_PARAMS = (
    Param("dilations", str, "1,2,4,8", "Dilations of the residual block's convolutions (reference code 1,2,4,8; "
          "the paper's text 1,2,4)."),
    Param("filters", int, 96, "Convolution filters.", min=1),
    Param("lr", float, 0.001, "Adam learning rate.", min=0.0),
    Param("batch_size", int, 100, "Sequences per step.", min=2),
    Param("max_epochs", int, 300, "Most passes over the training data.", min=1),
    Param("patience", int, 25, "Stop after this many epochs without a better validation metric (0: never).", min=0),
    Param("lr_decay", float, 0.3, "Multiply the learning rate by this after --decay-patience epochs without "
          "improvement (1: no decay).", min=0.0, max=1.0),
    Param("decay_patience", int, 7, "Epochs without improvement before the learning rate decays.", min=1),
    Param("monitor", str, None, "Validation metric for early stopping: pearson (regression default), auprc "
          "(classification default), auroc or loss.", choices=("auprc", "auroc", "pearson", "loss")),
    Param("reverse_complement", bool, False, "Also train on reverse complements (DNA data only)."),
    Param("device", str, None, "cpu, cuda or cuda:N (default: CUDA if available)."),
    VERBOSE,
)


def train(train_data: Any, valid: Any, test: Any, *, out: Path, random_state: int = 0, overwrite: bool = False,
          resume: bool = False, dilations: str = "1,2,4,8", filters: int = 96, lr: float = 0.001, batch_size: int = 100,
          max_epochs: int = 300, patience: int = 25, lr_decay: float = 0.3, decay_patience: int = 7,
          monitor: str | None = None, reverse_complement: bool = False, device: str | None = None,
          verbose: bool = False) -> Any:
    """Train a ResidualBind on labelled RNA (or DNA) sequences and write its best checkpoint.

    Parameters
    ----------
    train_data, valid, test : LabelledSequences
        (N, 4, L) float32 one-hot (A, C, G, U; DNA works alike) and (N, T) targets, usually one
        normalised RNAcompete-style binding score; ``test`` may be None.
    out : Path
        Directory for ``model.pth`` and ``model.json`` (``interpkit.load`` reads them back).
    random_state : int
        Seeds the initial weights (Glorot uniform, as Keras), the batch order and dropout. Default is 0.
    overwrite : bool
        Replace an existing ``model.pth``. Default is False.
    resume : bool
        Continue the interrupted run in ``out`` (:func:`interpkit_torch.training.fit`). Default is False.
    dilations ... verbose
        As :data:`TRAIN_PARAMS`.

    Returns
    -------
    TrainingResult

    Raises
    ------
    InputError
        For malformed ``dilations``, reverse complements of RNA, or the loop's own errors
        (:func:`interpkit_torch.training.fit`).

    Notes
    -----
    Structure-profile channels (``in_channels`` > 4) are not trained here: the data readers give
    sequences only. Koo et al. (2021) PLoS Comput. Biol. 17:e1008925, Methods; p-koo/residualbind
    ``ResidualBind._fit_regression``.
    """
    from interpkit_torch.training import Schedule, fit, seeded

    from interpkit_residualbind.architecture import build

    try:
        steps = tuple(int(d) for d in str(dilations).split(","))
    except ValueError:
        raise InputError(f"dilations={dilations!r} must be comma-separated integers such as '1,2,4,8'.") from None
    if reverse_complement and train_data.alphabet != "ACGT":
        raise InputError("reverse_complement=True needs DNA (ACGT) data; RNA has no reverse strand to augment with.")
    with seeded(random_state):
        module = build(input_length=int(train_data.X.shape[2]), num_classes=len(train_data.targets), dilations=steps,
                       filters=filters)
    task = train_data.task
    schedule = Schedule(lr=lr, batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                        monitor=monitor or ("pearson" if task == "regression" else "auprc"),
                        lr_decay=lr_decay if lr_decay < 1 else None, decay_patience=decay_patience)
    return fit(module, train_data, valid, test, arch="residualbind", hyperparameters=module.options,
               schedule=schedule, out=out, overwrite=overwrite, resume=resume, reverse_complement=reverse_complement,
               random_state=random_state, verbose=verbose, device=device)
