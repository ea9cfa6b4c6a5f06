"""Bundled plugin: the PyTorch backend.

Registers backend ``torch``: ``interpkit.load(module)`` for an ``nn.Module`` object (found
by its class's MRO, without importing torch), ``interpkit.load("model.pt")`` for a
TorchScript file or, with ``trust=True``, a pickled module; architecture plugins hand it the
module they built from a state_dict (``interpkit.load(path, arch="basset")``). The loader is
:func:`interpkit_torch.load.load`; the model class :class:`interpkit_torch.model.TorchModel`.
torch is imported only when a model is loaded.
"""

from __future__ import annotations

from interpkit import BackendSpec, Capability, hookimpl

__all__ = ["register_backends"]


def _claims(source: object) -> bool:
    """An nn.Module (any subclass, TorchScript included), but not a Keras 3 layer on the torch backend."""
    mro = type(source).__mro__
    return any(c.__module__.startswith("torch.nn") for c in mro) and not any(
        c.__module__.startswith("keras") for c in mro)


@hookimpl
def register_backends() -> list[BackendSpec]:
    """The torch backend."""
    return [
        BackendSpec(
            name="torch",
            load="interpkit_torch.load:load",
            summary="PyTorch nn.Module objects, TorchScript files, and pickled modules with trust=True; "
                    "state_dicts through arch=.",
            suffixes=(".pt", ".pth", ".ts", ".pkl", ".ckpt"),
            claims=_claims,
            requires=("torch",),
            extra="torch",
            capabilities=frozenset(Capability),
        )
    ]
