"""Ground truth for attribution tests: the TAL1/GATA simulated-data CNN and its planted motifs.

The Kundaje lab's simulated dataset (../shared/checkpoints/tal_gata_simulated, see SOURCE.txt) plants known
motif instances in random 200-bp sequences, and records where each went. A model trained on it (3 outputs:
task1 = TAL1 and GATA both present, task2 = GATA, task3 = TAL1; output indices 0, 1, 2) should attribute its
output to those instances, so the planted positions are an independent oracle for attribution methods: the
AUROC of per-position scores against the planted-motif mask (:func:`motif_auroc`).

This module holds
- :func:`load_simdata`: the 8,000 sequences, labels and parsed motif instances;
- :func:`pick_positives` / :func:`motif_masks`: the evaluation set (40 positives per task) and its mask;
- :func:`per_position` and :func:`motif_auroc`: the score definition and the metric;
- :func:`torch_port`: a plain PyTorch port of the Keras 2 Conv1D model, built from the Keras weights.

Frameworks (torch, sklearn) are imported inside the functions that need them.
"""

from __future__ import annotations

import csv
import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interpkit.sequences import one_hot_encode

#: Folder of the checkpoint and data, relative to ../shared.
FOLDER = "checkpoints/tal_gata_simulated"
KERAS_JSON = f"{FOLDER}/keras2_conv1d_record_5_model_PQzyq_modelJson.json"
SIMDATA = f"{FOLDER}/sequences.simdata.gz"
LENGTH = 200

#: Output index -> the motif family its label stands for (SOURCE.txt: task2 = GATA, task3 = TAL1).
TASK_MOTIF = {1: "GATA", 2: "TAL1"}

#: Reference AUROCs of the issue (issue 4, TAL/GATA acceptance line), per method and output index: a plain
#: PyTorch port of the model, 40 positive sequences per task, tangermeme 1.6 deep_lift_shap (20 dinucleotide
#: shuffles) and saturation_mutagenesis.
REFERENCE_AUROC = {
    "deeplift": {1: 0.89, 2: 0.77},
    "ism": {1: 0.93, 2: 0.80},
}

_EMBEDDING = re.compile(r"^pos-(?P<pos>\d+)_(?P<motif>[A-Za-z0-9]+)_(?P<variant>[^-]+)-(?P<string>[ACGTN]+)$")


@dataclass(frozen=True)
class MotifInstance:
    """One planted motif: ``string`` written at ``[position, position + len(string))`` (0-based, bp).

    ``motif`` is the family (``GATA``, ``TAL1``), ``variant`` the simulation's motif id (``disc1``, ``known1``).
    """

    position: int
    motif: str
    variant: str
    string: str

    @property
    def end(self) -> int:
        """One past the last covered position."""
        return self.position + len(self.string)


@dataclass(frozen=True)
class SimData:
    """The simulated dataset.

    Attributes
    ----------
    names : tuple of str, length N
    sequences : tuple of str, length N, each 200 bp
    X : ndarray of shape (N, 4, 200), float32, one-hot A, C, G, T
    labels : ndarray of shape (N, 3), int64, columns task1..task3 (output indices 0..2)
    instances : tuple of tuple of MotifInstance, length N
    """

    names: tuple[str, ...]
    sequences: tuple[str, ...]
    X: np.ndarray
    labels: np.ndarray
    instances: tuple[tuple[MotifInstance, ...], ...]


def parse_embeddings(text: str) -> tuple[MotifInstance, ...]:
    """Parse the ``embeddings`` column, e.g. ``'pos-120_GATA_disc1-GCAGATAAGA,pos-1_GATA_disc1-...'``.

    An empty field means no planted motif. Raises ValueError on an entry it cannot read.
    """
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = _EMBEDDING.match(item)
        if match is None:
            raise ValueError(f"cannot parse motif instance {item!r}; expected 'pos-<int>_<MOTIF>_<id>-<ACGT...>'.")
        out.append(MotifInstance(int(match["pos"]), match["motif"], match["variant"], match["string"]))
    return tuple(out)


def load_simdata(path: str | Path) -> SimData:
    """Read ``sequences.simdata.gz`` (tab-separated: seqName, sequence, embeddings, task1..task3).

    Each instance's string is checked against the sequence at its position, so a wrong parse cannot
    pass silently.
    """
    with gzip.open(path, "rt") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    sequences = tuple(r["sequence"] for r in rows)
    instances = tuple(parse_embeddings(r["embeddings"]) for r in rows)
    for name, seq, insts in zip((r["seqName"] for r in rows), sequences, instances):
        for inst in insts:
            if seq[inst.position: inst.end] != inst.string:
                raise ValueError(f"{name}: {inst} does not match the sequence at {inst.position}.")
    return SimData(
        names=tuple(r["seqName"] for r in rows),
        sequences=sequences,
        X=one_hot_encode(list(sequences)),
        labels=np.array([[int(r[f"task{t}"]) for t in (1, 2, 3)] for r in rows], dtype=np.int64),
        instances=instances,
    )


def pick_positives(data: SimData, task: int, n: int = 40) -> np.ndarray:
    """Indices of the first ``n`` sequences, in file order, labelled positive for output ``task`` that
    contain at least one instance of that task's motif (:data:`TASK_MOTIF`). Deterministic, no seed.

    Returns ndarray of shape (n,), int64. Raises ValueError if there are fewer than ``n``.
    """
    motif = TASK_MOTIF[task]
    keep = [i for i, insts in enumerate(data.instances)
            if data.labels[i, task] == 1 and any(inst.motif == motif for inst in insts)]
    if len(keep) < n:
        raise ValueError(f"only {len(keep)} positives for task {task}, {n} asked.")
    return np.array(keep[:n], dtype=np.int64)


