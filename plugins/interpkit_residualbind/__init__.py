"""Bundled plugin: the ResidualBind architecture (Koo et al. 2021) in PyTorch.

Registers the architecture ``residualbind``: ``interpkit.load("model.pth", arch="residualbind")``
reads a state_dict (weights only), takes the hyper-parameters from the ``model.json`` beside it
(written by ``interpkit train``) and from its tensor shapes, loads it strictly into
:class:`~interpkit_residualbind.architecture.ResidualBind` and returns it as a ``torch`` backend
model: input one-hot RNA (N, 4, L), alphabet A, C, G, U, layout NCL. :func:`build` makes a
fresh module from hyper-parameters; ``interpkit train residualbind`` trains one
(:mod:`interpkit_residualbind.train`).
"""

from __future__ import annotations

from typing import Any

from interpkit import ModelSpec, hookimpl
from interpkit_residualbind.train import TRAIN_PARAMS

__all__ = ["build", "register_models"]


def build(**hyperparameters: Any) -> Any:
    """A fresh ResidualBind from keyword hyper-parameters (see :func:`interpkit_residualbind.architecture.build`)."""
    from interpkit_residualbind.architecture import build as build_module

    return build_module(**hyperparameters)


@hookimpl
def register_models() -> list[ModelSpec]:
    """The ResidualBind architecture."""
    return [
        ModelSpec(
            name="residualbind",
            backend="torch",
            load="interpkit_residualbind.model:load",
            summary="ResidualBind: RNA-binding CNN with a dilated residual block (RNAcompete, 41 nt, A/C/G/U "
                    "one-hot, optional structure-profile channels); hyper-parameters from model.json or the "
                    "checkpoint's shapes.",
            source="Koo, Majdandzic, Ploenzke, Anand & Paul (2021) PLoS Comput. Biol. 17:e1008925; architecture "
                   "of p-koo/residualbind residualbind.py (HEAD bf5cd08).",
            # The loader passes these itself, with the length it infers (alphabet: the record's if any).
            backend_options={"layout": "NCL", "alphabet": "ACGU"},
            train="interpkit_residualbind.train:train",
            train_params=TRAIN_PARAMS,
        )
    ]
