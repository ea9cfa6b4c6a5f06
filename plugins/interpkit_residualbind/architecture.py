"""ResidualBind (Koo et al. 2021): a CNN with one dilated residual block, as coded at the reference's HEAD.

The reference is Keras (p-koo/residualbind ``residualbind.py::ResidualBind.build``, HEAD bf5cd08);
this is a PyTorch port whose layers compute the same function, so Keras weights port one to one
(Conv1D kernel (k, in, out) -> weight (out, in, k); Dense kernel (in, out) -> weight (out, in)).
With the defaults (L = 41, 4 input channels, dilations 1, 2, 4, 8):

===========================  =========================================  ==========================
key                          module                                     shape
===========================  =========================================  ==========================
conv                         Conv1d(C, 96, 11, padding 5, no bias)      weight (96, C, 11)
norm                         BatchNorm1d(96)                            weight/bias/running_* (96,)
act, dropout                 ReLU, Dropout(0.1)
residual.layers.0            Conv1d(96, 96, 3, dilation 1, no bias),    conv.weight (96, 96, 3),
                             BatchNorm1d(96)                            norm.* (96,)
residual.layers.i (i >= 1)   ReLU, Dropout(0.1), Conv1d(96, 96, 3,      as layers.0
                             dilation d_i, no bias), BatchNorm1d(96)
residual.add, residual.act   skip (the output of ``dropout``) + block,
                             then ReLU
pool, pool_dropout           AvgPool1d(10) (stride 10, valid),
                             Dropout(0.2) -> (N, 96, P), P = floor(L/10)
flatten                      (N, 96, P) -> (N, P, 96) -> (N, 96 P),
                             channels last as Keras' Flatten
dense                        Linear(96 P, 256, no bias)                 weight (256, 96 P)
dense_norm                   BatchNorm1d(256)                           weight/bias/running_* (256,)
dense_act, dense_dropout     ReLU, Dropout(0.5)
output                       Linear(256, T)                             weight (T, 256), bias (T,)
===========================  =========================================  ==========================

Every convolution is "same" (padding d (k - 1) / 2, odd kernels), stride 1; BatchNorm has
Keras' epsilon 1e-3 and momentum 0.99 (PyTorch momentum 0.01); every ReLU is its own
``nn.ReLU`` (Captum's DeepLIFT hooks modules) and the residual addition is a module
(``residual.add``) so that it has a row in the layer table. Parameter counts (trainable /
BatchNorm running mean and variance / total), research/gia_residualbind.md section 1.1:
L = 41: 214,849 / 1,472 / 216,321 with 4 channels; 216,961 / 1,472 / 218,433 with 6;
220,129 / 1,472 / 221,601 with 9. L = 39: 190,273, 192,385, 195,553 trainable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from interpkit.errors import InputError
from interpkit.validation import check_scalar

__all__ = ["HYPERPARAMETERS", "Add", "ChannelsLastFlatten", "DilatedResidualBlock", "ResidualBind", "ResidualConv",
           "build", "length_range", "pooled_length"]

#: Constructor arguments of :class:`ResidualBind` and their defaults (the reference's at HEAD).
HYPERPARAMETERS: dict[str, Any] = {
    "input_length": 41, "in_channels": 4, "num_classes": 1, "dilations": (1, 2, 4, 8), "filters": 96,
    "kernel_size": 11, "residual_kernel_size": 3, "pool_size": 10, "dense_units": 256, "conv_dropout": 0.1,
    "pool_dropout": 0.2, "dense_dropout": 0.5,
}
#: Keras' BatchNormalization defaults: epsilon 1e-3, momentum 0.99 (PyTorch counts momentum the other way).
_BN = {"eps": 1e-3, "momentum": 0.01}


def pooled_length(input_length: int, pool_size: int) -> int:
    """Positions after the average pool (stride = pool size, no padding): floor(L / pool)."""
    return input_length // pool_size


def length_range(pooled: int, pool_size: int) -> tuple[int, int]:
    """Input lengths (bp, inclusive) that give ``pooled`` positions: pool P ... pool P + pool - 1."""
    return pooled * pool_size, pooled * pool_size + pool_size - 1


class Add(nn.Module):
    """Element-wise sum of two tensors: the residual addition, as a module so that the layer table shows it."""

    interpkit_kind = "add"

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class ChannelsLastFlatten(nn.Module):
    """(N, C, P) -> (N, P C), index p C + c, as Keras' ``Flatten`` on its channels-last (N, P, C) tensors."""

    interpkit_kind = "flatten"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).flatten(1)


def _conv(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> nn.Conv1d:
    """A "same", bias-free convolution (odd kernel)."""
    return nn.Conv1d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size - 1) // 2,
                     dilation=dilation, bias=False)


