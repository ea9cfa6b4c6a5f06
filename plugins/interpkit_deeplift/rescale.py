"""DeepLIFT multipliers (rescale rule) of any torch function, by op interception and a shared forward pass.

The model's :class:`~interpkit.predictor.TorchFunction` runs under a
:class:`torch.overrides.TorchFunctionMode` that sees every torch call, wherever it is made
(an ``nn.ReLU`` module, ``F.relu`` in ``forward``, a module used twice, ``torch.exp`` in a
user's own activation class, the op-by-op translation of an ONNX graph or of Keras layers).
Each nonlinear call on an input-dependent tensor gets its DeepLIFT rule:

* element-wise functions (ReLU, exp, sigmoid, ``threshold`` of Kipoi DeepSEA, ...): the rescale
  rule, multiplier = (f(x) - f(r)) / (x - r), and the gradient at x where |x - r| < 1e-6;
* max-pools (any kernel, stride, padding, dilation; overlapping windows accumulate) and max
  reductions (``amax``, ``max(dim)``, adaptive max-pools): the change of each output routed to the
  positions that won the max for the sequence and for the reference, divided by the input change
  (gradient at x where the input does not change).

Nonlinear calls without a rule (softmax, normalisations, products of two input-dependent tensors,
recurrent layers) are listed, and the method warns: there DeepLIFT falls back to the gradient at
the reference.

Cost: a sequence is shared by all its references, so each batch runs the sequences once (no
gradient) and the references once with the rules attached, then one backward pass per target
over the references only; parameters need no gradient. Captum and tangermeme run every pair as
two rows forward and backward.

Rows: pass one holds b sequences, pass two their P = b x n references, sequence i's at rows
[i n, (i + 1) n). A model may stack copies of its batch along the batch axis (in-model strand
averaging: [x; reverse complement of x]); a tensor with c x b rows in pass one and c x P in
pass two is taken as c stacked blocks, and the summation-to-delta check shows if that is wrong.

Source: Shrikumar, Greenside & Kundaje (2017) ICML, rescale rule (sec. 3.5.1) and max-pool
handling (sec. 3.6); the max-pool routing and the fallbacks are those of Captum's DeepLift and
tangermeme's ``deep_lift_shap``, which this engine equals on the same references.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from interpkit.errors import CapabilityError

__all__ = ["EPS", "Multipliers", "PairedPass", "Record", "Recorder"]

#: Below this input difference the element-wise rule takes the gradient (float32 secants are noise there).
EPS = 1e-6

_ELEMENTWISE = frozenset({
    "relu", "relu6", "rrelu", "elu", "selu", "celu", "gelu", "silu", "mish", "leaky_relu", "prelu", "sigmoid",
    "tanh", "softplus", "softshrink", "hardshrink", "tanhshrink", "logsigmoid", "softsign", "hardtanh",
    "hardsigmoid", "hardswish", "threshold", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt",
    "rsqrt", "square", "abs", "clamp", "clip", "clamp_min", "clamp_max", "sin", "cos", "erf", "reciprocal",
    "pow", "__pow__", "maximum", "minimum", "fmax", "fmin",
})
_POOLS = {
    "max_pool1d": F.max_pool1d, "max_pool2d": F.max_pool2d, "max_pool3d": F.max_pool3d,
    "max_pool1d_with_indices": F.max_pool1d, "max_pool2d_with_indices": F.max_pool2d,
    "max_pool3d_with_indices": F.max_pool3d,
    "adaptive_max_pool1d": F.adaptive_max_pool1d, "adaptive_max_pool2d": F.adaptive_max_pool2d,
    "adaptive_max_pool1d_with_indices": F.adaptive_max_pool1d,
    "adaptive_max_pool2d_with_indices": F.adaptive_max_pool2d,
}
_REDUCTIONS = frozenset({"amax", "max"})
#: Nonlinear calls without a rule: reported, then differentiated as they are.
_UNRULED = frozenset({
    "softmax", "log_softmax", "min", "amin", "logsumexp", "glu", "topk", "layer_norm", "group_norm", "rms_norm",
    "normalize", "scaled_dot_product_attention", "multi_head_attention_forward", "lstm", "gru", "rnn_tanh",
    "rnn_relu", "sort", "cumprod", "prod", "norm", "__rpow__",
})
#: Products of two tensors: nonlinear when both depend on the input.
_PRODUCTS = frozenset({"mul", "__mul__", "__rmul__", "div", "__truediv__", "__rtruediv__", "matmul", "__matmul__",
                       "bmm", "einsum", "bilinear"})


def _name(func: Any) -> str:
    """Canonical op name: ``F._threshold`` -> threshold, ``Tensor.relu_`` -> relu."""
    name = getattr(func, "__name__", "")
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name.lstrip("_") if name.startswith("_") and not name.startswith("__") else name


def _dependent(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.requires_grad and value.is_floating_point()


def _kind(name: str, args: tuple, kwargs: dict) -> str | None:
    """"elementwise", "pool", "reduce" (a rule applies), "unruled", or None (linear or not input-dependent)."""
    dependent = sum(_dependent(a) for a in (*args, *kwargs.values()))
    if not dependent:
        return None
    if name in _PRODUCTS:
        return "unruled" if dependent >= 2 else None
    nonlinear = name in _ELEMENTWISE or name in _POOLS or name in _REDUCTIONS or name in _UNRULED
    if not nonlinear:
        return None
    if not _dependent(args[0]) or dependent >= 2 or name in _UNRULED:
        return "unruled"  # e.g. 2 ** x, maximum(x, y): no rule for the input in that place
    if name in _ELEMENTWISE:
        return "elementwise"
    if name in _POOLS:
        return "pool"
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if dim is None or isinstance(dim, torch.Tensor):
        return "unruled"
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return "unruled" if any(d % args[0].ndim == 0 for d in dims) else "reduce"


def _plain(kwargs: dict) -> dict:
    """The call's keyword arguments, out of place."""
    return {**kwargs, "inplace": False} if kwargs.get("inplace") else kwargs


