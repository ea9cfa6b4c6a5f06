"""OpenSpliceAI and Pangolin as torch modules with the published checkpoints' key names.

Both lift the one-hot input to 32 channels with a 1x1 convolution, run pre-activation
residual units (BN - activation - dilated conv, twice, plus the identity) in groups of four
with dilation 1, 4, 10, 25 per group, add a 1x1 convolution of the trunk to a skip sum after
each group, crop the skip sum by the context on each side and end in 1x1 convolutions.
Residual additions happen in ``forward``, so layer tables built from modules follow the trunk
(see the torch backend's notes); the crop is a module of unknown geometry, so layers above it
report unknown receptive fields rather than wrong ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DILATIONS", "OpenSpliceAI", "Pangolin", "context"]

#: Dilation of residual units 4k .. 4k+3 (SpliceAI's AR schedule).
DILATIONS = (1, 4, 10, 25)


def context(widths: list[int]) -> int:
    """Total context CL = 2 * sum over units of dilation * (width - 1), in bp."""
    return 2 * sum(DILATIONS[i // 4] * (w - 1) for i, w in enumerate(widths))


def _dilated_pair(width: int, dilation: int) -> tuple[nn.Conv1d, nn.Conv1d]:
    pad = dilation * (width - 1) // 2  # keeps the length
    return tuple(nn.Conv1d(32, 32, width, dilation=dilation, padding=pad) for _ in range(2))


class _OpenSpliceAIUnit(nn.Module):
    """x + conv2(act(batchnorm2(conv1(act(batchnorm1(x)))))), LeakyReLU(0.1)."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.batchnorm1, self.batchnorm2 = nn.BatchNorm1d(32), nn.BatchNorm1d(32)
        self.relu1, self.relu2 = nn.LeakyReLU(0.1), nn.LeakyReLU(0.1)
        self.conv1, self.conv2 = _dilated_pair(width, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu2(self.batchnorm2(self.conv1(self.relu1(self.batchnorm1(x))))))


class _PangolinUnit(nn.Module):
    """x + conv2(relu(bn2(conv1(relu(bn1(x))))))."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm1d(32), nn.BatchNorm1d(32)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.conv1, self.conv2 = _dilated_pair(width, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu2(self.bn2(self.conv1(self.relu1(self.bn1(x))))))


class _Crop(nn.Module):
    """Drop ``crop`` positions at each end of (N, C, L): the context consumed by the residual stack.

    A module (not slicing in ``forward``) so that layer tables see it; its kind is "unknown"
    because a crop shifts positions, so geometry above it is reported as unknown, not wrong.
    """

    interpkit_kind = "unknown"

    def __init__(self, crop: int) -> None:
        super().__init__()
        self.crop = crop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, self.crop: x.shape[2] - self.crop]


class _Skip(nn.Module):
    """1x1 convolution of the trunk into the skip sum (OpenSpliceAI's ``residual_units`` entries)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(32, 32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class OpenSpliceAI(nn.Module):
    """OpenSpliceAI (Chao et al., eLife 2025), keys as ``model_<flank>nt_rs*.pt``.

    Parameters
    ----------
    widths : list of int
        Kernel width of each residual unit: [11]*4 (flank 80), [11]*8 (400), [11]*8+[21]*4
        (2000), [11]*8+[21]*4+[41]*4 (10000).

    Input (N, 4, L + CL) one-hot ACGT; output (N, 3, L) softmax over [non-splice, acceptor,
    donor] per position. LeakyReLU(0.1) activations.
    """

    output_names = ("non_splice", "acceptor", "donor")

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        self.crop = context(widths) // 2
        self.initial_conv = nn.Conv1d(4, 32, 1)
        self.initial_skip = _Skip()
        units: list[nn.Module] = []
        for i, w in enumerate(widths):
            units.append(_OpenSpliceAIUnit(w, DILATIONS[i // 4]))
            if i % 4 == 3 or i == len(widths) - 1:
                units.append(_Skip())
        self.residual_units = nn.ModuleList(units)
        self.cropping = _Crop(self.crop)  # registered where it runs: module order drives layer tables
        self.final_conv = nn.Conv1d(32, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial_conv(x)
        skip = self.initial_skip(x)
        for unit in self.residual_units:
            if isinstance(unit, _Skip):
                skip = skip + unit(x)
            else:
                x = unit(x)
        return F.softmax(self.final_conv(self.cropping(skip)), dim=1)


class Pangolin(nn.Module):
    """Pangolin (Zeng & Li, Genome Biology 2022), keys as ``final.<replicate>.<head>.3[.v2]``.

    16 residual units (widths 11x8, 21x4, 41x4), context 10,000 bp; per tissue (heart, liver,
    brain, testis) a 2-way softmax [P(not splice), P(splice)] and a sigmoid usage. Input
    (N, 4, L) one-hot ACGT; output (N, 12, L - 10000).
    """

    widths = [11] * 8 + [21] * 4 + [41] * 4
    output_names = tuple(f"{tissue}_{kind}" for tissue in ("heart", "liver", "brain", "testis")
                         for kind in ("p_not_splice", "p_splice", "usage"))

    def __init__(self) -> None:
        super().__init__()
        self.crop = context(self.widths) // 2
        self.conv1 = nn.Conv1d(4, 32, 1)
        self.skip = nn.Conv1d(32, 32, 1)
        self.resblocks = nn.ModuleList(_PangolinUnit(w, DILATIONS[i // 4]) for i, w in enumerate(self.widths))
        self.convs = nn.ModuleList(nn.Conv1d(32, 32, 1) for _ in range(4))
        self.cropping = _Crop(self.crop)
        for i in range(1, 9):
            setattr(self, f"conv_last{i}", nn.Conv1d(32, 2 if i % 2 else 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        skip = self.skip(x)
        for i, block in enumerate(self.resblocks):
            x = block(x)
            if i % 4 == 3:
                skip = skip + self.convs[i // 4](x)
        skip = self.cropping(skip)
        heads = []
        for i in range(1, 9):
            y = getattr(self, f"conv_last{i}")(skip)
            heads.append(F.softmax(y, dim=1) if i % 2 else torch.sigmoid(y))
        return torch.cat(heads, dim=1)
