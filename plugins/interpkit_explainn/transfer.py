"""ExplaiNN with pretrained models as units (transfer learning; Novakovsky et al. 2023, Fig. 5).

In the paper's transfer-learning variant, each unit is a pretrained single-TF model (there DanQ) whose
output, averaged over both strands, is one feature; a final linear layer maps the U features to the T
outputs, either directly or after a per-unit fully connected network (the reference's ``NAMLayer``:
per unit 1 -> hidden -> 1). The pretrained models stay fixed; only the head trains.

Checkpoints written by ``interpkit train explainn --pretrained A.pth,B.pth`` hold the whole module
(units included); ``model.json`` names the architecture ``explainn-transfer`` and lists the unit
checkpoints, which :func:`load` reads again (weights only) to rebuild the units before loading.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interpkit.errors import InputError
from interpkit_explainn.architecture import Unsqueeze

__all__ = ["TransferExplaiNN", "load", "load_units", "split_unit"]


class TransferExplaiNN(nn.Module):
    """Pretrained models as ExplaiNN units, with or without per-unit fully connected layers.

    Parameters
    ----------
    units : sequence of nn.Module
        Pretrained models, each mapping one-hot (N, 4, L) float32 to (N, k_i); every output
        column is one unit, U = sum of k_i. They are frozen (no gradient) and always run in eval
        mode.
    num_classes : int
        Number of outputs T.
    input_length : int
        Sequence length L in bp.
    per_unit_fc : bool
        Pass each unit's output through its own 1 -> hidden -> 1 network (grouped 1x1
        convolutions, BatchNorm, ReLU, dropout 0.3; the reference's ``NAMLayer``). False: the
        unit outputs go straight to ``final`` (the reference's ``SingleLayer``). Default is True.
    hidden : int
        Hidden width per unit. Default is 100.
    strand_average : bool
        Unit output = mean of the model on the sequence and on its reverse complement (the
        paper's DanQ features, "Mean" column). Default is True.

    Notes
    -----
    Output (N, T) float32; :meth:`unit_outputs` gives the (N, U) inputs of ``final``, so
    ``final.weight`` (T, U) times them, plus ``final.bias``, is the output.
    """

    def __init__(self, units: Sequence[nn.Module], num_classes: int, input_length: int, *, per_unit_fc: bool = True,
                 hidden: int = 100, strand_average: bool = True) -> None:
        super().__init__()
        self.units = nn.ModuleList(units)
        for p in self.units.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            self.units.eval()
            probe = torch.zeros(2, 4, input_length)
            widths = [int(m(probe).reshape(2, -1).shape[1]) for m in self.units]
        count = sum(widths)
        self.options = {"num_units": count, "num_classes": num_classes, "input_length": input_length,
                        "per_unit_fc": per_unit_fc, "hidden": hidden, "strand_average": strand_average,
                        "unit_widths": widths}
        self.linears = nn.Sequential(
            Unsqueeze(), nn.Conv1d(count, hidden * count, 1, groups=count), nn.BatchNorm1d(hidden * count), nn.ReLU(),
            nn.Dropout(0.3), nn.Conv1d(hidden * count, count, 1, groups=count), nn.Flatten(),
        ) if per_unit_fc else nn.Identity()
        self.final = nn.Linear(count, num_classes)

    @property
    def input_length(self) -> int:
        """Input length in bp."""
        return self.options["input_length"]

    def train(self, mode: bool = True) -> TransferExplaiNN:
        """Set the head's training mode; the pretrained units stay in eval mode."""
        super().train(mode)
        self.units.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pretrained models' outputs (N, U), strand-averaged if ``strand_average``."""
        out = torch.cat([m(x).reshape(len(x), -1) for m in self.units], dim=1)
        if self.options["strand_average"]:
            rc = x.flip(1).flip(2)
            out = (out + torch.cat([m(rc).reshape(len(x), -1) for m in self.units], dim=1)) / 2
        return out

    def unit_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Unit outputs (N, U), the inputs of ``final``."""
        return self.linears(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (N, T) for one-hot x of shape (N, 4, L)."""
        return self.final(self.unit_outputs(x))


def split_unit(spec: str) -> tuple[str, str | None]:
    """``"FILE"`` or ``"ARCH:FILE"`` (ARCH a registered architecture) -> (absolute path, arch or None)."""
    from interpkit.plugins import get_registry

    spec = spec.strip()
    arch, sep, rest = spec.partition(":")
    if sep and arch in get_registry().models:
        return os.path.abspath(rest), arch
    return os.path.abspath(spec), None


def load_units(units: Sequence[tuple[str | os.PathLike, str | None]], length: int) -> list[nn.Module]:
    """Read pretrained unit models (weights only) through ``interpkit.load`` and return their modules.

    Parameters
    ----------
    units : sequence of (path, arch or None)
        Checkpoints and, for weights-only files without a ``model.json``, their architecture.
    length : int
        The data's sequence length in bp; each unit must take it.

    Raises
    ------
    InputError
        If a file does not load as a PyTorch model of input length ``length``.
    """
    import interpkit

    modules = []
    for path, arch in units:
        model = interpkit.load(path, arch=arch)
        module = getattr(model, "module", None)
        if not isinstance(module, nn.Module):
            raise InputError(f"pretrained unit {path} is a {getattr(model, 'backend_name', '?')} model; transfer "
                             "learning needs PyTorch checkpoints (e.g. written by interpkit train).")
        spec = model.input_spec
        if spec.layout != "NCL" or (spec.length is not None and spec.length != length):
            raise InputError(f"pretrained unit {path} takes {spec.layout} input of {spec.length} bp; the data is NCL "
                             f"of {length} bp. Use units trained on sequences of the same length.")
        modules.append(module)
    return modules


def load(source: Any, *, pretrained: Sequence[str] | None = None, **options: Any) -> Any:
    """``interpkit.load("model.pth")`` for a checkpoint of ExplaiNN with pretrained units.

    Parameters
    ----------
    source : path-like
        ``model.pth`` written by ``interpkit train explainn --pretrained ...``, with ``model.json``
        beside it.
    pretrained : sequence of path-like or None
        The unit checkpoints, if they moved since training. Default is None (the recorded paths).
    **options
        Options of the torch backend.

    Returns
    -------
    Predictor

    Raises
    ------
    InputError
        If ``model.json`` is missing or not of this architecture, a unit checkpoint is missing
        (pass ``pretrained=``), or the weights do not fit.
    """
    from interpkit_torch.checkpoint import checkpoint_info, load_strict, read_state_dict

    from interpkit.api import load as load_model
    from interpkit.training import read_sidecar

    record = read_sidecar(source) if isinstance(source, (str, os.PathLike)) else None
    if not record or record["arch"] != "explainn-transfer":
        raise InputError(f"{source} needs its model.json (written by interpkit train) to rebuild the pretrained "
                         "units; keep it beside the checkpoint.")
    try:  # model.json is data: a damaged field is named, not a traceback
        arches = [u.get("arch") for u in record["pretrained"]]
        paths = list(pretrained) if pretrained is not None else [u["path"] for u in record["pretrained"]]
        hyper = {k: record["hyperparameters"][k] for k in ("input_length", "num_classes", "per_unit_fc", "hidden",
                                                           "strand_average")}
        targets = [str(t) for t in record["targets"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"model.json beside {source} is damaged ({type(exc).__name__}: {exc}); restore it from "
                         "the training run's output, or train again.") from None
    if len(paths) != len(arches):
        raise InputError(f"{source} has {len(arches)} pretrained units; pretrained= gives {len(paths)} files.")
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise InputError(f"pretrained unit checkpoint(s) {', '.join(missing)} of {source} are missing; pass "
                         "pretrained=[...] with their new paths.")
    module = TransferExplaiNN(load_units(list(zip(paths, arches)), hyper["input_length"]), hyper["num_classes"], hyper["input_length"],
                              per_unit_fc=hyper["per_unit_fc"], hidden=hyper["hidden"],
                              strand_average=hyper["strand_average"])
    state, label = read_state_dict(source, arch="explainn-transfer")
    load_strict(module, state, label=label, arch="explainn-transfer")
    module.checkpoint_info = checkpoint_info(source, {})
    module.output_names = targets
    return load_model(module, backend="torch", **{"layout": "NCL", **options, "length": module.input_length})