def _indices_slot(name: str) -> int:
    """Position of ``return_indices`` in a max-pool call's arguments."""
    return 2 if "adaptive" in name else 6


def _wants_indices(name: str, args: tuple, kwargs: dict) -> bool:
    slot = _indices_slot(name)
    return "with_indices" in name or bool(kwargs.get("return_indices")) or (len(args) > slot and bool(args[slot]))


def _pool_call(name: str, args: tuple, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, flat indices) of a max-pool call, whatever its return_indices."""
    slot = _indices_slot(name)
    if len(args) > slot:
        return _POOLS[name](*args[:slot], True, *args[slot + 1:], **kwargs)
    return _POOLS[name](*args, **{**kwargs, "return_indices": True})


def _reduce_dims(args: tuple, kwargs: dict, ndim: int) -> tuple[tuple[int, ...], bool]:
    dim = args[1] if len(args) > 1 else kwargs["dim"]
    dims = tuple(d % ndim for d in ((dim,) if isinstance(dim, int) else dim))
    keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    return dims, bool(keep)


def _to_last(z: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """z with ``dims`` flattened into one last axis: (rows, ..., n)."""
    rest = [d for d in range(z.ndim) if d not in dims]
    z = z.permute(*rest, *dims)
    return z.reshape(*z.shape[: len(rest)], -1)


def _reduce_call(z: torch.Tensor, args: tuple, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(values with keepdim, argmax over the flattened reduced axes) of amax/max(dim)."""
    dims, _ = _reduce_dims(args, kwargs, z.ndim)
    flat = _to_last(z, dims)
    values, index = flat.max(dim=-1, keepdim=True)
    return values, index


@dataclass
class Record:
    """One ruled call of the sequences' pass: its op, input, output and max positions (b rows or c x b)."""

    kind: str
    name: str
    z: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor | None = None
    func: Any = None
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


class Recorder(TorchFunctionMode):
    """Pass one: the sequences, recording every ruled call (input-dependent tensors require grad)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[Record] = []
        self.unruled: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = _name(func)
        kind = _kind(name, args, kwargs)
        if kind == "unruled":
            self.unruled.append(name)
        if kind is None or kind == "unruled":
            return func(*args, **kwargs)
        z, plain = args[0], _plain(kwargs)
        out = func(*args, **plain)
        with torch.no_grad():
            if kind == "pool":
                y, index = _pool_call(name, args, kwargs)
            elif kind == "reduce":
                y, index = _reduce_call(z, args, kwargs)
            else:
                y, index = out, None
        self.records.append(Record(kind, name, z.detach(), y.detach(), index, func, args[1:], plain))
        return out


class _Rule(torch.autograd.Function):
    """``make()`` gives (y, rule): forward returns y, backward applies the DeepLIFT rule to the gradient."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, make: Callable) -> torch.Tensor:  # z: the graph edge
        y, ctx.rule = make()
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple:
        return ctx.rule(g), None


