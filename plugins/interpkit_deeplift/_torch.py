"""DeepLIFT multipliers on a PyTorch module through Captum, with what Captum misses on genomics models.

Captum's :class:`captum.attr.DeepLift` (rescale rule) attaches its rules to module *types*
listed in ``captum.attr._core.deep_lift.SUPPORTED_NON_LINEAR``; anything else is treated as
linear without a word. For the duration of one call (restored in ``finally``) this module:

* registers the rescale rule for the element-wise activations Captum lacks (ReLU6, GELU, SiLU,
  SELU, CELU, Mish, PReLU, RReLU, Softshrink, LogSigmoid, Hardtanh, ``nn.Threshold`` of Kipoi
  DeepSEA, ...) and for any parameter-free module whose forward is one element-wise function of
  its input (ExplaiNN's ``Exp``, any module calling ``torch.exp``), found in a dry run;
* replaces Captum's max-pool rule by one that accumulates over overlapping windows
  (``max_unpool`` assigns, so overlapping windows lose value; tangermeme issue #49);
* separates adjacent hooked modules (an activation feeding straight into a max-pool) by cloning
  each hooked module's input in a forward pre-hook: Captum keeps its rules in tensor hooks, and
  two modules hooked on one tensor read the gradient in the wrong order, which drops the
  max-pool's rule (Captum issue #1104);
* switches ``inplace`` activations to out-of-place.

The dry run also refuses what DeepLIFT cannot do honestly: a hooked module called more than once
per forward pass (Captum keeps one input per module), and a module that changes the batch size
(in-model strand averaging, Kipoi DeepSEA/predict), and warns about nonlinear functions called
outside a module with a rule (``F.relu`` in ``forward``), which are treated as linear.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import DeepLift
from captum.attr._core import deep_lift as captum_deep_lift
from torch import nn
from torch.overrides import TorchFunctionMode

from interpkit.errors import CapabilityError, InputError

__all__ = ["SEPARATE_HOOKED_MODULES", "Inspection", "TorchDeepLift", "rule_table"]

#: Clone each hooked module's input (the fix for Captum issue #1104); tests turn it off to show the issue.
SEPARATE_HOOKED_MODULES = True
#: Below this input difference a rule falls back to the plain gradient (float32 secants are noise there);
#: tangermeme's threshold (Captum's default is 1e-10).
EPS = 1e-6

#: Element-wise activations with one input and one output: the rescale rule applies as is.
_ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.LeakyReLU, nn.PReLU,
    nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softshrink, nn.Hardshrink, nn.Tanhshrink, nn.LogSigmoid, nn.Softsign,
    nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Threshold,
)
#: Nonlinear torch functions (``__name__`` without a trailing "_"): element-wise ones first.
_ELEMENTWISE_FUNCS = frozenset({
    "relu", "relu6", "rrelu", "elu", "selu", "celu", "gelu", "silu", "mish", "leaky_relu", "prelu", "sigmoid",
    "tanh", "softplus", "softshrink", "hardshrink", "tanhshrink", "logsigmoid", "softsign", "hardtanh",
    "hardsigmoid", "hardswish", "threshold", "exp", "exp2", "expm1", "log", "log1p", "sqrt", "rsqrt", "square",
    "abs", "clamp", "clip", "sin", "cos", "erf",
})
_OTHER_NONLINEAR_FUNCS = frozenset({
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
    "max_pool3d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d", "softmax", "log_softmax", "max",
    "amax", "min", "amin", "logsumexp", "glu", "topk", "pow", "layer_norm", "group_norm", "rms_norm", "normalize",
    "scaled_dot_product_attention", "multi_head_attention_forward", "bmm", "einsum", "lstm", "gru", "rnn_tanh",
    "rnn_relu",
})


def _rescale(module: nn.Module, inputs: torch.Tensor, outputs: torch.Tensor, grad_input: Any,
             grad_output: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Captum's rescale rule for element-wise modules, with the secant computed once per pair (no copies).

    m = grad_output * (f(x) - f(r)) / (x - r), and the plain gradient where |x - r| < eps.
    """
    grad_in = grad_input[0] if isinstance(grad_input, tuple) else grad_input
    x, ref = inputs.chunk(2)
    y, y_ref = outputs.chunk(2)
    delta_in = x - ref
    secant = (y - y_ref) / delta_in
    halves = (2, *delta_in.shape)
    new = torch.where(delta_in.abs() < eps, grad_in.reshape(halves), grad_output.reshape(halves) * secant)
    return new.reshape(grad_in.shape)