def motif_masks(data: SimData, index: np.ndarray, task: int) -> np.ndarray:
    """Boolean (len(index), L) mask: True inside every instance of ``task``'s motif (other motifs are False)."""
    motif = TASK_MOTIF[task]
    masks = np.zeros((len(index), data.X.shape[-1]), dtype=bool)
    for row, i in enumerate(index):
        for inst in data.instances[i]:
            if inst.motif == motif:
                masks[row, inst.position: inst.end] = True
    return masks


def per_position(attributions: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
    """Per-position score (N, L) from per-base attributions (N, 4, L).

    With ``X`` (one-hot, (N, 4, L)) the attributions are first projected on the observed base
    (``attributions * X``), as for hypothetical scores and tangermeme's ISM; without it they are taken as
    already projected. The score is the sum over the alphabet axis, signed: a base that raises the output
    scores high, one that lowers it scores low.
    """
    attributions = np.asarray(attributions, dtype=np.float64)
    if X is not None:
        attributions = attributions * X
    return attributions.sum(axis=-2)


def motif_auroc(attr: np.ndarray, masks: np.ndarray) -> float:
    """AUROC of per-position scores against the planted-motif mask, pooled over all sequences.

    Parameters
    ----------
    attr : ndarray of shape (N, L), float
        Per-position scores (see :func:`per_position`).
    masks : ndarray of shape (N, L), bool
        True at positions inside the task's motif instances (positives); every other position, including
        other motifs, is a negative.

    Returns
    -------
    float
        ``sklearn.metrics.roc_auc_score(masks.ravel(), attr.ravel())``: the probability that a random motif
        position outscores a random non-motif position (ties count one half).
    """
    from sklearn.metrics import roc_auc_score

    attr, masks = np.asarray(attr), np.asarray(masks, dtype=bool)
    if attr.shape != masks.shape or attr.ndim != 2:
        raise ValueError(f"attr {attr.shape} and masks {masks.shape} must both be (N, L).")
    return float(roc_auc_score(masks.ravel(), attr.ravel()))


def torch_port(keras_model, *, output: str = "logit"):
    """A plain PyTorch port of the Keras 2 Conv1D TAL/GATA model, with its weights.

    Keras layers (the JSON): Conv1D(50, 11, valid) -> relu -> Conv1D(50, 11, valid) -> relu ->
    AveragePooling1D(180, stride 180) -> Flatten -> Dense(50) -> relu -> Dropout(0.5) -> Dense(3) -> sigmoid.
    Input (N, 4, 200) one-hot (NCL; Keras takes NLC). The second conv's output is 180 long, so the pool
    leaves one position and Flatten keeps the channel order, as in torch.

    Parameters
    ----------
    keras_model : tf_keras model
        The loaded Keras model (``interpkit.load(json).keras_model``); weights are read with ``get_weights``.
    output : {"logit", "sigmoid"}
        ``"logit"`` ends at the last Dense layer (pre-sigmoid logits, what attribution methods explain);
        ``"sigmoid"`` appends ``nn.Sigmoid`` and equals the Keras model's probabilities. Default is "logit".

    Returns
    -------
    torch.nn.Sequential in eval mode (Dropout inactive), float32.
    """
    import torch
    from torch import nn

    if output not in ("logit", "sigmoid"):
        raise ValueError(f"output must be 'logit' or 'sigmoid', got {output!r}.")
    w = [np.asarray(a, dtype=np.float32) for a in keras_model.get_weights()]
    if [a.shape for a in w] != [(11, 4, 50), (50,), (11, 50, 50), (50,), (50, 50), (50,), (50, 3), (3,)]:
        raise ValueError(f"unexpected weight shapes {[a.shape for a in w]} for the TAL/GATA model.")
    layers = [
        ("conv1", nn.Conv1d(4, 50, 11)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv1d(50, 50, 11)), ("relu2", nn.ReLU()),
        ("pool", nn.AvgPool1d(180, 180)), ("flatten", nn.Flatten()),
        ("dense1", nn.Linear(50, 50)), ("relu3", nn.ReLU()), ("dropout", nn.Dropout(0.5)),
        ("dense2", nn.Linear(50, 3)),
    ]
    if output == "sigmoid":
        layers.append(("sigmoid", nn.Sigmoid()))
    model = nn.Sequential()
    for name, module in layers:
        model.add_module(name, module)
    with torch.no_grad():
        # Keras Conv1D kernels are (width, in, out); torch's are (out, in, width). Both cross-correlate.
        model.conv1.weight.copy_(torch.from_numpy(w[0].transpose(2, 1, 0).copy()))
        model.conv1.bias.copy_(torch.from_numpy(w[1]))
        model.conv2.weight.copy_(torch.from_numpy(w[2].transpose(2, 1, 0).copy()))
        model.conv2.bias.copy_(torch.from_numpy(w[3]))
        model.dense1.weight.copy_(torch.from_numpy(w[4].T.copy()))
        model.dense1.bias.copy_(torch.from_numpy(w[5]))
        model.dense2.weight.copy_(torch.from_numpy(w[6].T.copy()))
        model.dense2.bias.copy_(torch.from_numpy(w[7]))
    return model.eval()