@dataclass(frozen=True)
class _Groups:
    """Row structure of one call: c stacked blocks of b sequences (pass one) and of b x n references."""

    c: int
    b: int
    n: int

    def seq(self, t: torch.Tensor) -> torch.Tensor:
        """Pass one's (c b, ...) as (c, b, 1, ...): broadcasts over each sequence's references."""
        return t.reshape(self.c, self.b, 1, *t.shape[1:])

    def ref(self, t: torch.Tensor) -> torch.Tensor:
        """Pass two's (c b n, ...) as (c, b, n, ...)."""
        return t.reshape(self.c, self.b, self.n, *t.shape[1:])


class PairedPass(TorchFunctionMode):
    """Pass two: the references, each ruled call paired with the sequences' record of the same call.

    Parameters
    ----------
    records : list of Record
        Pass one's records, in call order.
    n_seq, n_refs : int
        b sequences in pass one; pass two holds their references, sequence i's at rows
        [i n_refs, (i + 1) n_refs).
    """

    def __init__(self, records: Sequence[Record], n_seq: int, n_refs: int) -> None:
        super().__init__()
        self.records = records
        self.n_seq, self.n_refs = n_seq, n_refs
        self.calls = 0

    def _groups(self, record: Record, z: torch.Tensor) -> _Groups:
        b, n = self.n_seq, self.n_refs
        c = record.z.shape[0] // b
        if record.z.shape[0] != c * b or z.shape[0] != c * b * n or z.shape[1:] != record.z.shape[1:]:
            raise CapabilityError(
                f"DeepLIFT cannot pair the references with their sequences at {record.name} (sequences: shape "
                f"{tuple(record.z.shape)}, references: {tuple(z.shape)}); the model mixes rows of its batch in a way "
                "other than stacking copies of it.")
        return _Groups(c, b, n)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = _name(func)
        kind = _kind(name, args, kwargs)
        if kind is None or kind == "unruled":
            return func(*args, **kwargs)
        if self.calls >= len(self.records) or self.records[self.calls].name != name:
            raise CapabilityError(f"the model's forward pass took a different path for the references than for the "
                                  f"sequences (call {self.calls}: {name}); DeepLIFT needs one fixed graph.")
        record = self.records[self.calls]
        self.calls += 1
        z = args[0]
        zr = z.detach()
        groups = self._groups(record, z)
        if kind == "elementwise":
            def make() -> tuple:
                y = func(zr, *args[1:], **_plain(kwargs))
                return y, lambda g: _elementwise_rule(record, groups, zr, y, g)

            return _Rule.apply(z, make)
        if kind == "pool":
            y, index = _pool_call(name, (zr, *args[1:]), kwargs)
            out = _Rule.apply(z, lambda: (y, lambda g: _max_rule(record, groups, zr, y, index, g, None)))
            return (out, index) if _wants_indices(name, args, kwargs) else out
        dims, keep = _reduce_dims(args, kwargs, z.ndim)
        y, index = _reduce_call(zr, args, kwargs)
        out = _Rule.apply(z, lambda: (y, lambda g: _max_rule(record, groups, zr, y, index, g, dims)))
        values = out.squeeze(-1)
        if keep:
            values = values.reshape([1 if d in dims else z.shape[d] for d in range(z.ndim)])
        if name == "max":
            return torch.return_types.max((values, index.reshape(values.shape)))
        return values


def _elementwise_rule(record: Record, groups: _Groups, zr: torch.Tensor, yr: torch.Tensor,
                      g: torch.Tensor) -> torch.Tensor:
    """Rescale rule: g (f(x) - f(r)) / (x - r); the gradient at x where |x - r| < EPS."""
    zx, yx = groups.seq(record.z), groups.seq(record.y)
    gg = groups.ref(g)
    dz = zx - groups.ref(zr)
    out = (yx - groups.ref(yr)).div_(dz).mul_(gg)
    close = dz.abs_() < EPS
    if bool(close.any()):
        with torch.enable_grad():
            t = record.z.detach().requires_grad_()
            (slope,) = torch.autograd.grad(record.func(t, *record.args, **record.kwargs).sum(), t)
        out = torch.where(close, gg * groups.seq(slope), out)
    return out.reshape(zr.shape)


