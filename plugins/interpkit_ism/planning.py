"""Which PyTorch models the fast ISM path takes, and compiling them into a :class:`Plan`.

:func:`plan` compiles a qualifying model into the steps of :mod:`interpkit_ism.steps` (an
exact mode, and a linear mode when the head allows it); :mod:`interpkit_ism.fast` runs them
(the layer-wise reuse of fastISM, Nair et al. 2022, Bioinformatics 38:2397, and yuzu,
Schreiber et al. 2022, Bioinformatics 38:3557). :func:`naive_batch_size` sizes the batches of
the naive path for models that do not qualify.

Which models qualify
--------------------
The module's ``forward`` must be a chain of module calls: ``torch.fx`` symbolic tracing (with
every module without children kept whole) must give one input, then module calls each taking
the previous output only, then the output. ``nn.Sequential`` (nested or subclassed) qualifies,
and so does a custom module whose forward only calls submodules in a row (ExplaiNN:
``final(linears(x))``). The calls must be the rows of the layer table
(:meth:`~interpkit.probe.LayerProbe.layers`), which gives kernel, stride, dilation and padding
of every local layer (checked against the module's own attributes). The chain is split into

- a *trunk* of local layers: Conv1d/Conv2d along the sequence axis (zero padding of any width,
  "same" included; stride, dilation, groups), max/average pools without padding, BatchNorm with
  running statistics, known activations, PReLU, Dropout/Identity, and *element-wise custom
  modules*: no parameters, buffers or children, a forward made of torch functions and tensor
  methods only, and a numerical check on the layer's own probe input (the outputs of a crop,
  of a permutation of all elements and of a batch are the crop, permutation and batch of the
  output);
- a *head* from the first layer that mixes positions (Flatten, Linear, adaptive pool, or a
  custom module checked to be a pure reshape to (N, F)) to the output.

Anything else (functions in ``forward``, unknown trunk layers, pools with padding,
``ceil_mode``, NLC layout, extra inputs, TorchScript, BatchNorm without running statistics)
makes :func:`plan` return None, and ISM runs every variant in full.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from interpkit.adapt import to_model_layout
from interpkit.threads import one_torch_thread
from interpkit_ism.chain import (
    AVGPOOL,
    BATCHNORM,
    CONV,
    HEAD_START,
    MAXPOOL,
    SKIP,
    batchnorm,
    call_chain,
    canonical,
    is_elementwise,
    is_reshape,
    local,
    windows,
)
from interpkit_ism.steps import Affine, Call, Dense, Local, Norm, Rank1, Sparse, fold

__all__ = ["Plan", "model_dtype", "naive_batch_size", "one_thread", "plan"]

#: Activation bytes per batch of the naive path on a CPU when the caller gives no batch_size.
_NAIVE_BATCH_BYTES = 1 << 26


@dataclass(frozen=True, eq=False)
class Plan:
    """A qualifying model compiled for fast ISM (see the module docstring).

    Attributes
    ----------
    trunk : tuple
        The exact mode's trunk: local layers (``Local``) and position-wise steps, on canonical
        (N, C, L) tensors.
    head : nn.Module
        The head modules as an ``nn.Sequential`` (the exact mode's head).
    linear_trunk : tuple or None
        The linear mode's trunk (its first convolution a ``Rank1`` when it can be), or None
        when there is no linear mode.
    sparse : Sparse or None
        The linear mode's head.
    layout : str
        The model's input layout.
    trunk_shape : tuple of int
        Shape of the trunk output in the model's layout, batch axis excluded.
    out_shape : tuple of int
        Shape of the module's raw output, batch axis excluded.
    cache_floats : int
        Cached reference values per sequence and mode (padded local-layer inputs, trunk output).
    head_floats : int
        Values per sequence of the head's largest activation.
    """

    trunk: tuple
    head: nn.Module
    linear_trunk: tuple | None
    sparse: Sparse | None
    layout: str
    trunk_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    cache_floats: int
    head_floats: int

    @property
    def local_layers(self) -> list[Local]:
        """The trunk's convolutions and pools, in order."""
        return [step for step in self.trunk if isinstance(step, Local)]


def naive_batch_size(model: Any, length: int) -> int | None:
    """A CPU-cache-friendly batch size for running whole variants through a PyTorch model, or None.

    The backend's own choice fills 10% of free memory (up to 4,096 variants), which thrashes
    the CPU caches and page-faults on every fresh allocation: ExplaiNN ran 2-3x slower per
    variant than in batches of 128 (interpkit's naive ISM took twice tangermeme's time). On the
    CPU a batch holds about 64 MiB of activations instead, from the torch backend's estimate of
    activation bytes per bp.

    Parameters
    ----------
    model : Predictor
    length : int
        Sequence length in bp.

    Returns
    -------
    int or None
        16 to 1,024; None for other backends and devices, or when there is no estimate (then
        the backend chooses).
    """
    if getattr(model, "backend_name", None) != "torch" or getattr(getattr(model, "device", None), "type", "") != "cpu":
        return None
    try:
        per_seq = float(model._structure.bytes_per_bp) * length
    except Exception:  # noqa: BLE001 - no estimate: the backend decides
        return None
    return int(min(1024, max(16, _NAIVE_BATCH_BYTES // max(per_seq, 1.0))))


def plan(model: Any, length: int | None = None) -> Plan | None:
    """Compile a qualifying PyTorch model for fast ISM, or None (then ISM runs the naive way).

    Parameters
    ----------
    model : Predictor
        A torch-backend model (``module``, ``layers()``, ``reduce_output``, ``device``).
    length : int or None
        Sequence length in bp, used when the model has none of its own. Default is None.

    Returns
    -------
    Plan or None
        None when the model does not qualify (see the module docstring).
    """
    module = getattr(model, "module", None)
    spec = model.input_spec
    length = spec.length or length
    if (not isinstance(module, nn.Module) or isinstance(module, torch.jit.ScriptModule) or length is None
            or spec.layout not in ("NCL", "NCL1", "NC1L") or spec.extra_inputs
            or not all(hasattr(model, a) for a in ("layers", "reduce_output", "output_reduction", "device",
                                                   "_session"))):
        return None
    chain = call_chain(module)
    if not chain:
        return None
    try:
        table = list(model.layers())
    except Exception:  # noqa: BLE001 - any failure to describe the layers means: not for the fast path
        return None
    counts: dict[str, int] = {}
    names = []
    for name, _ in chain:
        counts[name] = counts.get(name, 0) + 1
        names.append(name if counts[name] == 1 else f"{name}#{counts[name]}")
    if [info.name for info in table] != names:
        return None
    with model._session(), one_thread(model.device):
        return _compile(model, chain, table, length)


def model_dtype(model: Any) -> torch.dtype:
    """The dtype of the module's floating-point parameters (float32 when it has none)."""
    return next((p.dtype for p in model.module.parameters() if p.is_floating_point()), torch.float32)


def _record(model: Any, chain: list[tuple[str, nn.Module]], length: int) -> list[torch.Tensor]:
    """Inputs of every chain call, and the output last, on two random one-hot probe sequences."""
    spec = model.input_spec
    rng = np.random.default_rng(0)
    X = np.eye(4, dtype=np.float32)[:, rng.integers(0, 4, size=(2, length))].transpose(1, 0, 2)
    x = torch.as_tensor(to_model_layout(X, spec.layout, model_alphabet=spec.model_alphabet, alphabet=spec.alphabet),
                        device=model.device, dtype=model_dtype(model))
    seen = [x]
    for _, m in chain:
        x = m(x)
        if not isinstance(x, torch.Tensor):
            return []
        seen.append(x)
    return seen


def _compile(model: Any, chain: list[tuple[str, nn.Module]], table: list, length: int) -> Plan | None:
    layout = model.input_spec.layout
    try:
        seen = _record(model, chain, length)
    except Exception:  # noqa: BLE001 - a chain that fails on a probe input is not for the fast path
        return None
    if not seen:
        return None
    trunk: list[Any] = []
    cache_floats = 0
    i = 0
    for i, ((_, m), info) in enumerate(zip(chain, table)):
        x = canonical(seen[i], layout)
        if type(m) in HEAD_START or x is None:
            break
        if type(m) in CONV + MAXPOOL + AVGPOOL:
            step = local(m, info, layout)
            if step is None:
                return None
            trunk.append(step)
            cache_floats += x.shape[1] * (x.shape[2] + sum(step.pad))
        elif type(m) in BATCHNORM:
            if batchnorm(m) is None:
                return None
            trunk.append(Norm(m))
        elif type(m) in SKIP:
            continue
        elif type(m) is nn.PReLU or is_elementwise(m, x):  # PReLU: per channel, position by position
            trunk.append(m)
        elif is_reshape(m, seen[i]) and seen[i + 1].ndim == 2:
            break  # a custom flatten opens the head
        else:
            return None  # an unknown layer before the head
    else:
        return None  # no head: per-position outputs run the naive way
    local_layers = [s for s in trunk if isinstance(s, Local)]
    if not local_layers:
        return None
    windows(length, local_layers)
    head_chain, head_seen = chain[i:], seen[i:]
    if any(type(m) in BATCHNORM and batchnorm(m) is None for _, m in head_chain):
        return None  # batch statistics: a variant's output would depend on its batch
    trunk_out = canonical(seen[i], layout)
    cache_floats += trunk_out[0].numel()
    sparse = _compile_sparse(model, head_chain, head_seen, tuple(trunk_out.shape[1:]))
    linear_trunk = None if sparse is None else _linear_trunk(trunk)
    return Plan(tuple(trunk), nn.Sequential(*[m for _, m in head_chain]), linear_trunk, sparse, layout,
                tuple(seen[i].shape[1:]), tuple(seen[-1].shape[1:]), cache_floats,
                max(t[0].numel() for t in head_seen))


def _linear_trunk(trunk: list[Any]) -> tuple:
    """The trunk with its first convolution (and a BatchNorm right after it) as a :class:`Rank1`, if it has one."""
    first = trunk[0]
    if not (isinstance(first, Local) and first.kind == "conv" and first.groups == 1):
        return tuple(trunk)
    conv, rest = replace(first), list(trunk[1:])
    if rest and isinstance(rest[0], Norm):
        conv.weight, conv.bias = fold(conv.weight, conv.bias, *batchnorm(rest.pop(0).module))
    following = next((s for s in rest if isinstance(s, Local)), None)
    direct = following is not None and not any(following.pad)
    width, lo = (following.crop, following.lo * following.stride) if direct else (first.width, first.lo)
    columns = conv.weight.permute(1, 0, 2).reshape(conv.weight.shape[1], -1).contiguous()
    return (Rank1(conv, columns, width, lo, direct), *rest)


def _dense_weight(m: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(G, O / G, F / G) weight and bias of a Linear on (N, F) or a 1x1 Conv1d on (N, F, 1), else None."""
    bias = None if getattr(m, "bias", None) is None else m.bias.detach()
    if type(m) is nn.Linear and x.ndim == 2:
        return m.weight.detach()[None], bias
    if (type(m) is nn.Conv1d and x.ndim == 3 and x.shape[2] == 1 and m.kernel_size == (1,) and m.stride == (1,)
            and m.dilation == (1,) and m.padding in ((0,), "valid") and m.padding_mode == "zeros"):
        w = m.weight.detach()
        return w.reshape(m.groups, w.shape[0] // m.groups, w.shape[1]), bias
    return None


def _compile_sparse(model: Any, chain: list[tuple[str, nn.Module]], seen: list[torch.Tensor],
                    trunk_shape: tuple[int, ...]) -> Sparse | None:
    """The linear mode's head, if the head is reshapes, then a linear layer reading whole channels, then anything."""
    channels, positions = trunk_shape
    k = 0
    while k < len(chain) and is_reshape(chain[k][1], seen[k]):
        k += 1
    dense = _dense_weight(chain[k][1], seen[k]) if k < len(chain) else None
    if dense is None or dense[0].shape[0] * dense[0].shape[2] != channels * positions or channels % dense[0].shape[0]:
        return None  # not a linear layer on the flattened trunk output, or a group splits a channel
    ops: list[Any] = [Dense(*dense)]
    for (_, m), x in zip(chain[k + 1:], seen[k + 1:-1]):
        flat = x.reshape(len(x), -1)
        dense = _dense_weight(m, x)
        if type(m) in BATCHNORM:
            scale, shift = batchnorm(m)
            repeat = flat.shape[1] // scale.numel()  # BatchNorm1d on (N, C, L): L values per channel
            scale, shift = scale.repeat_interleave(repeat), shift.repeat_interleave(repeat)
            last = ops[-1]
            if isinstance(last, Dense):
                w, b = fold(last.weight.reshape(-1, last.weight.shape[2]), last.bias, scale, shift)
                ops[-1] = Dense(w.reshape(last.weight.shape), b)
            else:
                ops.append(Affine(scale.to(x.dtype), shift.to(x.dtype)))
        elif dense is not None:
            ops.append(Dense(*dense))
        elif is_reshape(m, x):
            continue
        elif is_elementwise(m, flat):
            ops.append(m)
        else:
            ops.append(Call(m, tuple(x.shape[1:])))
    first = ops.pop(0)
    groups, out_g, _ = first.weight.shape
    last = max((j for j, op in enumerate(ops) if isinstance(op, Dense)), default=None)
    restricted = (last is not None and ops[last].weight.shape[0] == 1 and model.output_reduction is None
                  and seen[-1].ndim <= 2 and all(isinstance(op, nn.Module) for op in ops[last + 1:]))
    return Sparse(first.weight.reshape(groups, out_g, channels // groups, positions), first.bias, tuple(ops),
                  restricted)


@contextmanager
def one_thread(device: torch.device) -> Iterator[int]:
    """On the CPU, one intra-op thread per op, and as many worker threads as torch had intra-op threads.

    Batches are run side by side on worker threads (torch ops release the GIL) instead of
    splitting each op over OpenMP threads: the ops of a batch are small (OpenMP's fork and join
    cost as much as the work), and on a loaded machine every parallel op waits for the thread
    that is descheduled. Yields the number of workers (1 on other devices).
    """
    if device.type != "cpu":
        yield 1
        return
    with one_torch_thread() as threads:
        yield threads

