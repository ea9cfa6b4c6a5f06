"""Motif matrices: PFM -> PPM -> PWM, information content, consensus, and the ``Motif`` record.

Every matrix has the alphabet on axis 0, shape (4, w), like one-hot sequences (N, 4, L), in the
order A, C, G, T (RNA: A, C, G, U). A PFM holds counts, a PPM probabilities (MEME's
"letter-probability matrix"), a PWM log-odds in bits (log2) against a background, and information
content is in bits. A background is a length-4 probability vector; None means uniform (0.25 each).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interpkit.errors import InputError, InputTypeError
from interpkit.validation import check_choice, check_matrix, check_scalar

__all__ = [
    "ALPHABETS",
    "Motif",
    "check_background",
    "check_motifs",
    "consensus",
    "information_content",
    "pfm_to_ppm",
    "ppm_to_pwm",
]

#: The standard alphabets, in matrix row order. Complementing either is reversing axis 0.
ALPHABETS = ("ACGT", "ACGU")

_WHITESPACE = re.compile(r"\s")


def check_background(background: Any, name: str = "background") -> np.ndarray:
    """Check and convert a background letter distribution.

    Parameters
    ----------
    background : None or array-like of shape (4,)
        Letter probabilities in alphabet order; None means uniform (0.25 each).
    name : str
        The argument's name, used in error messages. Default is "background".

    Returns
    -------
    background : ndarray of shape (4,), float64
        A new array; every entry is > 0 and they sum to 1. Input summing to 1 within 1e-2
        (rounded files) is divided by its sum.

    Raises
    ------
    InputTypeError
        If ``background`` is not numeric.
    InputError
        If it does not have 4 entries, has an entry <= 0 or NaN, or does not sum to 1 within 1e-2.
    """
    if background is None:
        return np.full(4, 0.25)
    try:
        arr = np.array(background, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputTypeError(f"{name} must be 4 letter probabilities (A, C, G, T): {exc}") from None
    if arr.shape != (4,):
        raise InputError(f"{name} has shape {arr.shape} but must be (4,): one probability per letter.")
    if np.isnan(arr).any() or (arr <= 0).any():
        raise InputError(
            f"{name} = {arr.tolist()} has an entry <= 0 or NaN; every letter needs a probability > 0 "
            "(log-odds divide by it)."
        )
    if abs(arr.sum() - 1) > 1e-2:
        raise InputError(f"{name} sums to {arr.sum():.4g} but must sum to 1; divide it by its sum.")
    if abs(arr.sum() - 1) <= 1e-9:  # already normalised: unchanged, so reading back what was written is exact
        return arr
    return arr / arr.sum()  # files round to a few decimals (e.g. 0.292 0.209 0.209 0.292)


def check_motifs(motifs: Any, name: str = "motifs") -> tuple[Motif, ...]:
    """Check that ``motifs`` is a non-empty sequence of :class:`Motif` and return it as a tuple.

    Raises
    ------
    InputTypeError
        If ``motifs`` is a single Motif, a string or not a sequence, or holds a non-Motif.
    InputError
        If ``motifs`` is empty.
    """
    if isinstance(motifs, (Motif, str)) or not isinstance(motifs, Sequence):
        raise InputTypeError(
            f"{name} must be a list of Motif, got {type(motifs).__name__}; wrap a single motif as [motif]."
        )
    for i, m in enumerate(motifs):
        if not isinstance(m, Motif):
            raise InputTypeError(f"{name}[{i}] is {type(m).__name__} but must be an interpkit.motifs.Motif.")
    if not motifs:
        raise InputError(f"{name} is empty; pass at least one Motif.")
    return tuple(motifs)


def _check_pseudocount(pseudocount: Any) -> float:
    return float(check_scalar(pseudocount, "pseudocount", (int, float), min_val=0))


def pfm_to_ppm(pfm: Any, *, pseudocount: float = 0.0, background: Any = None) -> np.ndarray:
    """Turn counts into probabilities, spreading a pseudocount by the background.

    ``p[b, j] = (c[b, j] + pseudocount * background[b]) / (n[j] + pseudocount)`` where
    ``n[j]`` is the total count of column j, as MEME and Biopython
    (``Bio.motifs.matrix.FrequencyPositionMatrix.normalize``) do.

    Parameters
    ----------
    pfm : array-like of shape (4, w)
        Counts (PFM), alphabet on axis 0; non-negative, not necessarily integers.
    pseudocount : float
        Total pseudocount added to each column (>= 0). Default is 0.0.
    background : None or array-like of shape (4,)
        How the pseudocount is shared among letters; None means uniform. Default is None.

    Returns
    -------
    ppm : ndarray of shape (4, w), float64
        Probabilities; each column sums to 1.

    Raises
    ------
    InputTypeError
        If ``pfm`` or ``pseudocount`` is not numeric.
    InputError
        If ``pfm`` is not (4, w), holds a negative count or NaN, or has an all-zero column
        while ``pseudocount`` is 0; or if ``background`` is invalid.
    """
    counts = check_matrix(pfm, "pfm")
    pseudocount = _check_pseudocount(pseudocount)
    bg = check_background(background)
    if (counts < 0).any():
        raise InputError("pfm has negative entries but must hold counts (>= 0).")
    totals = counts.sum(axis=0) + pseudocount
    if (totals == 0).any():
        j = int(np.argmin(totals))
        raise InputError(
            f"pfm column {j} has no counts, so its probabilities are undefined; "
            "pass pseudocount > 0 or remove the column."
        )
    return (counts + pseudocount * bg[:, None]) / totals


def ppm_to_pwm(ppm: Any, *, background: Any = None, pseudocount: float = 0.0) -> np.ndarray:
    """Turn probabilities into log-odds scores in bits (a PWM, or PSSM).

    ``W[b, j] = log2(p'[b, j] / background[b])`` with
    ``p' = (p + pseudocount * background) / (1 + pseudocount)`` (the pseudocount is a fraction of
    one site, spread by the background, as in :func:`pfm_to_ppm`).

    Parameters
    ----------
    ppm : array-like of shape (4, w)
        Probabilities (PPM), alphabet on axis 0; columns sum to 1.
    background : None or array-like of shape (4,)
        Letter probabilities; None means uniform (0.25). Default is None.
    pseudocount : float
        Weight of the background mixed into each column (>= 0). With 0, a zero probability gives
        ``-inf``; pass a small value such as 0.01 (or convert counts with a pseudocount) before
        scanning sequences, so that one mismatch cannot veto a site. Default is 0.0.

    Returns
    -------
    pwm : ndarray of shape (4, w), float64
        Log-odds in bits; ``-inf`` where the probability is 0 and ``pseudocount`` is 0.

    Raises
    ------
    InputTypeError
        If ``ppm`` or ``pseudocount`` is not numeric.
    InputError
        If ``ppm`` is not a (4, w) matrix of probabilities, or ``background`` is invalid.
    """
    p = check_matrix(ppm, "ppm", probabilities=True)
    pseudocount = _check_pseudocount(pseudocount)
    bg = check_background(background)[:, None]
    with np.errstate(divide="ignore"):
        return np.log2((p + pseudocount * bg) / (1 + pseudocount) / bg)


def information_content(ppm: Any, *, background: Any = None) -> np.ndarray:
    """Information content of each motif position, in bits.

    ``IC[j] = sum_b p[b, j] * log2(p[b, j] / background[b])`` with ``0 * log 0 = 0``: the
    relative entropy of the column against the background (Schneider et al., J Mol Biol 188:415,
    1986, without their small-sample correction). With a uniform DNA background it lies in
    [0, 2]: a uniform column has 0 bits, a column with one certain letter 2 bits.

    Parameters
    ----------
    ppm : array-like of shape (4, w)
        Probabilities (PPM), alphabet on axis 0.
    background : None or array-like of shape (4,)
        Letter probabilities; None means uniform (0.25). Default is None.

    Returns
    -------
    ic : ndarray of shape (w,), float64
        Bits per position (>= 0).

    Raises
    ------
    InputTypeError
        If ``ppm`` is not numeric.
    InputError
        If ``ppm`` is not a (4, w) matrix of probabilities, or ``background`` is invalid.
    """
    p = check_matrix(ppm, "ppm", probabilities=True)
    bg = check_background(background)[:, None]
    safe = np.where(p > 0, p, 1.0)
    return np.sum(np.where(p > 0, p * np.log2(safe / bg), 0.0), axis=0)


def consensus(ppm: Any, *, alphabet: str = "ACGT") -> str:
    """The most probable letter at each position (ties go to the earlier letter in ``alphabet``).

    Parameters
    ----------
    ppm : array-like of shape (4, w)
        Probabilities (PPM), PFM or PWM: only the order within each column matters.
    alphabet : {"ACGT", "ACGU"}
        Letters of the rows. Default is "ACGT".

    Returns
    -------
    str
        w letters, as in MEME Tomtom's ``Query_consensus`` column. MEME breaks exact ties
        either way, so the two can differ where a column has two equal maxima.

    Raises
    ------
    InputTypeError
        If ``ppm`` is not numeric.
    InputError
        If ``ppm`` is not (4, w) or ``alphabet`` is not a standard alphabet.
    """
    m = check_matrix(ppm, "ppm")
    check_choice(alphabet, "alphabet", ALPHABETS)
    return "".join(alphabet[i] for i in np.argmax(m, axis=0))


@dataclass(frozen=True, eq=False)
class Motif:
    """A motif: its identifier, its PPM and the metadata MEME files carry.

    Parameters
    ----------
    id : str
        Identifier without whitespace (MEME identifiers cannot hold spaces), e.g. "MA0139.1".
    ppm : array-like of shape (4, w)
        Probabilities, alphabet on axis 0; stored as a read-only float64 copy.
    name : str
        Alternate name, e.g. the TF "CTCF"; runs of whitespace are collapsed to one space.
        Default is "".
    alphabet : {"ACGT", "ACGU"}
        Letters of the rows (DNA or RNA). Default is "ACGT".
    nsites : int or None
        Number of sites the motif was built from; None if unknown. Default is None.
    evalue : float or None
        E-value of the motif from its discovery tool; None if unknown. Default is None.
    url : str or None
        A web page for the motif (no whitespace); None if none. Default is None.

    Attributes
    ----------
    width : int
        Number of positions w.

    Raises
    ------
    InputTypeError
        If a field has the wrong type.
    InputError
        If ``ppm`` is not a (4, w) matrix of probabilities, ``id`` is empty or holds whitespace,
        ``alphabet`` is not standard, ``nsites`` or ``evalue`` is negative, or ``url`` holds
        whitespace.

    Notes
    -----
    Equality compares every field, the matrices exactly (``numpy.array_equal``).
    """

    id: str
    ppm: np.ndarray = field(repr=False)
    name: str = ""
    alphabet: str = "ACGT"
    nsites: int | None = None
    evalue: float | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        check_scalar(self.id, "id", str)
        if not self.id or _WHITESPACE.search(self.id):
            raise InputError(
                f"motif id {self.id!r} must be non-empty without whitespace (MEME cannot store it); "
                "replace spaces with '_' and put a description in name."
            )
        check_scalar(self.name, "name", str)
        check_choice(self.alphabet, "alphabet", ALPHABETS)
        if self.nsites is not None:
            check_scalar(self.nsites, "nsites", (int, np.integer), min_val=0)
        if self.evalue is not None:
            check_scalar(self.evalue, "evalue", (int, float), min_val=0)
        if self.url is not None:
            check_scalar(self.url, "url", str)
            if not self.url or _WHITESPACE.search(self.url):
                raise InputError(f"url {self.url!r} must be non-empty without whitespace, or None.")
        ppm = check_matrix(self.ppm, f"ppm of motif {self.id}", probabilities=True)
        ppm.setflags(write=False)
        object.__setattr__(self, "ppm", ppm)
        object.__setattr__(self, "name", " ".join(self.name.split()))
        if self.nsites is not None:
            object.__setattr__(self, "nsites", int(self.nsites))
        if self.evalue is not None:
            object.__setattr__(self, "evalue", float(self.evalue))

    def _key(self) -> tuple:
        return (self.id, self.name, self.alphabet, self.nsites, self.evalue, self.url)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Motif):
            return NotImplemented
        return self._key() == other._key() and np.array_equal(self.ppm, other.ppm)

    def __hash__(self) -> int:
        return hash((self._key(), self.ppm.shape, self.ppm.tobytes()))

    @property
    def width(self) -> int:
        """Number of positions w (bp)."""
        return self.ppm.shape[1]

    def pwm(self, *, background: Any = None, pseudocount: float = 0.0) -> np.ndarray:
        """Log-odds matrix (4, w) in bits; see :func:`ppm_to_pwm` for the options and errors."""
        return ppm_to_pwm(self.ppm, background=background, pseudocount=pseudocount)

    def information_content(self, *, background: Any = None) -> np.ndarray:
        """Bits per position, shape (w,); see :func:`information_content`."""
        return information_content(self.ppm, background=background)

    def consensus(self) -> str:
        """Most probable letter per position; see :func:`consensus`."""
        return consensus(self.ppm, alphabet=self.alphabet)

    def reverse_complement(self) -> Motif:
        """The motif on the other strand: positions reversed, A<->T(U) and C<->G swapped.

        The id and metadata are kept (it is the same motif); use ``dataclasses.replace`` to
        rename it. Applying it twice gives back an equal motif.
        """
        return Motif(self.id, self.ppm[::-1, ::-1], self.name, self.alphabet, self.nsites, self.evalue, self.url)
