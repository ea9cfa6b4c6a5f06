"""Test-only PyTorch architectures: a small Basset-like net, a smooth net, OpenSpliceAI and Pangolin.

OpenSpliceAI and Pangolin are re-implemented here from their published descriptions (the
SOURCE.txt files in ../shared/checkpoints and the papers) and the key names and shapes of
their state_dicts; their checkpoints load into these modules strictly. Neither upstream code
base is copied.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# -- small models with hand-computable geometry -------------------------------------------------------
#: (kernel, stride, dilation, left padding) -> receptive field, jump, start, worked out by hand below.
BASSET_LIKE_LENGTH = 60


def basset_like(layout: str = "NCL", *, seed: int = 0) -> nn.Sequential:
    """conv7 - BN - ReLU - maxpool3 - conv3 (dilation 2, 'same') - BN - ReLU - maxpool2 - flatten - dense(3).

    Input 60 bp: lengths 54, 18, 18, 9 along the stack; 6 x 9 = 54 features. Layout "NCL" uses
    1-D layers, "NCL1" 2-D layers with (k, 1) kernels, "NC1L" (1, k) kernels; the weights are
    the same for a given seed, so all layouts compute the same function.
    """
    gen = torch.Generator().manual_seed(seed)
    two_d = layout != "NCL"

    def k(size: int) -> int | tuple[int, int]:
        return size if not two_d else ((size, 1) if layout == "NCL1" else (1, size))

    conv, bn, pool = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if two_d else (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d)
    net = nn.Sequential(
        conv(4, 8, k(7)), bn(8), nn.ReLU(), pool(k(3)),
        conv(8, 6, k(3), dilation=k(2) if two_d else 2, padding="same"), bn(6), nn.ReLU(), pool(k(2)),
        nn.Flatten(), nn.Linear(54, 3),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen).reshape(p.shape) * 0.5)
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return net


#: Hand-computed geometry of basset_like (Araujo et al. 2019 recurrence, one row per module):
#: conv7: rf 7, jump 1, start 0; maxpool3: rf 7 + 2*1 = 9, jump 3; conv3 dilation 2 (k_eff 5, padding 2):
#: rf 9 + 4*3 = 21, start 0 - 2*3 = -6; maxpool2: rf 21 + 1*3 = 24, jump 6; flatten and dense: whole input.
BASSET_LIKE_GEOMETRY = [(7, 1, 0), (7, 1, 0), (7, 1, 0), (9, 3, 0), (21, 3, -6), (21, 3, -6), (21, 3, -6),
                        (24, 6, -6), None, None]


def smooth_net(*, seed: int = 1) -> nn.Sequential:
    """conv5 - softplus - avgpool2 - conv3 - softplus - global average - dense(2): smooth in its input."""
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Conv1d(4, 6, 5), nn.Softplus(), nn.AvgPool1d(2), nn.Conv1d(6, 4, 3), nn.Softplus(),
                        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return net


# -- OpenSpliceAI (Chao et al., eLife 2025): SpliceAI's residual dilated CNN --------------------------
class _SpliceAIResidual(nn.Module):
    """Pre-activation residual unit: x + conv2(act(bn2(conv1(act(bn1(x)))))), length kept by padding."""

    def __init__(self, channels: int, width: int, dilation: int, *, slope: float) -> None:
        super().__init__()
        pad = dilation * (width - 1) // 2
        self.batchnorm1, self.batchnorm2 = nn.BatchNorm1d(channels), nn.BatchNorm1d(channels)
        self.relu1, self.relu2 = nn.LeakyReLU(slope), nn.LeakyReLU(slope)
        self.conv1 = nn.Conv1d(channels, channels, width, dilation=dilation, padding=pad)
        self.conv2 = nn.Conv1d(channels, channels, width, dilation=dilation, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu2(self.batchnorm2(self.conv1(self.relu1(self.batchnorm1(x))))))


class _Skip(nn.Module):
    """1x1 convolution of the trunk, added to the running skip sum by the parent."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class OpenSpliceAI(nn.Module):
    """OpenSpliceAI, SpliceAI architecture with 32 channels (keys as model_<flank>nt_rs*.pt).

    A 1x1 convolution lifts the one-hot input to 32 channels; a skip sum starts with a 1x1
    convolution of it; residual units of width W[i], dilation AR[i] follow, and after every
    4th one a 1x1 convolution of the trunk is added to the skip sum (``residual_units`` holds
    the units and these skip convolutions in order). The skip sum is cropped by CL/2 = flank/2
    on each side, CL = 2 * sum(AR * (W - 1)), and a 1x1 convolution gives 3 channels
    [non-splice, acceptor, donor], softmax over channels. Input (N, 4, L + CL) -> (N, 3, L).
    LeakyReLU(0.1) activations (OpenSpliceAI's choice; SpliceAI used ReLU).
    """

    def __init__(self, flank: int = 80) -> None:
        super().__init__()
        widths, dilations = {80: ([11] * 4, [1] * 4), 400: ([11] * 8, [1] * 4 + [4] * 4)}[flank]
        self.crop = int(sum(d * (w - 1) for w, d in zip(widths, dilations)))
        self.initial_conv = nn.Conv1d(4, 32, 1)
        self.initial_skip = _Skip(32)
        units: list[nn.Module] = []
        for i, (w, d) in enumerate(zip(widths, dilations)):
            units.append(_SpliceAIResidual(32, w, d, slope=0.1))
            if (i + 1) % 4 == 0:
                units.append(_Skip(32))
        self.residual_units = nn.ModuleList(units)
        self.final_conv = nn.Conv1d(32, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial_conv(x)
        skip = self.initial_skip(x)
        for unit in self.residual_units:
            if isinstance(unit, _Skip):
                skip = skip + unit(x)
            else:
                x = unit(x)
        skip = skip[:, :, self.crop: skip.shape[2] - self.crop]
        return F.softmax(self.final_conv(skip), dim=1)


# -- Pangolin (Zeng & Li, Genome Biology 2022) ----------------------------------------------------
class _PangolinBlock(nn.Module):
    """Pre-activation residual block with functional ReLU: x + conv2(relu(bn2(conv1(relu(bn1(x))))))."""

    def __init__(self, channels: int, width: int, dilation: int) -> None:
        super().__init__()
        pad = dilation * (width - 1) // 2
        self.bn1, self.bn2 = nn.BatchNorm1d(channels), nn.BatchNorm1d(channels)
        self.conv1 = nn.Conv1d(channels, channels, width, dilation=dilation, padding=pad)
        self.conv2 = nn.Conv1d(channels, channels, width, dilation=dilation, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.bn2(self.conv1(torch.relu(self.bn1(x))))))


