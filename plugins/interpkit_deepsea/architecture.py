"""DeepSEA (Zhou & Troyanskaya 2015) in the exact module layout of Kipoi's PyTorch conversion.

Kipoi's ``DeepSEA/model_architecture.py`` (kipoi/models) wraps the converted Torch7 network
``deepsea_cpu`` in two ways, and the state_dict keys carry the wrapper's index as a prefix:

* ``predict_model`` = Sequential(ReCodeAlphabet, ConcatenateRC, deepsea_cpu, AverageRC):
  keys ``2.<i>...`` (file ``deepsea_predict.pth``); output = mean of the forward and
  reverse-complement predictions, as on the DeepSEA website.
* ``veff_model`` = Sequential(ReCodeAlphabet, deepsea_cpu): keys ``1.<i>...`` (file
  ``deepsea_variant_effects.pth``); one strand.

``deepsea_cpu`` (input (N, 4, 1, 1000), channels A, G, C, T):

=====  ==============================  ============================================
index  module                          keys (without the wrapper prefix), shapes
=====  ==============================  ============================================
0      Conv2d(4, 320, (1, 8))          0.weight (320, 4, 1, 8), 0.bias (320,)
1-3    Threshold(0, 1e-6), MaxPool2d((1, 4)), Dropout(0.2)
4      Conv2d(320, 480, (1, 8))        4.weight (480, 320, 1, 8), 4.bias (480,)
5-7    Threshold(0, 1e-6), MaxPool2d((1, 4)), Dropout(0.2)
8      Conv2d(480, 960, (1, 8))        8.weight (960, 480, 1, 8), 8.bias (960,)
9-10   Threshold(0, 1e-6), Dropout(0.5)
11     Flatten (Kipoi: Lambda view)    (N, 960, 1, 53) -> (N, 50880)
12     Sequential(Identity, Linear)    12.1.weight (925, 50880), 12.1.bias (925,)
13     Threshold(0, 1e-6)
14     Sequential(Identity, Linear)    14.1.weight (919, 925), 14.1.bias (919,)
15     Sigmoid (Identity with logits)
=====  ==============================  ============================================

Kipoi's ``Lambda`` modules are replaced by standard parameter-free modules (index 0 of each
``Sequential(Identity, Linear)`` is Kipoi's Lambda that turns a 1-D input into a row; after the
Flatten its input is always 2-D), so keys and shapes are unchanged and nothing holds a lambda.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CORE_PREFIX", "N_TARGETS", "AverageRC", "ConcatenateRC", "DeepSEA", "DeepSEAVariantEffects",
           "ReCodeAlphabet", "deepsea_cpu"]

#: Number of outputs (chromatin features).
N_TARGETS = 919


class ReCodeAlphabet(nn.Module):
    """Reorder the one-hot channels from A, C, G, T to DeepSEA's A, G, C, T: (N, 4, ...) -> (N, 4, ...)."""

    interpkit_kind = "identity"  # positions unchanged: layer tables keep their geometry

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, [0, 2, 1, 3]]


class ConcatenateRC(nn.Module):
    """Append the reverse complement along the batch: (N, 4, 1, L) -> (2N, 4, 1, L).

    In the A, G, C, T order the complement is the reversed channel order, so the reverse
    complement flips channels (axis 1) and positions (axis 3).
    """

    interpkit_kind = "unknown"  # half the batch is reversed: positions above it have no single window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x.flip(1, 3)], dim=0)


class AverageRC(nn.Module):
    """Average the two halves of the batch (forward, reverse complement): (2N, T) -> (N, T)."""

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        half = y.shape[0] // 2
        return y[:half] / 2 + y[half:] / 2


def _linear(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Identity(), nn.Linear(n_in, n_out))


def deepsea_cpu(*, logits: bool = False) -> nn.Sequential:
    """The converted DeepSEA network (table above); AGCT input (N, 4, 1, 1000) -> (N, 919)."""
    return nn.Sequential(
        nn.Conv2d(4, 320, (1, 8)), nn.Threshold(0, 1e-6), nn.MaxPool2d((1, 4), (1, 4)), nn.Dropout(0.2),
        nn.Conv2d(320, 480, (1, 8)), nn.Threshold(0, 1e-6), nn.MaxPool2d((1, 4), (1, 4)), nn.Dropout(0.2),
        nn.Conv2d(480, 960, (1, 8)), nn.Threshold(0, 1e-6), nn.Dropout(0.5),
        nn.Flatten(),
        _linear(50880, 925), nn.Threshold(0, 1e-6),
        _linear(925, N_TARGETS), nn.Identity() if logits else nn.Sigmoid(),
    )


class DeepSEA(nn.Sequential):
    """Kipoi's DeepSEA/predict: strand-averaged predictions, keys ``2.<i>...``.

    Parameters
    ----------
    logits : bool
        Drop the final Sigmoid; the two strands' logits are then averaged. Default is False
        (probabilities averaged, as Kipoi and the DeepSEA website).

    Notes
    -----
    Input (N, 4, 1, 1000) float32 one-hot in A, C, G, T order (recoded inside), output
    (N, 919) float32. The reverse-complement copies are made inside the batch, so methods
    that split a batch into inputs and references (DeepLIFT implementations that ``chunk(2)``)
    must use :class:`DeepSEAVariantEffects` and average strands themselves.
    Source: Zhou & Troyanskaya (2015) Nat. Methods 12:931-934; layout of kipoi/models
    ``DeepSEA/model_architecture.py`` (``predict_model``).
    """

    #: Index of ``deepsea_cpu`` in this Sequential, the prefix of its state_dict keys.
    core_index = 2

    def __init__(self, *, logits: bool = False) -> None:
        super().__init__(ReCodeAlphabet(), ConcatenateRC(), deepsea_cpu(logits=logits), AverageRC())
        #: Set by the loader: file name, md5 and whether it is Kipoi's published file.
        self.checkpoint_info: dict | None = None


class DeepSEAVariantEffects(nn.Sequential):
    """Kipoi's DeepSEA/variantEffects: one strand, keys ``1.<i>...``; same parameters as :class:`DeepSEA`.

    Source: kipoi/models ``DeepSEA/model_architecture.py`` (``veff_model``).
    """

    core_index = 1

    def __init__(self, *, logits: bool = False) -> None:
        super().__init__(ReCodeAlphabet(), deepsea_cpu(logits=logits))
        self.checkpoint_info: dict | None = None


#: Key prefix of ``deepsea_cpu`` in each published layout: predict, variant effects, bare network.
CORE_PREFIX = {"deepsea": "2.", "deepsea-veff": "1.", "deepsea_cpu": ""}
