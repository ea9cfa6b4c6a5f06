"""Adapting canonical one-hot input to a model's own input, and its outputs to (N, T).

Every backend uses these, so that layouts, alphabet orders and output reductions mean
the same thing everywhere. Canonical input is (N, 4, L) float32 in alphabet order
A,C,G,T (A,C,G,U for RNA); a model may want another layout (see
:data:`interpkit.predictor.LAYOUTS`), another alphabet order (Kipoi DeepSEA: A,G,C,T)
or another dtype. Gradients come back through :func:`from_model_layout`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interpkit.errors import InputError, InputTypeError, MissingFileError
from interpkit.predictor import LAYOUTS

__all__ = [
    "OutputReduction",
    "alphabet_permutation",
    "auto_batch_size",
    "check_output_names",
    "from_model_layout",
    "infer_layout",
    "read_output_names",
    "resolve_alphabet",
    "to_model_layout",
]


def infer_layout(shape: Sequence[int | None], *, alphabet_size: int = 4) -> tuple[str, int | None]:
    """Infer the layout and the sequence length from a model's declared input shape.

    Parameters
    ----------
    shape : sequence of int or None
        The input shape including the batch axis, None for unknown sizes, e.g.
        (None, 200, 4) for a Keras Conv1D model or (None, 4, 600, 1) for Kipoi Basset.
    alphabet_size : int
        Default is 4.

    Returns
    -------
    (layout, length)
        layout in :data:`~interpkit.predictor.LAYOUTS`; length in bp or None (any).

    Raises
    ------
    InputError
        If the shape fits no layout or several (e.g. (None, 4, 4), or an unknown size
        beside the alphabet axis); the message asks for ``layout=...``.
    """
    dims = list(shape)[1:]
    a = alphabet_size
    candidates: list[tuple[str, int | None]] = []
    if len(dims) == 2:
        if dims[0] == a:
            candidates.append(("NCL", dims[1]))
        if dims[1] == a:
            candidates.append(("NLC", dims[0]))
    elif len(dims) == 3:
        if dims[0] == a and dims[1] == 1:
            candidates.append(("NC1L", dims[2]))
        if dims[0] == a and dims[2] == 1:
            candidates.append(("NCL1", dims[1]))
    if len(candidates) != 1:
        found = "none" if not candidates else " or ".join(c[0] for c in candidates)
        raise InputError(
            f"cannot tell the layout of an input of shape {tuple(shape)} (fits {found}); pass layout= one of "
            f"{', '.join(LAYOUTS)} (--layout)."
        )
    layout, length = candidates[0]
    if length is not None and (length == 1 and layout in ("NCL", "NLC")):
        raise InputError(f"input of shape {tuple(shape)} has length 1; pass layout= explicitly.")
    return layout, length


def alphabet_permutation(model_alphabet: str | None, alphabet: str = "ACGT") -> np.ndarray:
    """Index array ``p`` with ``X_model[:, j] = X[:, p[j]]`` (canonical -> model channel order).

    Raises
    ------
    InputError
        If ``model_alphabet`` is not an ordering of ``alphabet``.
    """
    if model_alphabet is None:
        return np.arange(len(alphabet))
    order = model_alphabet.upper()
    if sorted(order) != sorted(alphabet):
        repeated = sorted({c for c in order if order.count(c) > 1})
        problems = [f"{len(order)} letters" if len(order) != len(alphabet) else "",
                    f"repeats {''.join(repeated)}" if repeated else "",
                    f"lacks {''.join(c for c in alphabet if c not in order)}" if set(alphabet) - set(order) else "",
                    f"has {''.join(sorted(set(order) - set(alphabet)))}" if set(order) - set(alphabet) else ""]
        raise InputError(f"alphabet == {model_alphabet!r} is not an ordering of {alphabet!r} "
                         f"({', '.join(p for p in problems if p)}); pass the model's channel order, each of "
                         f"{', '.join(alphabet)} once (e.g. 'AGCT'), as alphabet= (--alphabet).")
    return np.array([alphabet.index(c) for c in model_alphabet.upper()])


def to_model_layout(X: np.ndarray, layout: str, *, model_alphabet: str | None = None, alphabet: str = "ACGT",
                    dtype: str = "float32") -> np.ndarray:
    """Convert canonical one-hot (N, 4, L) to the model's layout, channel order and dtype.

    Parameters
    ----------
    X : ndarray of shape (N, 4, L)
    layout : {"NCL", "NLC", "NC1L", "NCL1"}
    model_alphabet : str or None
        Channel order of the model ("AGCT"); None keeps ``alphabet``. Default is None.
    alphabet : str
        Canonical alphabet. Default is "ACGT".
    dtype : str
        Default is "float32".

    Returns
    -------
    ndarray
        (N, 4, L), (N, L, 4), (N, 4, 1, L) or (N, 4, L, 1), contiguous; ``X`` itself (no copy)
        when it already is in that form. A torch tensor X gives a contiguous tensor of its own
        dtype (``dtype`` ignored) by indexing and views, so gradients flow through it.

    Raises
    ------
    InputError
        For an unknown layout or alphabet order.
    """
    if model_alphabet is not None and model_alphabet.upper() != alphabet:
        X = X[:, alphabet_permutation(model_alphabet, alphabet)]
    if layout == "NCL":
        out = X
    elif layout == "NLC":
        out = X.swapaxes(1, 2)
    elif layout == "NC1L":
        out = X[:, :, None, :]
    elif layout == "NCL1":
        out = X[:, :, :, None]
    else:
        raise InputError(f"layout == {layout!r}, must be one of {', '.join(LAYOUTS)}.")
    return np.ascontiguousarray(out, dtype=dtype) if isinstance(out, np.ndarray) else out.contiguous()


def from_model_layout(G: np.ndarray, layout: str, *, model_alphabet: str | None = None,
                      alphabet: str = "ACGT") -> np.ndarray:
    """Inverse of :func:`to_model_layout` (for gradients): back to canonical (N, 4, L) float32.

    Raises
    ------
    InputError
        For an unknown layout or alphabet order.
    """
    if layout == "NCL":
        out = G
    elif layout == "NLC":
        out = G.transpose(0, 2, 1)
    elif layout in ("NC1L", "NCL1"):
        out = G.reshape(G.shape[0], G.shape[1], -1)
    else:
        raise InputError(f"layout == {layout!r}, must be one of {', '.join(LAYOUTS)}.")
    inverse = np.argsort(alphabet_permutation(model_alphabet, alphabet))
    return np.ascontiguousarray(out[:, inverse], dtype=np.float32)


@dataclass(frozen=True)
class OutputReduction:
    """How a model's per-position output becomes one value per output channel: (N, C, P) -> (N, T).

    Attributes
    ----------
    positions : str
        Where the position axis of the raw output is: "last" for (N, C, P) (PyTorch
        convention), "middle" for (N, P, C) (Keras convention). Default is "last".
    window : tuple of (int or None) or None
        Half-open range [start, end) of output positions to keep (negative values
        count from the end, None for an open end, as in Python slicing); None keeps
        all. Default is None.
    reduce : {"mean", "max", "sum", "center"}
        How the kept positions are combined; "center" takes the middle position of the
        window. Default is "mean".
    channels : tuple of int or None
        Output channels kept, in this order; None keeps all. Default is None.

    Notes
    -----
    :meth:`apply` runs the rule on numpy arrays and torch tensors alike, so the torch and
    ONNX backends share it and gradients flow through it.
    """

    positions: str = "last"
    window: tuple[int, int] | None = None
    reduce: str = "mean"
    channels: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.positions not in ("last", "middle"):
            raise InputError(f"OutputReduction.positions == {self.positions!r}, must be 'last' or 'middle'.")
        if self.reduce not in ("mean", "max", "sum", "center"):
            raise InputError(f"OutputReduction.reduce == {self.reduce!r}, must be 'mean', 'max', 'sum' or 'center'.")
        if self.window is not None and len(self.window) != 2:
            raise InputError(f"OutputReduction.window == {self.window!r}, must be (start, end).")
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    def check_shape(self, shape: Sequence[int]) -> None:
        """Validate a raw output shape (N, C, P) or (N, P, C) against the rule.

        Raises
        ------
        InputError
            If the window is empty or a channel index is out of range.
        """
        if len(shape) != 3:
            raise InputError(f"per-position output must have 3 axes, got shape {tuple(shape)}.")
        n_channels, n_positions = (shape[1], shape[2]) if self.positions == "last" else (shape[2], shape[1])
        start, end, _ = slice(*(self.window or (None, None))).indices(n_positions)
        if end <= start:
            raise InputError(f"output window {self.window} selects no positions of {n_positions}.")
        if self.channels is not None and not all(-n_channels <= c < n_channels for c in self.channels):
            raise InputError(f"output channels {self.channels} out of range for {n_channels} channels.")

    def apply(self, y: Any) -> Any:
        """Reduce a raw output (N, C, P) or (N, P, C) to (N, T) by this rule.

        Works on numpy arrays (returns float32 ndarray) and on torch tensors (returns a
        tensor, so gradients flow through the reduction), using only operations both
        share; TensorFlow backends apply the same rule with their own ops.

        Raises
        ------
        InputError
            As :meth:`check_shape`.
        """
        self.check_shape(tuple(y.shape))
        is_numpy = isinstance(y, np.ndarray)
        if self.positions == "middle":
            y = y.swapaxes(1, 2)
        if self.window is not None:
            y = y[:, :, slice(*self.window)]
        if self.channels is not None:
            y = y[:, list(self.channels)]
        if self.reduce == "center":
            out = y[:, :, (y.shape[2] - 1) // 2]
        elif self.reduce == "max":
            out = y.max(axis=2) if is_numpy else y.amax(2)
        else:
            out = getattr(y, self.reduce)(2)
        return np.asarray(out, dtype=np.float32) if is_numpy else out

    @classmethod
    def parse(cls, text: str, *, positions: str = "last") -> OutputReduction:
        """Parse the CLI form ``[NCP:|NPC:]REDUCE[:START:END][@C1,C2,...]``.

        Examples: ``mean`` (all positions, all channels), ``max:4000:6000@1,2``
        (channels 1 and 2, positions 4000-5999), ``center@0``, ``mean:-100:@2``. The
        optional prefix states the raw output's axis order, (N, C, P) or (N, P, C), and
        overrides ``positions``, the backend's convention (PyTorch: NCP; Keras: NPC).

        Raises
        ------
        InputError
            If the text does not follow the form.
        """
        prefix, colon, rest = text.partition(":")
        if colon and prefix.upper() in ("NCP", "NPC"):
            positions, text = ("last" if prefix.upper() == "NCP" else "middle"), rest
        spec, _, chans = text.partition("@")
        parts = spec.split(":")
        try:
            if len(parts) not in (1, 3):
                raise ValueError("give REDUCE or REDUCE:START:END")
            window = None if len(parts) == 1 else tuple(int(p) if p else None for p in parts[1:])
            channels = tuple(int(c) for c in chans.split(",")) if chans else None
        except ValueError as exc:
            raise InputError(f"--output {text!r} is not REDUCE[:START:END][@C1,C2] (e.g. 'max:4000:6000@1,2'): "
                             f"{exc}.") from None
        return cls(positions=positions, window=window, reduce=parts[0], channels=channels)

    def describe(self) -> str:
        """One line, e.g. "mean over positions 0:-1 of channels (1, 2)"."""
        where = "all positions" if self.window is None else f"positions {self.window[0]}:{self.window[1]}"
        what = "all channels" if self.channels is None else f"channels {self.channels}"
        return f"{self.reduce} over {where} of {what}"


#: Activation bytes per batch beyond which CPU passes slow down (cache and memory traffic): measured on
#: the real ExplaiNN checkpoint (2 cores), 4,096-sequence batches (1.7 GB) ran at 40% of the speed of
#: 128-256-sequence batches (50-100 MB); Basset's speed is flat from 32 to 1,024 sequences.
CPU_BATCH_BYTES = 128 << 20


def auto_batch_size(bytes_per_sequence: int, *, fraction: float = 0.1, minimum: int = 1, maximum: int = 4096,
                    cap_bytes: int | None = CPU_BATCH_BYTES) -> int:
    """A batch size that keeps one batch's activations within a fraction of available memory.

    Parameters
    ----------
    bytes_per_sequence : int
        Peak memory one sequence needs in a forward pass (backends estimate it, e.g.
        the sum of activation sizes).
    fraction : float
        Share of the currently available RAM one batch may use. Default is 0.1.
    minimum, maximum : int
        Bounds. Defaults are 1 and 4096.
    cap_bytes : int or None
        Most activation bytes per batch (CPU passes run fastest below it); None for no cap.
        Default is :data:`CPU_BATCH_BYTES` (128 MiB).

    Returns
    -------
    int
    """
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 2 GiB free
        available = 2 << 30
    size = int(available * fraction // max(1, bytes_per_sequence))
    if cap_bytes is not None:
        size = min(size, cap_bytes // max(1, bytes_per_sequence))
    return max(minimum, min(maximum, size))


def resolve_alphabet(alphabet: Any) -> tuple[str, str | None]:
    """Split the ``alphabet`` option into (canonical alphabet, model's channel order or None).

    Parameters
    ----------
    alphabet : str or None
        The model's own channel order, e.g. "AGCT" (Kipoi DeepSEA) or "ACGU" (RNA); None
        means canonical ACGT.

    Returns
    -------
    (str, str or None)
        "ACGT" or "ACGU", and the model's order when it differs from that.

    Raises
    ------
    InputTypeError
        If ``alphabet`` is not a str.
    InputError
        If it is not an ordering of ACGT or ACGU.
    """
    if alphabet is None:
        return "ACGT", None
    if not isinstance(alphabet, str):
        raise InputTypeError(f"alphabet must be a str such as 'AGCT', got {type(alphabet).__name__}.")
    order = alphabet.upper()
    canonical = "ACGU" if "U" in order else "ACGT"
    alphabet_permutation(order, canonical)
    return canonical, (None if order == canonical else order)


def read_output_names(output_names: Any = None, labels: Any = None) -> tuple[str, ...] | None:
    """The output names a user gave, as a list or as a labels file (one name per line); None if neither.

    Raises
    ------
    InputError
        If both are given, or the labels file holds no names.
    MissingFileError
        If the labels file does not exist.
    InputTypeError
        If ``output_names`` is not a sequence of str.
    """
    if output_names is not None and labels is not None:
        raise InputError("give output_names= or labels= (--labels), not both.")
    if labels is not None:
        if not os.path.isfile(labels):
            raise MissingFileError(f"labels file {labels} does not exist.")
        text = Path(labels).read_text(encoding="utf-8-sig")
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if not names:
            raise InputError(f"labels file {labels} holds no names; write one output name per line.")
        return tuple(names)
    if output_names is None:
        return None
    if isinstance(output_names, str) or not isinstance(output_names, Sequence):
        raise InputTypeError(f"output_names must be a sequence of str, got {type(output_names).__name__}.")
    return tuple(str(n) for n in output_names)


def check_output_names(names: Sequence[str], n_outputs: int, model_name: str) -> tuple[str, ...]:
    """Check that ``names`` gives one distinct name per output; returns them as a tuple.

    Raises
    ------
    InputError
        If the count differs from ``n_outputs`` or a name repeats.
    """
    if len(names) != n_outputs or len(set(names)) != len(names):
        raise InputError(f"{len(names)} output name(s) given for model {model_name}, which has {n_outputs} outputs; "
                         "give one distinct name per output (one per line in --labels).")
    return tuple(names)
