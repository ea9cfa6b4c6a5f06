"""Small models with known answers, shared by several test modules."""

from __future__ import annotations

import numpy as np

from interpkit import InputSpec, Predictor

BASES = "ACGT"


def match_pwm(word: str, match: float = 1.0, mismatch: float = -1.0) -> np.ndarray:
    """A (4, w) PWM scoring +match for the word's base and mismatch otherwise."""
    pwm = np.full((4, len(word)), mismatch)
    for j, base in enumerate(word):
        pwm[BASES.index(base), j] = match
    return pwm


def window_scores(seq: str, pwm: np.ndarray) -> list[float]:
    """Independent oracle: PWM score of every window of a string (N scores 0), by plain loops."""
    w = pwm.shape[1]
    scores = []
    for i in range(len(seq) - w + 1):
        total = 0.0
        for j in range(w):
            base = seq[i + j].upper()
            if base in BASES:
                total += pwm[BASES.index(base), j]
        scores.append(total)
    return scores


def revcomp(seq: str) -> str:
    """Reverse complement of an ACGTN string, written out independently of interpkit."""
    return seq.translate(str.maketrans("ACGTN", "TGCAN"))[::-1]


class SumModel(Predictor):
    """Outputs the base counts (A, C, G, T) of each sequence: y.sum() == X.sum(); no gradient."""

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec()

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(BASES)

    def predict(self, X, *, batch_size=None):
        from interpkit.validation import check_one_hot

        return check_one_hot(X).sum(axis=2)
