"""One neuron as NeuronMotif sees it: a function of its receptive-field window, with gradients and the
feature maps of the stages below it, all through :class:`~interpkit.probe.LayerProbe`.

Windows are handled as symbol codes, shape (M, R), uint8 (0-3 in A, C, G, T order), and turned into
one-hot (M, 4, R) float32 batches only for the model, a chunk at a time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from interpkit import Capability, Predictor, capabilities_of
from interpkit.errors import InputError
from interpkit.probe import Geometry, WindowPacking, choose_window_packing
from interpkit_neuronmotif.stack import NeuronStack

__all__ = ["Neuron", "one_hot"]

#: Windows per call into the backend (bounded so that 100,000-window archives stream).
_CHUNK = 8192


def one_hot(codes: np.ndarray) -> np.ndarray:
    """(M, R) codes 0-3 -> (M, 4, R) one-hot float32."""
    return (codes[:, None, :] == np.arange(4, dtype=codes.dtype)[None, :, None]).astype(np.float32)


class Neuron:
    """Channel ``channel`` of the stack's target stage, evaluated on windows.

    Parameters
    ----------
    model : Predictor with LayerProbe
        Any backend with the NEURON capability (LAYERS for the demixing features; GRADIENT for the
        gradient-guided mutation).
    stack : NeuronStack
        From :func:`~interpkit_neuronmotif.stack.neuron_stack`.
    channel : int
        0-based channel of the target stage.
    lock : threading.Lock or None
        Held during every model call, when neurons run on several threads (backends' layer probes, e.g.
        PyTorch's forward hooks, are not thread-safe). Default is None.

    Attributes
    ----------
    passes : float
        Seconds spent inside the model's forward and backward passes (for the bench).
    calls : int
        Windows evaluated (values and gradients).
    """

    def __init__(self, model: Predictor, stack: NeuronStack, channel: int, lock: Any = None) -> None:
        self.model, self.stack, self.channel, self.lock = model, stack, channel, lock
        self.has_gradient = Capability.GRADIENT in capabilities_of(model)
        target = stack.target
        self.begin = stack.begin  # input offset of the window
        length = model.input_spec.length
        self.length = length or self.begin + stack.receptive_field
        if self.begin + stack.receptive_field > self.length:
            raise InputError(f"layer {target.conv!r}: its receptive field ({stack.receptive_field} bp) does not fit "
                             f"in the model's {self.length}-bp input at offset {self.begin}.")
        self.passes = 0.0
        self.calls = 0
        self._layouts: dict[int, WindowPacking] = {}  # stage -> window layout of its features

    def _chunks(self, codes: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        for a in range(0, len(codes), _CHUNK):
            sl = slice(a, min(a + _CHUNK, len(codes)))
            yield sl, one_hot(codes[sl])

    def _timed(self, fn, *args, **kwargs):
        with self.lock or contextlib.nullcontext():
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            self.passes += time.perf_counter() - t
        return out

    def values(self, codes: np.ndarray) -> np.ndarray:
        """The neuron's value on each window: (M, R) codes -> (M,) float32 (pre-activation, post-norm)."""
        out = np.empty(len(codes), dtype=np.float32)
        value = self.stack.target.value_layer
        for sl, W in self._chunks(codes):
            out[sl] = self._timed(self.model.neuron, value, self.channel, W)
        self.calls += len(codes)
        return out

    def gradients(self, codes: np.ndarray) -> np.ndarray:
        """d value / d window: (M, R) codes -> (M, 4, R) float32.

        Raises
        ------
        InputError
            If the backend has no gradients (use the gradient-free mutation instead).
        """
        if not self.has_gradient:
            raise InputError("this backend has no gradients; NeuronMotif's GA then uses its gradient-free mutation.")
        out = np.empty((len(codes), 4, codes.shape[1]), dtype=np.float32)
        value = self.stack.target.value_layer
        for sl, W in self._chunks(codes):
            out[sl] = self._timed(self.model.neuron_gradient, value, self.channel, W)
        self.calls += len(codes)
        return out

    def features(self, codes: np.ndarray, level: int) -> np.ndarray:
        """Stage ``level``'s values at the positions inside each window: (M, R) -> (M, P_l * C_l) float32.

        These are the maps entering the max-pool after stage ``level``, before the activation (the
        reference code clusters these pre-activation values, Wei et al. 2023), flattened position-major.
        Several windows go into one input where that gives the same features (checked once per stage on
        a few windows, :func:`interpkit.probe.choose_window_packing`).
        """
        if level not in self._layouts:
            t = self.stack.target
            probe = codes[:4]
            self._layouts[level] = choose_window_packing(
                lambda pack: self._features(probe, level, pack), Geometry(t.receptive_field, t.jump, t.start),
                self.model.input_spec.length, layer=self.stack.stages[level].conv, short=False)
        return self._features(codes, level, self._layouts[level])

    def _features(self, codes: np.ndarray, level: int, pack: WindowPacking) -> np.ndarray:
        stage = self.stack.stages[level]
        slots = [self.stack.positions(level, pack.begin + t * pack.spacing) for t in range(pack.per)]
        parts = []
        for a in range(0, len(codes), _CHUNK):
            chunk = codes[a:a + _CHUNK]
            A = self._timed(self.model.activations, pack.pack(one_hot(chunk)), stage.value_layer,
                            pre_activation=stage.fused_activation is not None)  # (rows, C, L_l)
            per_window = np.stack([A[:, :, where] for where in slots], axis=1)  # (rows, per, C, P_l)
            parts.append(np.ascontiguousarray(per_window.transpose(0, 1, 3, 2)).reshape(-1, self.stack.feature_width(
                level))[:len(chunk)])
        return np.concatenate(parts) if parts else np.empty((0, self.stack.feature_width(level)), dtype=np.float32)
