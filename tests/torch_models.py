"""Test-only PyTorch models: a small Basset-like net and a smooth net; OpenSpliceAI and Pangolin
come from the shipped splice plugin (their checkpoints load into those modules strictly).
"""

from __future__ import annotations

import numpy as np
import torch
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


# -- OpenSpliceAI and Pangolin: the shipped architectures (plugins/interpkit_splice) ------------------
from interpkit_splice.architecture import OpenSpliceAI as _OpenSpliceAI
from interpkit_splice.architecture import Pangolin  # noqa: F401

PANGOLIN_CONTEXT = 10_000
#: P(splice) channels of the 12 outputs (class 1 of each tissue's 2-way softmax: heart, liver, brain, testis).
PANGOLIN_P_SPLICE = (1, 4, 7, 10)


def OpenSpliceAI(flank: int = 80) -> nn.Module:
    """OpenSpliceAI for the MANE checkpoints of the given flank (80: four 11-bp units; 400: eight)."""
    return _OpenSpliceAI({80: [11] * 4, 400: [11] * 8}[flank])


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