def _maxpool_rule(pool: Callable) -> Callable:
    """Captum's max-pool rescale rule, accumulating over overlapping windows (scatter-add, not max_unpool)."""

    def rule(module: nn.Module, inputs: torch.Tensor, outputs: torch.Tensor, grad_input: Any,
             grad_output: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        grad_in = grad_input[0] if isinstance(grad_input, tuple) else grad_input
        with torch.no_grad():
            x, ref = inputs.chunk(2)
            y, y_ref = outputs.chunk(2)
            delta_in = x - ref
            y_max = torch.max(y, y_ref)
            delta_out = torch.stack([y_max - y_ref, y - y_max]).reshape(outputs.shape)
            _, indices = pool(module.input, module.kernel_size, module.stride, module.padding, module.dilation,
                              module.ceil_mode, True)
            flat = torch.zeros_like(inputs).flatten(2)
            flat.scatter_add_(2, indices.flatten(2), (grad_output * delta_out).flatten(2))
            a, b = flat.view_as(inputs).chunk(2)
            moved = a + b
        halves = (2, *delta_in.shape)
        return torch.where(delta_in.abs() < eps, grad_in.reshape(halves), moved / delta_in).reshape(grad_in.shape)

    return rule


def rule_table(extra_elementwise: tuple[type, ...] = ()) -> dict[type, Callable]:
    """The rules one call uses: Captum's table, more element-wise activations, and our max-pool rule."""
    table = dict(captum_deep_lift.SUPPORTED_NON_LINEAR)
    for kind, rule in table.items():
        if rule is captum_deep_lift.nonlinear:
            table[kind] = _rescale
    for kind in (*_ELEMENTWISE_MODULES, *extra_elementwise):
        table[kind] = _rescale
    table[nn.MaxPool1d] = _maxpool_rule(F.max_pool1d)
    table[nn.MaxPool2d] = _maxpool_rule(F.max_pool2d)
    table[nn.MaxPool3d] = _maxpool_rule(F.max_pool3d)
    return table


@contextlib.contextmanager
def _captum_rules(table: dict[type, Callable]) -> Iterator[None]:
    """Captum's module-level rule table replaced by ``table`` for the block; restored even on error."""
    registry = captum_deep_lift.SUPPORTED_NON_LINEAR
    saved = dict(registry)
    try:
        registry.clear()
        registry.update(table)
        yield
    finally:
        registry.clear()
        registry.update(saved)


def _first_tensor(value: Any) -> torch.Tensor | None:
    while isinstance(value, (tuple, list)) and value:
        value = value[0]
    return value if isinstance(value, torch.Tensor) else None


@dataclass
class Inspection:
    """What one dry run found."""

    elementwise_types: list[type] = field(default_factory=list)  # parameter-free modules to give the rescale rule
    functional: list[str] = field(default_factory=list)  # "name (Class) calls F" descriptions
    reused: list[str] = field(default_factory=list)
    batch_changers: list[str] = field(default_factory=list)
    bytes_per_row: int = 0


class _Watch(TorchFunctionMode):
    """Records nonlinear torch functions called during a forward pass, with the innermost module calling them."""

    def __init__(self, stack: list[nn.Module]) -> None:
        super().__init__()
        self.stack = stack
        self.calls: list[tuple[nn.Module | None, str, Any, Any]] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        name = name[:-1] if name.endswith("_") and not name.startswith("_") else name
        if name in _ELEMENTWISE_FUNCS or name in _OTHER_NONLINEAR_FUNCS:
            first = args[0] if args else None
            if isinstance(first, torch.Tensor) and first.is_floating_point():
                self.calls.append((self.stack[-1] if self.stack else None, name, first, result))
        return result


def inspect_module(module: nn.Module, x: torch.Tensor, run: Callable[[torch.Tensor], Any]) -> Inspection:
    """One forward pass on ``x`` (3 rows) watching every module call; hooks removed in ``finally``."""
    names = {id(m): (n or "<model>") for n, m in module.named_modules(remove_duplicate=False)}
    table = rule_table()
    counts: dict[int, int] = {}
    io: dict[int, tuple[Any, Any]] = {}
    stack: list[nn.Module] = []
    found = Inspection()
    sizes: list[int] = []
    rows = x.shape[0]

    def before(m: nn.Module, args: tuple) -> None:
        stack.append(m)
        counts[id(m)] = counts.get(id(m), 0) + 1
        io[id(m)] = (_first_tensor(args), None)

    def after(m: nn.Module, args: tuple, output: Any) -> None:
        if stack and stack[-1] is m:
            stack.pop()
        inp, out = io[id(m)][0], _first_tensor(output)
        io[id(m)] = (inp, out)
        if out is not None:
            sizes.append(out.numel() * out.element_size())
        if (inp is not None and out is not None and inp.ndim >= 2 and inp.shape[0] == rows and out.ndim >= 1
                and out.shape[0] != rows):
            found.batch_changers.append(f"{names.get(id(m), '?')} ({type(m).__name__}: {rows} -> {out.shape[0]} rows)")

    handles = []
    watch = _Watch(stack)
    try:
        for m in module.modules():
            handles.append(m.register_forward_pre_hook(before))
            handles.append(m.register_forward_hook(after))
        with torch.no_grad(), watch:
            run(x)
    finally:
        for handle in handles:
            handle.remove()
    modules = {id(m): m for m in module.modules()}
    for key, n in counts.items():
        m = modules[key]
        if n > 1 and type(m) in table:
            found.reused.append(f"{names.get(key, '?')} ({type(m).__name__}, called {n} times)")
    seen_types: set[type] = set()
    for owner, func, arg, result in watch.calls:
        if owner is not None and type(owner) in table:
            continue
        if (owner is not None and func in _ELEMENTWISE_FUNCS and not any(True for _ in owner.parameters())
                and not any(True for _ in owner.children()) and io.get(id(owner), (None, None))[0] is arg
                and io[id(owner)][1] is result and counts.get(id(owner)) == 1):
            if type(owner) not in seen_types:  # the module is exactly one element-wise function of its input
                seen_types.add(type(owner))
                found.elementwise_types.append(type(owner))
            continue
        where = names.get(id(owner), "<outside any module>") if owner is not None else "<outside any module>"
        kind = type(owner).__name__ if owner is not None else "-"
        found.functional.append(f"{func} in {where} ({kind})")
    # an element-wise module type is registered only if every call of it qualified
    bad = {type(o) for o, f, *_ in watch.calls if o is not None and type(o) in seen_types and f not in _ELEMENTWISE_FUNCS}
    found.elementwise_types = [t for t in found.elementwise_types if t not in bad]
    found.functional = list(dict.fromkeys(found.functional))
    found.bytes_per_row = int(sum(sizes) / rows) + 1
    return found


class _Wrapped(nn.Module):
    """The user's module with its extra inputs and output reduction, returning (rows, T); records its output."""

    def __init__(self, module: nn.Module, reduce: Callable[[Any], torch.Tensor],
                 extra: Callable[[int], dict[str, torch.Tensor]]) -> None:
        super().__init__()
        self.inner = module
        self._reduce_fn = reduce
        self._extra_fn = extra
        self.last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._reduce_fn(self.inner(x, **self._extra_fn(len(x))))
        self.last = y.detach()
        return y


def _module_state(module: nn.Module) -> list[tuple[nn.Module, bool, int, int, int, dict]]:
    return [(m, m.training, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
             dict(m.__dict__)) for m in module.modules()]


class TorchDeepLift:
    """Per-(sequence, reference) DeepLIFT multipliers of a torch module, on its own input layout.

    Parameters
    ----------
    module : nn.Module
    device : torch.device
    dtype : torch.dtype
    reduce : callable
        Raw module output -> (rows, T) tensor.
    extra : callable
        rows -> dict of extra forward() keyword tensors.
    """

    def __init__(self, module: nn.Module, *, device: torch.device, dtype: torch.dtype,
                 reduce: Callable[[Any], torch.Tensor], extra: Callable[[int], dict[str, torch.Tensor]]) -> None:
        self.module = module
        self.device = device
        self.dtype = dtype
        self.reduce = reduce
        self.extra = extra

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=self.device, dtype=self.dtype)

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[list]:
        """Eval mode on the device; training flags, device and attributes restored on exit, even on error."""
        module = self.module
        state = _module_state(module)
        devices = {t.device for t in [*module.parameters(), *module.buffers()]}
        home = devices.pop() if len(devices) == 1 else None
        move = home is not None and home != self.device
        try:
            module.eval()
            if move:
                module.to(self.device)
            yield state
        finally:
            if move:
                module.to(home)
            for m, training, *_ in state:
                m.training = training
            _restore_attributes(state)

    def inspect(self, x_model: np.ndarray) -> Inspection:
        """Dry run in eval mode on 3 rows of ``x_model`` (repeated to 3 so batch changes are visible)."""
        rows = np.concatenate([x_model] * 3)[:3]
        with self._evaluating():
            return inspect_module(self.module, self._tensor(rows),
                                  lambda x: self.reduce(self.module(x, **self.extra(3))))

    @contextlib.contextmanager
    def session(self, inspection: Inspection) -> Iterator[Callable]:
        """Eval mode on the device, our rules and separating hooks in place; everything restored on exit.

        Yields ``attribute(x, r, target) -> (multipliers, y_x, y_r)`` for tensors in the model layout.
        """
        module = self.module
        table = rule_table(tuple(inspection.elementwise_types))
        handles = []
        inplace = [m for m in module.modules() if getattr(m, "inplace", False) is True and type(m) in table]
        wrapped = _Wrapped(module, self.reduce, self.extra)
        stack = contextlib.ExitStack()

        def separate(m: nn.Module, args: tuple) -> tuple:
            return (args[0].clone(), *args[1:]) if args and isinstance(args[0], torch.Tensor) else args

        try:
            stack.enter_context(self._evaluating())
            for m in inplace:
                m.inplace = False
            for m in module.modules():
                if SEPARATE_HOOKED_MODULES and type(m) in table:
                    handles.append(m.register_forward_pre_hook(separate))
            with _captum_rules(table), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"\s*Setting forward, backward hooks")
                explainer = DeepLift(wrapped, multiply_by_inputs=False, eps=EPS)

                def attribute(x: torch.Tensor, r: torch.Tensor, target: int) -> tuple[torch.Tensor, ...]:
                    m = explainer.attribute(x.detach().requires_grad_(), baselines=r, target=target)
                    y = wrapped.last
                    return m.detach(), y[: len(x), target], y[len(x):, target]

                yield attribute
        finally:
            for handle in handles:
                handle.remove()
            for m in inplace:
                m.inplace = True
            stack.close()


def _restore_attributes(state: list) -> None:
    """Drop attributes Captum may leave on a module after an error (input, output, ...), and stray hooks."""
    for m, _, n_fwd, n_pre, n_bwd, attrs in state:
        for key in list(m.__dict__):
            if key not in attrs:
                delattr(m, key)
        for hooks, n in ((m._forward_hooks, n_fwd), (m._forward_pre_hooks, n_pre), (m._backward_hooks, n_bwd)):
            for key in list(hooks)[n:]:
                del hooks[key]


def check_torch_module(module: Any, name: str) -> None:
    """Refuse TorchScript modules (no hooks)."""
    if isinstance(module, torch.jit.ScriptModule):
        raise CapabilityError(f"model {name} is a TorchScript module, which takes no hooks; DeepLIFT needs the "
                              "Python nn.Module (load the class and its state_dict with the torch backend).")
    if not isinstance(module, nn.Module):
        raise InputError(f"model {name}: expected an nn.Module, got {type(module).__name__}.")
