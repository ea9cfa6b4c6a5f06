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

Every other call is classified by :mod:`interpkit_deeplift.ops`: linear ones (convolutions,
sums, views, products with one input-dependent operand...) need no rule; nonlinear ones without
a rule (softmax, normalisations, products of two input-dependent tensors, masks computed from
the input, recurrent layers, anything unknown) are reported by name and differentiated as they
are, at the reference (Captum and tangermeme take the gradient at the sequence there). In-place
forms (``h.relu_()``) get the rule of their out-of-place op.

Cost: a sequence is shared by all its references, so each batch runs the sequences once (their
graph is never differentiated) and the references once with the rules attached, then one
backward pass per target over the references only; parameters need no gradient. Captum and
tangermeme run every pair as two rows forward and backward.

Rows: pass one holds b sequences, pass two their P = b x n references, sequence i's at rows
[i n, (i + 1) n). A model may stack copies of its batch along the batch axis (in-model strand
averaging: [x; reverse complement of x]); a tensor with c x b rows in pass one and c x P in
pass two is taken as c stacked blocks. :func:`check_pairing` verifies that guess on the model
before any attribution (references equal to their sequences must give equal rows at every ruled
op) and refuses models that fold other axes into the batch.

Source: Shrikumar, Greenside & Kundaje (2017) ICML, rescale rule (sec. 3.5.2, summation-to-delta
eq. 1); the max-pool routing is that of Captum's DeepLift and tangermeme's ``deep_lift_shap``, and
the fallbacks those of tangermeme (gradient at the sequence where |x - r| < 1e-6 for element-wise
rules, where x = r for max rules), which this engine equals on the same references.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from interpkit.errors import CapabilityError

from .ops import (
    POOLS,
    Tainted,
    canonical,
    dependent,
    indices_slot,
    is_linear,
    normalize,
    out_of_place,
    ruled_kind,
    tensors,
    wants_indices,
)

__all__ = ["EPS", "PairedGraph", "bytes_per_row", "check_pairing", "paired_graph"]

#: Below this input difference the element-wise rule takes the gradient (float32 secants are noise there).
EPS = 1e-6
#: Largest row mismatch accepted by :func:`check_pairing`, relative to the activation scale.
_PAIRING_TOLERANCE = 1e-4


def _plain(kwargs: dict) -> dict:
    """The call's keyword arguments, out of place."""
    return {**kwargs, "inplace": False} if kwargs.get("inplace") else kwargs


def _pool_call(name: str, args: tuple, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, flat indices) of a max-pool call, whatever its return_indices."""
    slot = indices_slot(name)
    if len(args) > slot:
        return POOLS[name](*args[:slot], True, *args[slot + 1:], **kwargs)
    return POOLS[name](*args, **{**kwargs, "return_indices": True})


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


class _Classifier(TorchFunctionMode):
    """Shared by both passes: tainted tensors, and unruled calls reported by name."""

    def __init__(self) -> None:
        super().__init__()
        self.tainted = Tainted()
        self.unruled: list[str] = []

    def _classify(self, func: Any, args: tuple, kwargs: Any) -> tuple[str, bool, str | None, tuple, dict]:
        """(name, in_place, ruled kind or None, args, kwargs) of a call, its input moved first."""
        args, kwargs = normalize(args, kwargs or {})
        name, in_place = canonical(func)
        return name, in_place, ruled_kind(name, args, kwargs, self.tainted), args, kwargs

    def _plain_call(self, func: Any, name: str, in_place: bool, args: tuple, kwargs: dict) -> Any:
        """Run a call without a rule; report it if it is nonlinear in the input, taint what it derives."""
        out = func(*args, **kwargs)
        outs = [args[0]] if (in_place or name == "__setitem__") and args else list(tensors(out))
        if any(dependent(t) for t in outs):
            if not is_linear(name, args, kwargs, self.tainted):
                self.unruled.append(name)
        elif any(dependent(t) or t in self.tainted for t in tensors((args, kwargs))):
            for t in outs:
                self.tainted.add(t)
        return out


@dataclass
class Record:
    """One ruled call of the sequences' pass: its op, input, output and max positions (b rows or c x b)."""

    name: str
    z: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor | None = None
    func: Any = None
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