def _max_rule(record: Record, groups: _Groups, zr: torch.Tensor, yr: torch.Tensor, index_r: torch.Tensor,
              g: torch.Tensor, dims: tuple[int, ...] | None) -> torch.Tensor:
    """Max-pool / max reduction: each output's change routed to the winners of x and of r, over (x - r).

    ``dims`` None: a pool, indices flat over the spatial axes of (rows, C, ...); else a reduction over
    ``dims`` with indices into those axes flattened last (see :func:`_reduce_call`).
    """
    def flat(t: torch.Tensor, pooled: bool) -> torch.Tensor:
        if dims is None:
            return t.flatten(2)
        return t if pooled else _to_last(t, dims)

    zr_f, yr_f, ir_f, g_f = flat(zr, False), flat(yr, True), flat(index_r, True), flat(g, True)
    yx, gg, yr_g = groups.seq(flat(record.y, True)), groups.ref(g_f), groups.ref(yr_f)
    y_max = torch.maximum(yx, yr_g)
    ix = groups.seq(flat(record.index, True)).expand(gg.shape).reshape(ir_f.shape)
    axis = zr_f.ndim - 1
    moved = torch.zeros_like(zr_f).scatter_add_(axis, ix, (gg * (y_max - yr_g)).reshape(ir_f.shape))
    moved.scatter_add_(axis, ir_f, (gg * (yx - y_max)).reshape(ir_f.shape))
    dz = (groups.seq(flat(record.z, False)) - groups.ref(zr_f)).reshape(zr_f.shape)
    still = dz == 0
    out = moved.div_(dz.masked_fill_(still, 1))
    if bool(still.any()):
        tangent = torch.zeros_like(zr_f).scatter_add_(axis, ix, g_f)
        out = torch.where(still, tangent, out)
    if dims is None:
        return out.view_as(zr)
    rest = [d for d in range(zr.ndim) if d not in dims]
    shaped = out.reshape(*[zr.shape[d] for d in rest], *[zr.shape[d] for d in dims])
    order = [0] * zr.ndim
    for i, d in enumerate([*rest, *dims]):
        order[d] = i
    return shaped.permute(*order)


@dataclass
class Multipliers:
    """One batch: multipliers (T, P, 4, L) of the references' targets and the outputs of both passes."""

    m: torch.Tensor
    y_seq: torch.Tensor
    y_ref: torch.Tensor
    unruled: list[str]


def multipliers(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, r: torch.Tensor,
                targets: Sequence[int]) -> Multipliers:
    """DeepLIFT multipliers of ``forward`` for each reference against its sequence.

    Parameters
    ----------
    forward : callable
        (rows, 4, L) tensor -> (rows, T) tensor (a :class:`~interpkit.predictor.TorchFunction`).
    x : tensor of shape (b, 4, L)
        The sequences, canonical one-hot.
    r : tensor of shape (P, 4, L)
        The references, P = b x n: sequence i's at rows [i n, (i + 1) n).
    targets : sequence of int

    Returns
    -------
    Multipliers
        ``m[k, p]`` = d^DeepLIFT y_t / d input for target ``targets[k]``, (K, P, 4, L), with
        sum((x - r) m) = y_t(x) - y_t(r) (summation-to-delta) when every nonlinearity has a rule.

    Raises
    ------
    CapabilityError
        When rows cannot be paired (the model mixes its batch rows) or the forward pass differs
        between sequences and references.
    """
    recorder = Recorder()
    with torch.enable_grad(), recorder:
        y_seq = forward(x.detach().requires_grad_())
    y_seq = y_seq.detach()
    rr = r.detach().requires_grad_()
    if len(x) == 0 or len(r) % len(x):
        raise ValueError(f"{len(r)} references for {len(x)} sequences: need the same number for each.")
    paired = PairedPass(recorder.records, len(x), len(r) // len(x))
    with torch.enable_grad():
        with paired:
            y_ref = forward(rr)
        if paired.calls != len(recorder.records):
            raise CapabilityError("the model's forward pass took a different path for the references than for the "
                                  "sequences; DeepLIFT needs one fixed graph.")
        if y_ref.shape[0] != len(r) or y_seq.shape[0] != len(x):
            raise CapabilityError(f"the model returned {y_ref.shape[0]} rows for {len(r)} inputs; DeepLIFT needs one "
                                  "output row per input row.")
        grads = []
        for i, t in enumerate(targets):
            (m,) = torch.autograd.grad(y_ref[:, t].sum(), rr, retain_graph=i < len(targets) - 1)
            grads.append(m)
    return Multipliers(torch.stack(grads), y_seq, y_ref.detach(), recorder.unruled)


def bytes_per_row(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """Bytes of the ruled activations of one row (pass one on ``x``), for batch sizing."""
    recorder = Recorder()
    with torch.enable_grad(), recorder:
        forward(x.detach().requires_grad_())
    total = sum(rec.z.numel() * rec.z.element_size() + rec.y.numel() * rec.y.element_size()
                for rec in recorder.records)
    return max(1, math.ceil(total / max(1, len(x))))
