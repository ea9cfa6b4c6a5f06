"""Running a module while watching every probed module call (forward hooks, or a TorchScript nn.Sequential).

TorchScript modules do not support hooks; a TorchScript ``nn.Sequential`` is run child by
child instead (its forward is exactly that), so it can be probed too. Any other TorchScript
module can only be run as a whole.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from interpkit_torch.layers import probe_modules, torch_class

__all__ = ["Stop", "first_tensor", "is_probeable", "run_probed"]

#: before(name, module, inputs) and after(name, module, output) callbacks.
Before = Callable[[str, nn.Module, tuple], None]
After = Callable[[str, nn.Module, Any], None]


class Stop(Exception):
    """Raised by a callback to end the forward pass once the wanted layers are seen."""


def first_tensor(value: Any) -> torch.Tensor | None:
    """The tensor itself, or the first tensor of a tuple/list output (LSTM, MultiheadAttention)."""
    while isinstance(value, (tuple, list)) and value:
        value = value[0]
    return value if isinstance(value, torch.Tensor) else None


def _is_script(module: nn.Module) -> bool:
    return isinstance(module, torch.jit.ScriptModule)


def is_probeable(module: nn.Module) -> bool:
    """Whether the module's calls can be watched: any Python module, or a TorchScript nn.Sequential."""
    return not _is_script(module) or torch_class(module) == "Sequential"


class _Names:
    """Row names of module calls: the module's name for its first call, ``name#k`` for its k-th."""

    def __init__(self, modules: list[tuple[str, nn.Module]]) -> None:
        self.names = {id(m): n for n, m in modules}
        self.counts: Counter[str] = Counter()
        self.open: defaultdict[int, list[str]] = defaultdict(list)

    def enter(self, module: nn.Module) -> str:
        base = self.names[id(module)]
        self.counts[base] += 1
        name = base if self.counts[base] == 1 else f"{base}#{self.counts[base]}"
        self.open[id(module)].append(name)
        return name

    def leave(self, module: nn.Module) -> str:
        return self.open[id(module)].pop()


def run_probed(module: nn.Module, x: torch.Tensor, kwargs: dict[str, Any], *, before: Before | None = None,
               after: After | None = None) -> Any:
    """Run ``module(x, **kwargs)``, reporting each probed module call in execution order.

    Parameters
    ----------
    module : nn.Module
        A Python module, or a TorchScript nn.Sequential (see :func:`is_probeable`).
    x : Tensor
        Input in the model's layout.
    kwargs : dict
        Extra inputs passed by keyword.
    before, after : callable or None
        ``before(name, module, inputs)`` just before a probed module runs (inputs as a
        tuple), ``after(name, module, output)`` just after; either may raise :class:`Stop`.
        ``name`` is the layer-table name (``name#k`` for the k-th call of one module).

    Returns
    -------
    The module's output.

    Raises
    ------
    Stop
        When a callback raises it; hooks are removed in every case.
    """
    script = _is_script(module)
    modules = probe_modules(module, script_sequential=script)
    names = _Names(modules)

    def pre(mod: nn.Module, args: tuple) -> None:
        name = names.enter(mod)
        if before is not None:
            before(name, mod, args)

    def post(mod: nn.Module, args: tuple, output: Any) -> None:
        name = names.leave(mod)
        if after is not None:
            after(name, mod, output)

    if script:
        return _run_sequential(module, x, {id(m) for _, m in modules}, pre, post)
    handles = []
    try:
        for _, mod in modules:
            handles.append(mod.register_forward_pre_hook(pre))
            handles.append(mod.register_forward_hook(post))
        return module(x, **kwargs)
    finally:
        for handle in handles:
            handle.remove()


def _run_sequential(module: nn.Module, x: Any, probed: set[int], pre: Callable, post: Callable) -> Any:
    """A TorchScript nn.Sequential run child by child, calling the hooks around each probed module."""
    if id(module) not in probed:
        for child in module._modules.values():  # every position, as nn.Sequential.forward does
            x = _run_sequential(child, x, probed, pre, post)
        return x
    pre(module, (x,))
    y = module(x)
    post(module, (x,), y)
    return y