class Recorder(_Classifier):
    """Pass one: the sequences, recording every ruled call (input-dependent tensors require grad)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[Record] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        name, in_place, kind, args, kwargs = self._classify(func, args, kwargs)
        if kind is None:
            return self._plain_call(func, name, in_place, args, kwargs)
        call, plain = (out_of_place(name) if in_place else func), _plain(kwargs)
        z = args[0]
        out = call(*args, **plain)
        with torch.no_grad():
            if kind == "pool":
                y, index = _pool_call(name, args, kwargs)
            elif kind == "reduce":
                y, index = _reduce_call(z, args, kwargs)
            else:
                y, index = out, None
        self.records.append(Record(name, z.detach().clone() if in_place else z.detach(), y.detach(), index,
                                   call, args[1:], plain))
        return z.copy_(out) if in_place else out


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


class PairedPass(_Classifier):
    """Pass two: the references, each ruled call paired with the sequences' record of the same call.

    Parameters
    ----------
    records : list of Record
        Pass one's records, in call order.
    n_seq, n_refs : int
        b sequences in pass one; pass two holds their references, sequence i's at rows
        [i n_refs, (i + 1) n_refs).
    check : bool
        Only check the pairing (references equal to their sequences): raise CapabilityError at
        the first ruled call whose paired rows differ; no rules attached.
    """

    def __init__(self, records: Sequence[Record], n_seq: int, n_refs: int, *, check: bool = False) -> None:
        super().__init__()
        self.records = records
        self.n_seq, self.n_refs = n_seq, n_refs
        self.check = check
        self.calls = 0

    def _groups(self, record: Record, z: torch.Tensor) -> _Groups:
        b, n = self.n_seq, self.n_refs
        c = record.z.shape[0] // b
        if record.z.shape[0] != c * b or z.shape[0] != c * b * n or z.shape[1:] != record.z.shape[1:]:
            raise CapabilityError(
                f"DeepLIFT cannot pair the references with their sequences at {record.name} (sequences: shape "
                f"{tuple(record.z.shape)}, references: {tuple(z.shape)}): the model mixes the rows of its batch "
                "other than by stacking copies of it, or runs in fixed-size batches. Use ism or saliency on it.")
        groups = _Groups(c, b, n)
        if self.check:
            gap = float((groups.seq(record.z) - groups.ref(z.detach())).abs().max()) if z.numel() else 0.0
            scale = max(1.0, float(record.z.abs().max())) if record.z.numel() else 1.0
            if not gap <= _PAIRING_TOLERANCE * scale:
                raise CapabilityError(
                    f"DeepLIFT cannot tell which rows of {record.name}'s input belong to which sequence: the "
                    "model reshapes its batch axis (e.g. folds positions into rows), so references equal to their "
                    f"sequences still differ there by {gap:.3g}. Use ism or saliency on this model.")
        return groups

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        name, in_place, kind, args, kwargs = self._classify(func, args, kwargs)
        if kind is None:
            return self._plain_call(func, name, in_place, args, kwargs)
        if self.calls >= len(self.records) or self.records[self.calls].name != name:
            raise CapabilityError(f"the model's forward pass took another path for the references than for their "
                                  f"sequences (ruled call {self.calls}: {name}); DeepLIFT needs one fixed graph "
                                  "(no branching on the input's values). Use ism on this model.")
        record = self.records[self.calls]
        self.calls += 1
        call, plain = (out_of_place(name) if in_place else func), _plain(kwargs)
        z = args[0]
        zr = z.detach().clone() if in_place else z.detach()
        groups = self._groups(record, z)
        if kind == "elementwise":
            def make() -> tuple:
                y = call(zr, *args[1:], **plain)
                return y, lambda g: _elementwise_rule(record, groups, zr, y, g)

            out = _Rule.apply(z, make)
        elif kind == "pool":
            y, index = _pool_call(name, (zr, *args[1:]), kwargs)
            out = _Rule.apply(z, lambda: (y, lambda g: _max_rule(record, groups, zr, y, index, g, None)))
            if wants_indices(func, name, args, kwargs):
                out = (out, index)
        else:
            dims, keep = _reduce_dims(args, kwargs, z.ndim)
            y, index = _reduce_call(zr, args, kwargs)
            values = _Rule.apply(z, lambda: (y, lambda g: _max_rule(record, groups, zr, y, index, g, dims)))
            values = values.squeeze(-1)
            if keep:
                values = values.reshape([1 if d in dims else z.shape[d] for d in range(z.ndim)])
            out = torch.return_types.max((values, index.reshape(values.shape))) if name == "max" else values
        return z.copy_(out) if in_place else out


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


class PairedGraph:
    """One batch after both passes: outputs of the sequences and references, and per-target multipliers.

    Attributes
    ----------
    y_seq : tensor of shape (b, T)
    y_ref : tensor of shape (P, T)
    unruled : list of str
        Names of nonlinear calls without a rule (reported by the method).
    """

    def __init__(self, y_seq: torch.Tensor, y_ref: torch.Tensor, r: torch.Tensor, unruled: list[str]) -> None:
        self.y_seq, self._y_ref, self._r = y_seq, y_ref, r
        self.y_ref = y_ref.detach()
        self.unruled = unruled

    def multipliers(self, target: int, *, last: bool) -> torch.Tensor:
        """(P, 4, L) DeepLIFT multipliers of output ``target``; ``last`` frees the graph."""
        with torch.enable_grad():
            (m,) = torch.autograd.grad(self._y_ref[:, target].sum(), self._r, retain_graph=not last)
        return m


def paired_graph(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, r: torch.Tensor) -> PairedGraph:
    """Both passes for sequences ``x`` and their references ``r``, ready for per-target multipliers.

    Parameters
    ----------
    forward : callable
        (rows, 4, L) tensor -> (rows, T) tensor (a :class:`~interpkit.predictor.TorchFunction`).
    x : tensor of shape (b, 4, L)
        The sequences, canonical one-hot.
    r : tensor of shape (P, 4, L)
        The references, P = b x n: sequence i's at rows [i n, (i + 1) n).

    Returns
    -------
    PairedGraph
        ``multipliers(t)`` are d^DeepLIFT y_t / d input, with sum((x - r) m) = y_t(x) - y_t(r)
        (summation-to-delta) when every nonlinearity has a rule.

    Raises
    ------
    CapabilityError
        When rows cannot be paired or the forward pass differs between sequences and references.
    """
    if len(x) == 0 or len(r) % len(x):
        raise ValueError(f"{len(r)} references for {len(x)} sequences: need the same number for each.")
    recorder = Recorder()
    xx, rr = x.detach().requires_grad_(), r.detach().requires_grad_()
    with torch.enable_grad(), recorder:
        y_seq = forward(xx)
    y_seq = y_seq.detach()
    paired = PairedPass(recorder.records, len(x), len(r) // len(x))
    with torch.enable_grad(), paired:
        y_ref = forward(rr)
    _check_complete(paired, recorder, y_seq, y_ref, len(x), len(r))
    return PairedGraph(y_seq, y_ref, rr, recorder.unruled)


def _check_complete(paired: PairedPass, recorder: Recorder, y_seq: torch.Tensor, y_ref: torch.Tensor, b: int,
                    p: int) -> None:
    if paired.calls != len(recorder.records):
        raise CapabilityError("the model's forward pass took another path for the references than for their "
                              "sequences; DeepLIFT needs one fixed graph (no branching on the input's values). Use "
                              "ism on this model.")
    if y_ref.shape[0] != p or y_seq.shape[0] != b:
        raise CapabilityError(f"the model returned {y_ref.shape[0]} rows for {p} inputs; DeepLIFT needs one output "
                              "row per input row. Use ism on this model.")


def check_pairing(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> None:
    """Refuse models whose rows DeepLIFT cannot pair, and backends whose parameters need gradients.

    Runs ``x`` (>= 2 distinct sequences) as sequences and, repeated twice each, as their own
    references: at every ruled op the paired rows must be equal (see :class:`PairedPass`).

    Raises
    ------
    CapabilityError
        For a model that folds other axes into the batch, takes another path per input, or whose
        output requires grad for an input that does not (its parameters need gradients, so
        ``requires_grad`` cannot mark what depends on the input).
    """
    with torch.enable_grad():
        if forward(x.detach()).requires_grad:
            raise CapabilityError("the model's torch function has parameters that require gradients; DeepLIFT "
                                  "needs them frozen (Predictor.torch_function must set requires_grad=False).")
        recorder = Recorder()
        xx, r = x.detach().requires_grad_(), x.detach().repeat_interleave(2, dim=0).requires_grad_()
        with recorder:
            y_seq = forward(xx)
        paired = PairedPass(recorder.records, len(x), 2, check=True)
        with paired:
            y_ref = forward(r)
    _check_complete(paired, recorder, y_seq, y_ref, len(x), len(r))


def bytes_per_row(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """Bytes per input row of the activations the rules keep (inputs and outputs of every ruled call).

    Parameters
    ----------
    forward : callable
        (rows, 4, L) tensor -> (rows, T) tensor.
    x : tensor of shape (b, 4, L)
        A few canonical one-hot sequences (one is enough).

    Returns
    -------
    int
        Bytes per row, >= 1, for batch sizing.
    """
    recorder = Recorder()
    xx = x.detach().requires_grad_()
    with torch.enable_grad(), recorder:
        forward(xx)
    total = sum(rec.z.numel() * rec.z.element_size() + rec.y.numel() * rec.y.element_size()
                for rec in recorder.records)
    return max(1, math.ceil(total / max(1, len(x))))