class ResidualConv(nn.Module):
    """One step of the dilated residual block: [ReLU -> Dropout ->] Conv1d (dilated, no bias) -> BatchNorm1d.

    The first step (``preactivate=False``) takes the block input as it is; later steps activate
    the previous step's BatchNorm output first ("BN before ReLU", as the reference).
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float, *, preactivate: bool) -> None:
        super().__init__()
        self.preactivate = preactivate
        if preactivate:
            self.act = nn.ReLU()
            self.dropout = nn.Dropout(dropout)
        self.conv = _conv(channels, channels, kernel_size, dilation)
        self.norm = nn.BatchNorm1d(channels, **_BN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preactivate:
            x = self.dropout(self.act(x))
        return self.norm(self.conv(x))


class DilatedResidualBlock(nn.Module):
    """x -> ReLU(x + f(x)), f a chain of :class:`ResidualConv` steps with the given dilations."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int], dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ResidualConv(channels, kernel_size, d, dropout, preactivate=i > 0)
                                    for i, d in enumerate(dilations))
        self.add = Add()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.layers:
            h = layer(h)
        return self.act(self.add(x, h))


def _check(options: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters checked and normalised (dilations as a tuple of int)."""
    unknown = sorted(set(options) - set(HYPERPARAMETERS))
    if unknown:
        raise InputError(f"ResidualBind takes no hyper-parameter(s) {', '.join(unknown)}; it takes "
                         f"{', '.join(HYPERPARAMETERS)}.")
    out = {**HYPERPARAMETERS, **options}
    for name in ("filters", "dense_units", "num_classes", "pool_size"):
        out[name] = check_scalar(out[name], name, int, min_val=1)
    out["in_channels"] = check_scalar(out["in_channels"], "in_channels", int, min_val=4)
    for name in ("kernel_size", "residual_kernel_size"):
        out[name] = check_scalar(out[name], name, int, min_val=1)
        if out[name] % 2 == 0:
            raise InputError(f"{name} == {out[name]}, must be odd ('same' padding of an even kernel is one-sided).")
    out["input_length"] = check_scalar(out["input_length"], "input_length", int, min_val=out["pool_size"])
    for name in ("conv_dropout", "pool_dropout", "dense_dropout"):
        out[name] = float(check_scalar(out[name], name, (int, float), min_val=0, max_val=1))
    dilations = out["dilations"]
    if isinstance(dilations, (str, bytes)) or not isinstance(dilations, Sequence) or not dilations:
        raise InputError(f"dilations == {dilations!r}, must be a non-empty sequence of int such as (1, 2, 4, 8).")
    out["dilations"] = tuple(check_scalar(d, f"dilations[{i}]", int, min_val=1) for i, d in enumerate(dilations))
    return out


class ResidualBind(nn.Module):
    """ResidualBind as coded at the reference's HEAD, in PyTorch (see the module docstring for the layers).

    Parameters
    ----------
    input_length : int
        Sequence length L in bp (41 for RNAcompete 2013, 39 for RNAcompete 2009). The dense
        layer fixes P = floor(L / pool_size), so lengths pool P ... pool P + pool - 1 run, but
        give different outputs. Default is 41.
    in_channels : int
        4 (one-hot A, C, G, U) plus S structure profiles: 6 ("pu": paired, unpaired) or 9
        ("struct": paired, hairpin, internal, multi, external loop). Default is 4.
    num_classes : int
        Outputs T (linear; the reference trains one output per RNAcompete experiment, MSE).
        Default is 1.
    dilations : sequence of int
        Dilation of each 3-wide convolution of the residual block. Default is (1, 2, 4, 8),
        the reference code at HEAD, with which the published results were made; the paper's
        text (Methods, "ResidualBind") describes 1, 2, 4, an earlier version's block.
    filters : int
        Channels of every convolution. Default is 96.
    kernel_size : int
        Width of the first convolution in bp, odd. Default is 11.
    residual_kernel_size : int
        Width of the residual block's convolutions, odd. Default is 3.
    pool_size : int
        Average-pool window and stride in bp. Default is 10.
    dense_units : int
        Width of the hidden dense layer. Default is 256.
    conv_dropout, pool_dropout, dense_dropout : float
        Dropout after the first convolution and before each later residual convolution; after
        the pool; after the hidden dense layer. Default is 0.1, 0.2, 0.5.

    Raises
    ------
    InputError, InputTypeError
        For hyper-parameters of the wrong value or type (unknown names, even kernels,
        ``input_length < pool_size``, empty ``dilations``).

    Notes
    -----
    Input: one-hot (N, 4, L) float32, A, C, G, U (a T one-hot is the same array), plus, when
    ``in_channels > 4``, ``profiles`` (N, S, L) appended as channels 4 ... 3 + S. Output: (N, T)
    float32. Weights start as Keras' defaults (Glorot uniform kernels, zero biases, BatchNorm
    gamma 1, beta 0); see :meth:`reset_parameters`. ``options`` holds the hyper-parameters (the
    arguments of :func:`build`). Source: Koo, Majdandzic, Ploenzke, Anand & Paul (2021) PLoS
    Comput. Biol. 17:e1008925; p-koo/residualbind ``residualbind.py`` (HEAD bf5cd08).
    """

    def __init__(self, input_length: int = 41, in_channels: int = 4, num_classes: int = 1, *,
                 dilations: Sequence[int] = (1, 2, 4, 8), filters: int = 96, kernel_size: int = 11,
                 residual_kernel_size: int = 3, pool_size: int = 10, dense_units: int = 256,
                 conv_dropout: float = 0.1, pool_dropout: float = 0.2, dense_dropout: float = 0.5) -> None:
        super().__init__()
        o = _check({"input_length": input_length, "in_channels": in_channels, "num_classes": num_classes,
                    "dilations": dilations, "filters": filters, "kernel_size": kernel_size,
                    "residual_kernel_size": residual_kernel_size, "pool_size": pool_size,
                    "dense_units": dense_units, "conv_dropout": conv_dropout, "pool_dropout": pool_dropout,
                    "dense_dropout": dense_dropout})
        self.options = o
        self.conv = _conv(o["in_channels"], o["filters"], o["kernel_size"])
        self.norm = nn.BatchNorm1d(o["filters"], **_BN)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(o["conv_dropout"])
        self.residual = DilatedResidualBlock(o["filters"], o["residual_kernel_size"], o["dilations"],
                                             o["conv_dropout"])
        self.pool = nn.AvgPool1d(o["pool_size"])
        self.pool_dropout = nn.Dropout(o["pool_dropout"])
        self.flatten = ChannelsLastFlatten()
        pooled = pooled_length(o["input_length"], o["pool_size"])
        self.dense = nn.Linear(pooled * o["filters"], o["dense_units"], bias=False)
        self.dense_norm = nn.BatchNorm1d(o["dense_units"], **_BN)
        self.dense_act = nn.ReLU()
        self.dense_dropout = nn.Dropout(o["dense_dropout"])
        self.output = nn.Linear(o["dense_units"], o["num_classes"])
        #: Set by the loader: file name, md5 and where the hyper-parameters came from.
        self.checkpoint_info: dict | None = None
        self.reset_parameters()

    @property
    def input_length(self) -> int:
        """Input length in bp."""
        return self.options["input_length"]

    @property
    def num_profiles(self) -> int:
        """Structure-profile channels S = in_channels - 4 expected as ``profiles``."""
        return self.options["in_channels"] - 4

    def reset_parameters(self) -> None:
        """Keras' initialisation: Glorot-uniform kernels, zero biases, BatchNorm gamma 1, beta 0, mean 0, var 1.

        PyTorch's ``xavier_uniform_`` on a (out, in, k) weight uses fan_in = in k and
        fan_out = out k, as Keras' ``glorot_uniform`` on the (k, in, out) kernel.
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm1d):
                module.reset_parameters()

    def features(self, x: torch.Tensor, profiles: torch.Tensor | None = None) -> torch.Tensor:
        """Output of the residual block, (N, filters, L): the last layer that keeps positions."""
        if profiles is not None:
            if self.num_profiles == 0:
                raise ValueError("this ResidualBind takes 4 one-hot channels and no structure profiles; "
                                 "call it without profiles.")
            x = torch.cat([x, profiles.to(x.dtype)], dim=1)
        elif self.num_profiles:
            raise ValueError(f"this ResidualBind takes {self.num_profiles} structure-profile channel(s) after the "
                             f"one-hot; pass profiles of shape (N, {self.num_profiles}, L).")
        return self.residual(self.dropout(self.act(self.norm(self.conv(x)))))

    def forward(self, x: torch.Tensor, profiles: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs (N, T) for one-hot x (N, 4, L) and, when ``in_channels > 4``, profiles (N, S, L)."""
        h = self.flatten(self.pool_dropout(self.pool(self.features(x, profiles))))
        return self.output(self.dense_dropout(self.dense_act(self.dense_norm(self.dense(h)))))


def build(**hyperparameters: Any) -> ResidualBind:
    """A fresh ResidualBind (training mode, Keras initialisation) from keyword hyper-parameters.

    Parameters
    ----------
    **hyperparameters
        Any of :data:`HYPERPARAMETERS` (the arguments of :class:`ResidualBind`); the others
        take the reference's defaults. ``module.options`` gives them all back, ready for JSON.

    Returns
    -------
    ResidualBind

    Raises
    ------
    InputError, InputTypeError
        For unknown names or invalid values.
    """
    return ResidualBind(**_check(hyperparameters))
