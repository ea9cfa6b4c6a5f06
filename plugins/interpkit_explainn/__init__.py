"""Bundled plugin: the ExplaiNN architecture (Novakovsky et al. 2023).

Registers the architecture ``explainn``: ``interpkit.load("model_epoch_best_4.pth",
arch="explainn")`` reads a checkpoint of the reference code (wassermanlab/ExplaiNN), infers
the number of units, filter size, input length, outputs and per-unit layers from its tensor
shapes, loads it strictly (weights only) into a module that runs the units' convolutions as one
dense convolution, and returns it as a ``torch`` backend model (input (N, 4, L), layout NCL).
``interpkit train explainn`` trains one (:mod:`interpkit_explainn.train`).
"""

from __future__ import annotations

from interpkit import ModelSpec, hookimpl
from interpkit_explainn.train import TRAIN_PARAMS

__all__ = ["register_models"]


@hookimpl
def register_models() -> list[ModelSpec]:
    """The ExplaiNN architecture."""
    return [
        ModelSpec(
            name="explainn",
            backend="torch",
            load="interpkit_explainn.model:load",
            summary="ExplaiNN: independent one-filter CNN units and a linear output layer; hyper-parameters "
                    "inferred from the checkpoint (wassermanlab/ExplaiNN state_dicts).",
            source="Novakovsky et al. (2023) Genome Biol. 24:154; state_dict layout of wassermanlab/ExplaiNN "
                   "explainn/models/networks.py.",
            # The loader passes these itself, with the length it infers from the checkpoint.
            backend_options={"layout": "NCL"},
            train="interpkit_explainn.train:train",
            train_params=TRAIN_PARAMS,
        ),
        ModelSpec(
            name="explainn-transfer",
            backend="torch",
            load="interpkit_explainn.transfer:load",
            summary="ExplaiNN whose units are pretrained models (transfer learning), as written by "
                    "interpkit train explainn --pretrained; needs the model.json beside the checkpoint.",
            source="Novakovsky et al. (2023) Genome Biol. 24:154, Fig. 5 (DanQ units; NAMLayer/SingleLayer heads).",
        ),
    ]
