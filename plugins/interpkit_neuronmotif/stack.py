"""The convolution stack below a neuron, read from the layer table: stages, receptive fields, pool facets.

NeuronMotif (Wei et al. 2023, PNAS 120:e2216698120) views a convolutional neuron of layer L as a function of
its receptive-field window. Each max-pool below it lets the neuron see a motif in one of ``p`` slots, so
the windows that activate it are a mixture of at most prod(p_l) arrangements ("facets"), which the backward
demixing separates one pool stage at a time. A *stage* here is one convolution with the layers that act
on it position by position (batch norm, dropout) up to its activation, and the max-pool after it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from interpkit.errors import InputError
from interpkit.probe import INPUT, LayerInfo, receptive_fields, resolve_layer

__all__ = ["NeuronStack", "Stage", "neuron_stack"]

#: Layers that keep positions and may sit between a convolution and its pool.
_PASS = ("norm", "dropout", "identity", "activation")


@dataclass(frozen=True)
class Stage:
    """One convolution stage of the stack.

    Attributes
    ----------
    conv : str
        The convolution's layer name.
    value_layer : str
        The layer whose output is the stage's value: the convolution, or the last normalisation after it,
        before any activation (NeuronMotif's "activation" is this pre-activation value).
    fused_activation : str or None
        An activation fused into the convolution (Keras ``Conv1D(activation=...)``); then ``value`` is
        read after it.
    channels : int
        Output channels C_l.
    receptive_field : int
        Receptive field of one output position, bp.
    jump : int
        bp between adjacent output positions (the product of the pools below).
    start : int
        Input position of output position 0's window (negative inside padding).
    pool : int
        Size of the max-pool after the stage (1 when there is none, or for the target stage).
    """

    conv: str
    value_layer: str
    fused_activation: str | None
    channels: int
    receptive_field: int
    jump: int
    start: int
    pool: int = 1


@dataclass(frozen=True)
class NeuronStack:
    """The stages from the input up to (and including) the target convolution.

    Attributes
    ----------
    stages : tuple of Stage
        Bottom first; the last one holds the neurons analysed.
    """

    stages: tuple[Stage, ...]

    @property
    def target(self) -> Stage:
        """The stage whose neurons are analysed."""
        return self.stages[-1]

    @property
    def receptive_field(self) -> int:
        """R, the target neuron's receptive field in bp (the length of every sampled window)."""
        return self.target.receptive_field

    @property
    def jump(self) -> int:
        """J, the target's jump in bp: the product of the pool sizes below it (the GA's shift range)."""
        return self.target.jump

    @property
    def facets(self) -> int:
        """The product of the pool sizes below the target: the number of pool-slot arrangements one motif
        per stage can take (with m flexible motifs, demixing makes up to facets^m clusters)."""
        return math.prod(s.pool for s in self.stages[:-1])

    @property
    def begin(self) -> int:
        """Input offset (bp) of the target's first output position whose window needs no padding."""
        t = self.target
        return t.start + max(0, -(t.start // t.jump)) * t.jump

    def count(self, level: int) -> int:
        """P_l: output positions of stage ``level`` inside the target's window, (R - R_l) / J_l + 1."""
        s = self.stages[level]
        return (self.receptive_field - s.receptive_field) // s.jump + 1

    def feature_width(self, level: int) -> int:
        """P_l x C_l, the width of stage ``level``'s demixing features."""
        return self.count(level) * max(self.stages[level].channels, 1)

    def positions(self, level: int, begin: int) -> slice:
        """Output positions of stage ``level`` whose windows lie inside the target window [begin, begin + R).

        There are P_l = (R - R_l) / J_l + 1 of them (the reference code's feature positions), the first
        at (begin - start_l) / J_l.

        Raises
        ------
        InputError
            If ``begin`` is not on stage ``level``'s grid (a padding that is not a multiple of the jump).
        """
        s = self.stages[level]
        first, off = divmod(begin - s.start, s.jump)
        if off:
            raise InputError(f"stage {s.conv!r}: the target window at {begin} bp is not on its {s.jump}-bp grid "
                             f"(start {s.start}); NeuronMotif cannot align its feature maps.")
        return slice(first, first + self.count(level))


def _chained(layers: Sequence[LayerInfo], k: int) -> bool:
    """Whether layer k takes the previous layer's output (or the model input, for the first) and nothing else."""
    return not layers[k].inputs or layers[k].inputs == ((layers[k - 1].name if k else INPUT),)


def _stage_layers(layers: Sequence[LayerInfo], index: int) -> int:
    """Index of the last layer of the stage that starts at convolution ``index`` (its value layer)."""
    last = index
    for k in range(index + 1, len(layers)):
        info = layers[k]
        if not _chained(layers, k) or info.kind not in ("norm", "dropout", "identity"):
            break
        if info.kind == "norm":
            last = k
    return last


def neuron_stack(layers: Sequence[LayerInfo], layer: str | int) -> NeuronStack:
    """The convolution stack up to ``layer``, checked for what NeuronMotif's demixing assumes.

    Parameters
    ----------
    layers : sequence of LayerInfo
        The model's layer table (:meth:`interpkit.probe.LayerProbe.layers`).
    layer : str or int
        The target: a convolution, or a layer of its stage (its normalisation or activation), by name or
        table index (a string of digits that names no layer is an index).

    Returns
    -------
    NeuronStack

    Raises
    ------
    InputError
        If the target is not in a convolution stage, or the stack below it is not a plain chain of
        convolutions (stride 1; dilation allowed, it only widens receptive fields) with optional
        normalisation, activation, dropout, average pools (linear: no facets) and non-overlapping
        max-pools (stride = size): residual or concatenating layers, dense or global layers, strided
        convolutions or overlapping or dilated max-pools. The message names the layer.
    """
    if isinstance(layer, str) and layer.strip().isdigit() and layer not in {x.name for x in layers}:
        layer = int(layer)  # "4" from the command line: a table index unless a layer has that name
    index, info = resolve_layer(layers, layer)
    geometry = receptive_fields(layers)
    convs = [k for k, x in enumerate(layers) if x.kind == "conv" and k <= index]
    if not convs or any(x.kind not in _PASS for x in layers[convs[-1] + 1:index + 1]):
        raise InputError(f"layer {info.name!r} ({info.kind}) is not a convolution or a layer acting on one position "
                         "by position; NeuronMotif analyses convolutional neurons. Run `interpkit info MODEL` "
                         "and give a conv layer.")
    stages: list[Stage] = []
    for n, k in enumerate(convs):
        conv = layers[k]
        if not _chained(layers, k):
            raise InputError(f"layer {conv.name!r} takes input from {list(conv.inputs)}: NeuronMotif needs a plain "
                             "chain of convolutions (no residual or parallel branches).")
        if conv.stride != 1:
            raise InputError(f"convolution {conv.name!r} has stride {conv.stride}; NeuronMotif's pool facets assume "
                             "stride-1 convolutions with the striding done by max-pools.")
        value = _stage_layers(layers, k)
        stop = convs[n + 1] if n + 1 < len(convs) else index + 1
        pool = 1
        for j in range(value + 1, stop):
            x = layers[j]
            if not _chained(layers, j):
                raise InputError(f"layer {x.name!r} merges branches {list(x.inputs)}; NeuronMotif needs a plain "
                                 "chain of convolutions.")
            if x.kind == "maxpool":
                if x.stride != x.kernel_size or x.dilation != 1:
                    raise InputError(f"max-pool {x.name!r} has size {x.kernel_size}, stride {x.stride} and dilation "
                                     f"{x.dilation}; NeuronMotif's demixing assumes non-overlapping pools (stride "
                                     "= size, no dilation).")
                pool *= x.kernel_size
            elif x.kind not in _PASS + ("avgpool",):
                raise InputError(f"layer {x.name!r} ({x.kind}) sits between convolutions {conv.name!r} and the next "
                                 "one; NeuronMotif handles normalisation, activation, dropout and pools there.")
        geom = geometry[value]
        fused = conv.activation if value == k and conv.activation not in (None, "linear") else None
        stages.append(Stage(conv.name, layers[value].name, fused, int(conv.channels or 0), geom.receptive_field,
                            geom.jump, geom.start, pool if n + 1 < len(convs) else 1))
    return NeuronStack(tuple(stages))
