"""ExplaiNN (Novakovsky et al. 2023): independent CNN units with the reference code's state_dict layout.

Each of U units is one convolutional filter (4 x F) -> BatchNorm -> exponential activation ->
max-pool -> a small per-unit MLP giving one scalar >= 0; a final linear layer maps the U unit
outputs to the T outputs (logits or regression values, no output activation).

The reference (wassermanlab/ExplaiNN ``explainn/models/networks.py``) repeats the input U times
and runs a grouped ``Conv1d(4U, U, F, groups=U)``. Its weight, shape (U, 4, F), is exactly the
weight of a dense ``Conv1d(4, U, F)`` applied to the input once, which gives the same outputs
(to float rounding) about 5 times faster on CPU. This module runs that dense form; the per-unit
fully connected layers stay grouped 1x1 convolutions, so every key and shape of the reference
state_dict is unchanged (``num_fc=2``, P pooled positions, hidden size 100):

==============  =====================================  =======================================
key             module                                 shape
==============  =====================================  =======================================
linears.0       Conv1d(4, U, F) (reference: grouped)   weight (U, 4, F), bias (U,)
linears.1       BatchNorm1d(U)                         weight/bias/running_* (U,)
linears.2-5     Exp, MaxPool1d(7, 7), Flatten, Unsqueeze
linears.6       Conv1d(U*P, 100U, 1, groups=U)         weight (100U, P, 1), bias (100U,)
linears.7-9     BatchNorm1d(100U), ReLU, Dropout(0.3)
linears.10      Conv1d(100U, U, 1, groups=U)           weight (U, 100, 1), bias (U,)
linears.11-13   BatchNorm1d(U), ReLU, Flatten          -> unit outputs (N, U)
final           Linear(U, T)                           weight (T, U), bias (T,)
==============  =====================================  =======================================

``num_fc=0`` keeps linears.0-2, a global max-pool and Flatten; ``num_fc=1`` has one per-unit
layer (linears.6: U*P -> U, linears.7: BatchNorm1d(U)); ``num_fc>=3`` stops ``linears`` after
index 8 and adds ``linears_bg.<i>`` (Dropout, Conv1d(100U, 100U), BatchNorm, ReLU) and
``last_linear`` (Dropout, Conv1d(100U, U), BatchNorm, ReLU, Flatten), as the reference does.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Exp", "ExplaiNN", "Unsqueeze", "pooled_length"]


class Exp(nn.Module):
    """Exponential activation, exp(x) elementwise (Koo & Ploenzke 2021, Nat. Mach. Intell. 3:258-266).

    A class of its own so that attribution methods can find it (DeepLIFT must treat it as a
    nonlinearity, not as linear).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)


class Unsqueeze(nn.Module):
    """Append a length-1 axis, (N, C) -> (N, C, 1), so per-unit dense layers run as grouped 1x1 convolutions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1)


def pooled_length(input_length: int, filter_size: int, pool_size: int, pool_stride: int) -> int:
    """Positions per unit after the max-pool: floor((L - F + 1 - pool) / stride) + 1."""
    return (input_length - filter_size + 1 - pool_size) // pool_stride + 1


def _unit_layer(units: int, n_in: int, n_out: int) -> list[nn.Module]:
    """A per-unit dense layer n_in -> n_out as a grouped 1x1 convolution, with its BatchNorm and ReLU."""
    return [nn.Conv1d(units * n_in, units * n_out, 1, groups=units), nn.BatchNorm1d(units * n_out), nn.ReLU()]


class ExplaiNN(nn.Module):
    """ExplaiNN with the reference state_dict layout and a dense first convolution.

    Parameters
    ----------
    num_units : int
        Number of independent units U (reference ``num_cnns``).
    input_length : int
        Sequence length L in bp.
    num_classes : int
        Number of outputs T.
    filter_size : int
        Filter width F in bp. Default is 19.
    num_fc : int
        Per-unit fully connected layers, 0 to 8. Default is 2.
    pool_size, pool_stride : int
        Max-pool window and stride in bp (unused when ``num_fc == 0``: global max). Default is 7, 7.
    hidden : int
        Width of each unit's hidden layers (hard-coded 100 in the reference). Default is 100.

    Notes
    -----
    Input (N, 4, L) float32 one-hot A, C, G, T; output (N, T) float32. ``linears`` (plus
    ``linears_bg`` and ``last_linear`` when ``num_fc >= 3``) gives the unit outputs (N, U);
    ``linears[:3]`` the unit activation maps (N, U, L - F + 1). Source: Novakovsky et al. (2023)
    Genome Biol. 24:154; state_dict layout of wassermanlab/ExplaiNN ``explainn/models/networks.py``.
    """

    def __init__(self, num_units: int, input_length: int, num_classes: int, *, filter_size: int = 19,
                 num_fc: int = 2, pool_size: int = 7, pool_stride: int = 7, hidden: int = 100) -> None:
        super().__init__()
        self.options = {"num_units": num_units, "input_length": input_length, "num_classes": num_classes,
                        "filter_size": filter_size, "num_fc": num_fc, "pool_size": pool_size,
                        "pool_stride": pool_stride, "hidden": hidden}
        units, conv_length = num_units, input_length - filter_size + 1
        front = [nn.Conv1d(4, units, filter_size), nn.BatchNorm1d(units), Exp()]
        if num_fc == 0:
            self.linears = nn.Sequential(*front, nn.MaxPool1d(conv_length), nn.Flatten())
        else:
            pooled = pooled_length(input_length, filter_size, pool_size, pool_stride)
            front += [nn.MaxPool1d(pool_size, pool_stride), nn.Flatten(), Unsqueeze()]
            if num_fc == 1:
                self.linears = nn.Sequential(*front, *_unit_layer(units, pooled, 1), nn.Flatten())
            elif num_fc == 2:
                self.linears = nn.Sequential(*front, *_unit_layer(units, pooled, hidden), nn.Dropout(0.3),
                                             *_unit_layer(units, hidden, 1), nn.Flatten())
            else:
                self.linears = nn.Sequential(*front, *_unit_layer(units, pooled, hidden))
                self.linears_bg = nn.ModuleList(
                    nn.Sequential(nn.Dropout(0.3), *_unit_layer(units, hidden, hidden)) for _ in range(num_fc - 2))
                self.last_linear = nn.Sequential(nn.Dropout(0.3), *_unit_layer(units, hidden, 1), nn.Flatten())
        self.final = nn.Linear(units, num_classes)
        #: Set by the loader: file name and md5.
        self.checkpoint_info: dict | None = None

    @property
    def input_length(self) -> int:
        """Input length in bp."""
        return self.options["input_length"]

    def unit_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Unit outputs (N, U), the inputs of ``final``, for one-hot x of shape (N, 4, L)."""
        out = self.linears(x)
        if self.options["num_fc"] >= 3:
            for block in self.linears_bg:
                out = block(out)
            out = self.last_linear(out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (N, T) for one-hot x of shape (N, 4, L)."""
        return self.final(self.unit_outputs(x))
