"""Basset (Kelley, Snoek & Rinn 2016) in the exact module layout of Kipoi's PyTorch conversion.

Kipoi's ``Basset/pretrained_model_reloaded_th.py`` (kipoi/models, MIT) is an ``nn.Sequential``
written by a Torch7 converter; its state_dict keys are the Sequential indices below. Kipoi's
``Lambda`` modules (which hold Python lambdas) are replaced by standard modules with no
parameters, so every key and shape is unchanged:

=====  ==============================  ====================================================
index  module                          state_dict keys, shapes
=====  ==============================  ====================================================
0      Conv2d(4, 300, (19, 1))         0.weight (300, 4, 19, 1), 0.bias (300,)
1      BatchNorm2d(300)                1.weight/bias/running_mean/running_var (300,),
                                       1.num_batches_tracked ()
2, 3   ReLU, MaxPool2d((3, 1))
4-7    Conv2d(300, 200, (11, 1)), BatchNorm2d(200), ReLU, MaxPool2d((4, 1))
8-11   Conv2d(200, 200, (7, 1)), BatchNorm2d(200), ReLU, MaxPool2d((4, 1))
12     Flatten (Kipoi: Lambda view)    (N, 200, 10, 1) -> (N, 2000)
13     Sequential(Identity, Linear)    13.1.weight (1000, 2000), 13.1.bias (1000,)
14-16  BatchNorm1d(1000), ReLU, Dropout(0.3)
17     Sequential(Identity, Linear)    17.1.weight (1000, 1000)
18-20  BatchNorm1d(1000), ReLU, Dropout(0.3)
21     Sequential(Identity, Linear)    21.1.weight (164, 1000)
22     Sigmoid (Identity with logits)
=====  ==============================  ====================================================

Index 0 of each ``Sequential(Identity, Linear)`` is Kipoi's ``Lambda`` that turns a 1-D input
into a row; after the Flatten at 12 the input is always 2-D, so it is the identity.
Input: (N, 4, 600, 1) one-hot, channels A, C, G, T, the dummy axis last.
"""

from __future__ import annotations

from torch import nn

from interpkit_basset import target_names

__all__ = ["N_TARGETS", "Basset"]

#: Number of outputs of the published model (DNase-seq accessibility in 164 cell types).
N_TARGETS = 164


def _linear(n_in: int, n_out: int) -> nn.Sequential:
    """Kipoi's converted Linear: Sequential(Lambda, Linear), keys ``<i>.1.weight``/``<i>.1.bias``."""
    return nn.Sequential(nn.Identity(), nn.Linear(n_in, n_out))


class Basset(nn.Sequential):
    """Basset with Kipoi's state_dict layout.

    Parameters
    ----------
    logits : bool
        Replace the final Sigmoid (index 22) by the identity, so the model returns logits,
        the usual quantity to explain. Default is False (probabilities, as Kipoi).

    Notes
    -----
    Input (N, 4, 600, 1) float32, output (N, 164) float32. Hyper-parameters from Basset's
    ``data/models/pretrained_params.txt``: conv 300x19, 200x11, 200x7; pools 3, 4, 4; two
    hidden layers of 1000 with dropout 0.3. Source: Kelley, Snoek & Rinn (2016) Genome Res.
    26:990-999; layout of kipoi/models ``Basset/pretrained_model_reloaded_th.py``.
    """

    def __init__(self, *, logits: bool = False) -> None:
        super().__init__(
            nn.Conv2d(4, 300, (19, 1)), nn.BatchNorm2d(300), nn.ReLU(), nn.MaxPool2d((3, 1), (3, 1)),
            nn.Conv2d(300, 200, (11, 1)), nn.BatchNorm2d(200), nn.ReLU(), nn.MaxPool2d((4, 1), (4, 1)),
            nn.Conv2d(200, 200, (7, 1)), nn.BatchNorm2d(200), nn.ReLU(), nn.MaxPool2d((4, 1), (4, 1)),
            nn.Flatten(),
            _linear(2000, 1000), nn.BatchNorm1d(1000), nn.ReLU(), nn.Dropout(0.3),
            _linear(1000, 1000), nn.BatchNorm1d(1000), nn.ReLU(), nn.Dropout(0.3),
            _linear(1000, N_TARGETS), nn.Identity() if logits else nn.Sigmoid(),
        )
        #: The 164 target names (read by the torch backend unless output_names=/labels= are given).
        self.output_names: tuple[str, ...] = target_names()
        #: Set by the loader: file name, md5 and whether it is Kipoi's published file.
        self.checkpoint_info: dict | None = None
