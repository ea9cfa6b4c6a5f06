"""The ``Predictor`` interface: one-hot sequences in, predictions out, optional gradients.

Backends adapt the canonical input, a float32 one-hot array of shape (N, 4, L) in
alphabet order A,C,G,T (A,C,G,U for RNA), to the model's own layout, alphabet
order, dtype and extra inputs, and reduce its outputs to (N, T). Methods only ever
see the canonical form.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interpkit.errors import CapabilityError, InputError

__all__ = ["LAYOUTS", "Capability", "InputSpec", "Predictor", "TorchFunction", "capabilities_of"]

#: Where the alphabet axis sits in a model's own input. N = batch, C = alphabet
#: channels, L = sequence length; ``NC1L``/``NCL1`` are 2-D convolution layouts
#: (Basset's (N, 4, 600, 1) is ``NCL1``; DeepSEA's (N, 4, 1, 1000) is ``NC1L``).
LAYOUTS = ("NCL", "NLC", "NC1L", "NCL1")


class Capability(str, enum.Enum):
    """What a model can provide; methods declare the ones they need.

    PREDICT
        :meth:`Predictor.predict`, (N, 4, L) -> (N, T).
    GRADIENT
        :meth:`Predictor.gradient`, d output / d input, (N, 4, L).
    LAYERS
        :meth:`interpkit.probe.LayerProbe.layers` and ``activations``.
    NEURON
        :meth:`interpkit.probe.LayerProbe.neuron`: one neuron as a function of its
        receptive-field window (value, and gradient where GRADIENT is present).
    POOL_INPUTS
        :meth:`interpkit.probe.LayerProbe.pool_inputs`: the feature maps entering each max-pool.
    TORCH_FUNCTION
        :meth:`Predictor.torch_function`: the model as a differentiable PyTorch function,
        for methods that rewrite the backward pass (DeepLIFT's rescale rule).
    """

    PREDICT = "predict"
    GRADIENT = "gradient"
    LAYERS = "layers"
    NEURON = "neuron"
    POOL_INPUTS = "pool_inputs"
    TORCH_FUNCTION = "torch_function"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class InputSpec:
    """What a model expects, stated in canonical terms.

    Attributes
    ----------
    alphabet : str
        The canonical one-hot alphabet the model is fed: "ACGT" (DNA) or "ACGU" (RNA).
        Default is "ACGT".
    length : int or None
        Required sequence length in bp, or None when the model accepts any length
        (fully convolutional). Default is None.
    layout : str
        Layout of the model's own input tensor, one of :data:`LAYOUTS`. Informational
        for methods; the backend performs the conversion. Default is "NCL".
    model_alphabet : str or None
        Order of the alphabet in the model's own input (e.g. "AGCT" for Kipoi
        DeepSEA's recoded input), or None when it equals ``alphabet``. Default is None.
    extra_inputs : mapping of str to tuple of int
        Fixed extra inputs the backend supplies itself (e.g. Xpresso's half-life
        features), name -> shape without the batch axis. Default is empty.
    dtype : str
        dtype of the model's own input. Default is "float32".
    min_length : int
        The shortest sequence in bp the model takes when ``length`` is None (e.g. its receptive
        field); sequence readers refuse shorter records by name. Default is 1.
    """

    alphabet: str = "ACGT"
    length: int | None = None
    layout: str = "NCL"
    model_alphabet: str | None = None
    extra_inputs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    dtype: str = "float32"
    min_length: int = 1

    def __post_init__(self) -> None:
        if self.alphabet not in ("ACGT", "ACGU"):
            raise InputError(f"InputSpec.alphabet == {self.alphabet!r}, must be 'ACGT' (DNA) or 'ACGU' (RNA).")
        if self.layout not in LAYOUTS:
            raise InputError(f"InputSpec.layout == {self.layout!r}, must be one of {', '.join(LAYOUTS)}.")
        if self.length is not None and (not isinstance(self.length, int) or self.length < 1):
            raise InputError(f"InputSpec.length == {self.length!r}, must be a positive int or None.")
        if not isinstance(self.min_length, int) or self.min_length < 1:
            raise InputError(f"InputSpec.min_length == {self.min_length!r}, must be a positive int.")
        if self.model_alphabet is not None and sorted(self.model_alphabet) != sorted(self.alphabet):
            raise InputError(
                f"InputSpec.model_alphabet == {self.model_alphabet!r} is not an ordering of {self.alphabet!r}."
            )

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary, as printed by ``interpkit info``."""
        return {
            "alphabet": self.alphabet,
            "length": self.length if self.length is not None else "any",
            "layout": self.layout,
            "model_alphabet": self.model_alphabet or self.alphabet,
            "extra_inputs": {k: list(v) for k, v in self.extra_inputs.items()},
            "dtype": self.dtype,
        }


@dataclass(frozen=True)
class TorchFunction:
    """A model as a differentiable PyTorch function of canonical one-hot input.

    Yielded by :meth:`Predictor.torch_function`. Methods that rewrite gradients (DeepLIFT)
    run ``forward`` under their own torch function mode: every op the model computes is a
    torch op they can see.

    Attributes
    ----------
    forward : callable
        ``forward(x) -> y``: x a torch tensor of shape (rows, 4, L), canonical alphabet
        order, ``dtype``, on ``device``; y a tensor of shape (rows, T), exactly what
        :meth:`Predictor.predict` returns (extra inputs supplied, outputs reduced), with
        gradients flowing to x. Layout and alphabet changes are done inside with torch
        indexing, so they are part of the graph.
    device : torch.device
    dtype : torch.dtype
    source : str
        What runs: "module" (the model's own PyTorch code) or "translation" (a graph or
        layer list of another framework evaluated op by op with torch functions; its
        outputs are checked against the framework's by the backend's tests, and methods
        may check them again on their inputs).
    traceable : bool
        True when every op of ``forward`` is a Python-level torch call that a
        ``torch.overrides.TorchFunctionMode`` sees; False for compiled code (TorchScript).
    """

    forward: Callable[[Any], Any]
    device: Any
    dtype: Any
    source: str = "module"
    traceable: bool = True


class Predictor(abc.ABC):
    """A trained model seen as a function of one-hot sequences.

    Subclasses implement :attr:`input_spec`, :attr:`output_names` and :meth:`predict`;
    those with gradients also override :meth:`gradient`. :attr:`capabilities` is
    derived from which methods a subclass overrides, so a backend never claims more
    than it implements.

    Contract (checked by :func:`interpkit.testing.check_predictor`):

    - ``predict(X)`` with X of shape (N, 4, L), float32, returns a float32 array of
      shape (N, T), T = ``len(output_names)``, without gradients and in batches;
    - results do not depend on batch size and are deterministic;
    - outputs and gradients are finite: a NaN or infinite value raises an InputError naming
      the output and the sequences (:func:`interpkit.validation.check_finite_outputs`);
    - the model object the user passed is left as it was (device, train/eval mode).
    """

    @property
    @abc.abstractmethod
    def input_spec(self) -> InputSpec:
        """What the model expects (alphabet, length, layout, extra inputs)."""

    @property
    @abc.abstractmethod
    def output_names(self) -> Sequence[str]:
        """Names of the T outputs, in column order of :meth:`predict`."""

    @abc.abstractmethod
    def predict(self, X: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Predict outputs for one-hot sequences.

        Parameters
        ----------
        X : ndarray of shape (N, 4, L), float32
            Canonical one-hot sequences (A,C,G,T order; all-zero column = N).
        batch_size : int or None
            Sequences per forward pass; None lets the backend choose. Default is None.

        Returns
        -------
        y : ndarray of shape (N, T), float32
            Model outputs in the model's own units (logits, probabilities, ...).
        """

    def gradient(self, X: np.ndarray, target: int, *, batch_size: int | None = None) -> np.ndarray:
        """Gradient of output ``target`` with respect to the one-hot input.

        Parameters
        ----------
        X : ndarray of shape (N, 4, L), float32
        target : int
            Output column index, 0 <= target < T.
        batch_size : int or None
            Default is None (backend's choice).

        Returns
        -------
        g : ndarray of shape (N, 4, L), float32
            d y[:, target] / d X, in canonical alphabet order.

        Raises
        ------
        CapabilityError
            If the backend has no gradients (the default implementation).
        """
        raise CapabilityError(
            f"{type(self).__name__} has no gradients; use a method that needs only predictions (e.g. ISM)."
        )

    def torch_function(self) -> AbstractContextManager[TorchFunction]:
        """The model as a differentiable PyTorch function, for the duration of a ``with`` block.

        Entering puts the model in inference state (eval mode, its device; parameters need no
        gradient); leaving restores everything the user's model had, even on error.

        Returns
        -------
        context manager yielding :class:`TorchFunction`

        Raises
        ------
        CapabilityError
            If the backend has no PyTorch form of the model (the default implementation).
        """
        raise CapabilityError(
            f"{type(self).__name__} has no PyTorch form; use a method that needs only predictions or gradients."
        )

    @property
    def name(self) -> str:
        """A short human-readable model name (file name or class name)."""
        return type(self).__name__

    @property
    def checkpoint(self) -> Mapping[str, Any]:
        """What the model was loaded from (file, sha256, checksum verdicts, loader notes); {} if unknown.

        Backends and architecture loaders fill it; ``interpkit info`` and reports show it.
        """
        return getattr(self, "_checkpoint", {})

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The capabilities this object implements (see :func:`capabilities_of`)."""
        return capabilities_of(self)


def _overrides(obj: object, method: str, base: type) -> bool:
    impl = getattr(type(obj), method, None)
    return impl is not None and impl is not getattr(base, method, None)


def capabilities_of(model: object) -> frozenset[Capability]:
    """The capabilities a model object implements.

    A capability counts when the object's class overrides the corresponding base
    method (``gradient`` for GRADIENT; ``torch_function`` for TORCH_FUNCTION; ``layers`` and ``activations`` for LAYERS;
    ``neuron`` for NEURON; ``pool_inputs`` for POOL_INPUTS). A model may narrow this
    further by defining ``supported_capabilities`` (e.g. a backend whose gradient
    path needs an optional package).

    Returns
    -------
    frozenset of Capability
    """
    from interpkit.probe import LayerProbe  # local: probe imports this module

    caps: set[Capability] = set()
    if isinstance(model, Predictor):
        caps.add(Capability.PREDICT)
        if _overrides(model, "gradient", Predictor):
            caps.add(Capability.GRADIENT)
        if _overrides(model, "torch_function", Predictor):
            caps.add(Capability.TORCH_FUNCTION)
    if isinstance(model, LayerProbe):
        if _overrides(model, "layers", LayerProbe) and _overrides(model, "activations", LayerProbe):
            caps.add(Capability.LAYERS)
        if _overrides(model, "neuron", LayerProbe):
            caps.add(Capability.NEURON)
        if _overrides(model, "pool_inputs", LayerProbe):
            caps.add(Capability.POOL_INPUTS)
    narrowed = getattr(model, "supported_capabilities", None)
    if narrowed is not None:
        caps &= {Capability(c) for c in narrowed}
    return frozenset(caps)
