"""The analytic PWM-scanning model: every output and gradient in closed form.

For motifs m = 1..M with PWMs P_m of shape (4, w_m) (log2-odds), a one-hot sequence
X of shape (4, L) gets window scores

    S[m, i] = sum_{b, j < w_m} P_m[b, j] * X[b, i + j],        i = 0 .. L - w_m

(with ``both_strands`` the larger of S and the same score of the reverse-complement
PWM on the same window), and output m is ``max_i S[m, i]`` (reduction "max") or
``sum_i S[m, i]`` ("sum"), in bits. An all-zero (N) column contributes 0. Every motif
is scanned over all of its own windows, whatever the widths of the others. This is the scoring of
Stormo (2000), Bioinformatics 16:16-23, written as a one-layer convolutional model.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from interpkit import InputSpec, LayerInfo, LayerProbe, Predictor
from interpkit.errors import CapabilityError, InputError
from interpkit.predictor import TorchFunction
from interpkit.probe import resolve_layer
from interpkit.validation import check_choice, check_index, check_one_hot, check_scalar

__all__ = ["PWMScanModel", "load"]

_DEFAULT_BATCH = 1024


class PWMScanModel(Predictor, LayerProbe):
    """Scan one-hot sequences with PWMs; one output per PWM.

    Parameters
    ----------
    pwms : sequence of array-like of shape (4, w_m)
        Log-odds matrices in bits, alphabet first. Must be finite; widths may differ.
    names : sequence of str
        Output names, one per PWM.
    reduction : {"max", "sum"}
        How window scores become the output. Default is "max".
    both_strands : bool
        Score each window as the larger of the forward and reverse-complement PWM
        scores. Default is False.
    alphabet : {"ACGT", "ACGU"}
        Default is "ACGT".

    Raises
    ------
    InputError
        For non-finite PWMs (pass a pseudocount when converting from PPMs), a wrong
        number of names, or an unknown reduction.

    Notes
    -----
    Layers: ``scan`` (conv, kernel w = the widest PWM, M channels: the window scores
    S at i = 0 .. L - min_m w_m, and -inf where motif m does not fit, i > L - w_m) and
    ``pool`` (global max or sum over the valid windows). Sequences must be at least w bp.
    """

    backend_name = "numpy"

    def __init__(
        self,
        pwms: Sequence[np.ndarray],
        names: Sequence[str],
        *,
        reduction: str = "max",
        both_strands: bool = False,
        alphabet: str = "ACGT",
        model_name: str = "PWMScanModel",
    ) -> None:
        mats = [np.asarray(p, dtype=np.float64) for p in pwms]
        if not mats or any(m.ndim != 2 or m.shape[0] != 4 for m in mats):
            raise InputError("pwms must be a non-empty list of (4, w) matrices.")
        if not all(np.isfinite(m).all() for m in mats):
            raise InputError("pwms hold -inf or NaN; convert PPMs with a pseudocount (e.g. ppm_to_pwm(p, pseudocount=0.01)).")
        if len(names) != len(mats):
            raise InputError(f"{len(names)} names for {len(mats)} PWMs; give one name per PWM.")
        self.reduction = check_choice(reduction, "reduction", ("max", "sum"))
        self.both_strands = bool(both_strands)
        width = max(m.shape[1] for m in mats)
        self.widths = np.array([m.shape[1] for m in mats])
        # Right-padded forward and reverse-complement PWMs: both start at the window's first base.
        self.pwms = np.zeros((len(mats), 4, width))
        self.pwms_rc = np.zeros((len(mats), 4, width))
        for k, m in enumerate(mats):
            self.pwms[k, :, : m.shape[1]] = m
            self.pwms_rc[k, :, : m.shape[1]] = m[::-1, ::-1]
        for arr in (self.pwms, self.pwms_rc, self.widths):
            arr.setflags(write=False)
        self._names = tuple(names)
        self._spec = InputSpec(alphabet=alphabet, length=None, min_length=width)  # the receptive field
        self._model_name = model_name

    @classmethod
    def from_meme(
        cls,
        path: str | os.PathLike,
        *,
        pseudocount: float = 0.01,
        reduction: str = "max",
        both_strands: bool = False,
    ) -> PWMScanModel:
        """Build the model from a MEME motif file.

        PWMs are ``ppm_to_pwm(ppm, background=<the file's background>, pseudocount=pseudocount)``;
        outputs are named "<id> <name>".

        Parameters
        ----------
        path : path-like
        pseudocount : float
            Probability mass mixed in before the log (keeps PWMs finite). Default is 0.01.
        reduction, both_strands
            As in the class. Defaults are "max" and False.

        Raises
        ------
        MissingFileError, InputError
            From :func:`interpkit.meme.read_meme` for a missing or malformed file.
        """
        from interpkit.meme import read_meme

        check_scalar(pseudocount, "pseudocount", (int, float), min_val=0)
        meme = read_meme(path)
        pwms = [m.pwm(background=meme.background, pseudocount=pseudocount) for m in meme.motifs]
        names = [f"{m.id} {m.name}".strip() for m in meme.motifs]
        return cls(pwms, names, reduction=reduction, both_strands=both_strands, alphabet=meme.alphabet,
                   model_name=Path(path).name)

    # -- Predictor ---------------------------------------------------------------
    @property
    def input_spec(self) -> InputSpec:
        return self._spec

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def name(self) -> str:
        return self._model_name

    @property
    def width(self) -> int:
        """Common PWM width w in bp (the receptive field of ``scan``)."""
        return self.pwms.shape[2]

    def _check(self, X: np.ndarray, name: str = "X") -> np.ndarray:
        X = check_one_hot(X, name, dtype=np.float64)
        if X.shape[2] < self.width:
            raise InputError(
                f"{name} has length {X.shape[2]} bp, shorter than the receptive field ({self.width} bp); "
                "give longer sequences."
            )
        return X

    def _scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window scores (N, M, L - w_min + 1), -inf where a motif does not fit, and which strand won."""
        length = X.shape[2]
        extra = self.width - int(self.widths.min())
        padded = np.pad(X, ((0, 0), (0, 0), (0, extra)))  # lets the shortest motif reach the end
        windows = sliding_window_view(padded, self.width, axis=2)  # (N, 4, L - w_min + 1, w)
        fwd = np.einsum("nbiw,mbw->nmi", windows, self.pwms)
        rev = np.einsum("nbiw,mbw->nmi", windows, self.pwms_rc) if self.both_strands else fwd
        fits = np.arange(fwd.shape[2])[None, :] <= (length - self.widths)[:, None]  # (M, windows)
        return np.where(fits, np.maximum(fwd, rev), -np.inf), rev > fwd

    def _batches(self, n: int, batch_size: int | None) -> list[slice]:
        size = check_scalar(batch_size, "batch_size", int, min_val=1) if batch_size is not None else _DEFAULT_BATCH
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def predict(self, X: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        X = self._check(X)
        out = np.empty((len(X), len(self._names)), dtype=np.float32)
        for sl in self._batches(len(X), batch_size):
            scores, _ = self._scores(X[sl])
            out[sl] = scores.max(axis=2) if self.reduction == "max" else np.where(np.isinf(scores), 0, scores).sum(axis=2)
        return out

    def gradient(self, X: np.ndarray, target: int, *, batch_size: int | None = None) -> np.ndarray:
        X = self._check(X)
        t = check_index(target, "target", len(self._names), labels=self._names)
        w = int(self.widths[t])
        fwd, rev = self.pwms[t, :, :w], self.pwms_rc[t, :, :w]
        grad = np.zeros_like(X)
        for sl in self._batches(len(X), batch_size):
            scores, is_rev = self._scores(X[sl])
            is_rev = is_rev[:, t]
            rows = np.arange(sl.start, sl.stop)
            if self.reduction == "max":
                best = scores[:, t].argmax(axis=1)  # first maximum, a valid subgradient
                for n, i in zip(rows, best):
                    grad[n, :, i : i + w] = rev if is_rev[n - sl.start, i] else fwd
            else:
                for i in range(X.shape[2] - w + 1):
                    grad[rows, :, i : i + w] += np.where(is_rev[:, i, None, None], rev, fwd)
        return grad.astype(np.float32)

    @contextlib.contextmanager
    def torch_function(self) -> Iterator[TorchFunction]:
        """The same scan in torch (float64, CPU), for methods that rewrite gradients (DeepLIFT).

        ``forward`` maps canonical (rows, 4, L) tensors to (rows, M): a convolution with the
        right-padded PWMs, the strand maximum as ``amax`` over a stacked axis, windows where a motif
        does not fit masked, then ``amax`` or a sum over windows; the max operations are visible to
        DeepLIFT's max rule.

        Raises
        ------
        CapabilityError
            If torch is not installed.
        """
        try:
            import torch
            import torch.nn.functional as F
        except ImportError:
            raise CapabilityError("the PWM model's torch form needs torch; pip install 'interpkit[torch]'.") from None
        pwms, pwms_rc = torch.tensor(self.pwms), torch.tensor(self.pwms_rc)
        extra = self.width - int(self.widths.min())

        def forward(x: Any) -> Any:
            padded = F.pad(x, (0, extra))
            scores = F.conv1d(padded, pwms)
            if self.both_strands:
                scores = torch.stack([scores, F.conv1d(padded, pwms_rc)], dim=-1).amax(dim=-1)
            fits = torch.arange(scores.shape[2])[None, :] <= torch.from_numpy(x.shape[2] - self.widths)[:, None]
            if self.reduction == "sum":
                return scores.masked_fill(~fits, 0).sum(dim=2)
            return scores.masked_fill(~fits, -math.inf).amax(dim=2)

        yield TorchFunction(forward, torch.device("cpu"), torch.float64, "module")

    # -- LayerProbe --------------------------------------------------------------
    def layers(self) -> list[LayerInfo]:
        m = len(self._names)
        return [
            LayerInfo("scan", "conv", kernel_size=self.width, channels=m),
            LayerInfo("pool", "global_pool", channels=m),
        ]

    def activations(
        self, X: np.ndarray, layer: str | int, *, pre_activation: bool = False, batch_size: int | None = None
    ) -> np.ndarray:
        index, _ = resolve_layer(self.layers(), layer)
        if index == 1:
            return self.predict(X, batch_size=batch_size)[:, :, None]
        X = self._check(X)
        return np.concatenate([self._scores(X[sl])[0] for sl in self._batches(len(X), batch_size)]).astype(np.float32)

    def _window_scores(self, layer: str | int, channel: int, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index, info = resolve_layer(self.layers(), layer)
        if index != 0:
            raise InputError(f"layer {info.name!r} sees the whole input; single neurons exist only for 'scan'.")
        channel = check_index(channel, "channel", len(self._names))
        W = check_one_hot(W, "W", length=self.width, dtype=np.float64)
        scores, is_rev = self._scores(W)
        return scores[:, channel, 0], is_rev[:, channel, 0]

    def neuron(self, layer: str | int, channel: int, W: np.ndarray) -> np.ndarray:
        return self._window_scores(layer, channel, W)[0].astype(np.float32)

    def neuron_gradient(self, layer: str | int, channel: int, W: np.ndarray) -> np.ndarray:
        _, is_rev = self._window_scores(layer, channel, W)
        return np.where(is_rev[:, None, None], self.pwms_rc[channel], self.pwms[channel]).astype(np.float32)


def load(
    source: object, *, pseudocount: float | None = None, reduction: str | None = None, both_strands: bool | None = None
) -> PWMScanModel:
    """Backend loader: a MEME file (options as :meth:`PWMScanModel.from_meme`) or a model object.

    Raises
    ------
    InputError
        For an unsupported source, or options given with an in-memory model.
    """
    options = {k: v for k, v in (("pseudocount", pseudocount), ("reduction", reduction),
                                 ("both_strands", both_strands)) if v is not None}
    if isinstance(source, PWMScanModel):
        if options:
            raise InputError(f"options {sorted(options)} apply only when loading a MEME file.")
        return source
    if isinstance(source, (str, os.PathLike)):
        return PWMScanModel.from_meme(source, **options)
    raise InputError(f"the numpy backend loads MEME files or PWMScanModel objects, not {type(source).__name__}.")