PANGOLIN_CONTEXT = 10_000
#: P(splice) channels of the 12 outputs (class 1 of each tissue's 2-way softmax: heart, liver, brain, testis).
PANGOLIN_P_SPLICE = (1, 4, 7, 10)


class Pangolin(nn.Module):
    """Pangolin: 16 residual blocks (kernel 11/21/41, dilation 1/4/10/25), 32 channels, 4 tissue heads.

    Like SpliceAI, with the skip sum fed by ``skip`` (1x1 conv of the lifted input) and by
    ``convs`` after every 4th block; cropped by 5,000 bp per side; per tissue a 2-way softmax
    (``conv_last1/3/5/7``) and a sigmoid usage (``conv_last2/4/6/8``), concatenated into 12
    channels [P(not splice), P(splice), usage] x (heart, liver, brain, testis).
    Input (N, 4, L) -> (N, 12, L - 10000).
    """

    widths = [11] * 8 + [21] * 4 + [41] * 4
    dilations = [1] * 4 + [4] * 4 + [10] * 4 + [25] * 4

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(4, 32, 1)
        self.skip = nn.Conv1d(32, 32, 1)
        self.resblocks = nn.ModuleList(_PangolinBlock(32, w, d) for w, d in zip(self.widths, self.dilations))
        self.convs = nn.ModuleList(nn.Conv1d(32, 32, 1) for _ in range(4))
        for i in range(1, 9):
            setattr(self, f"conv_last{i}", nn.Conv1d(32, 2 if i % 2 else 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        skip = self.skip(x)
        for i, block in enumerate(self.resblocks):
            x = block(x)
            if (i + 1) % 4 == 0:
                skip = skip + self.convs[i // 4](x)
        half = PANGOLIN_CONTEXT // 2
        skip = skip[:, :, half: skip.shape[2] - half]
        heads = []
        for i in range(1, 9):
            y = getattr(self, f"conv_last{i}")(skip)
            heads.append(F.softmax(y, dim=1) if i % 2 else torch.sigmoid(y))
        return torch.cat(heads, dim=1)


def load_strict(module: nn.Module, path) -> nn.Module:
    """Load a weights-only checkpoint into ``module`` strictly and put it in eval mode."""
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return module.eval()


def one_hot(seq: str) -> np.ndarray:
    """(4, L) float32 one-hot of an ACGT(N) string, written independently of interpkit."""
    out = np.zeros((4, len(seq)), dtype=np.float32)
    for j, base in enumerate(seq.upper()):
        if base in "ACGT":
            out["ACGT".index(base), j] = 1
    return out
