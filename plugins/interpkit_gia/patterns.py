"""What GIA embeds: patterns (fixed, IUPAC or PPM-sampled), where (fixed or random start), on which strand.

A *pattern* is what is written into a background sequence; a *placement* is a pattern at a position on a
strand; an *intervention* is one or several placements applied together to every background (one row of
a GIA experiment). Draws are in symbol codes 0-3 (alphabet order A, C, G, T/U); -1 means "keep the
background base here" (an ``N`` in a pattern string, as in the paper's ``UGCAUGNNNUGCAUG``).

Source: Koo, Majdandzic, Ploenzke, Anand & Paul (2021), "Global importance analysis: an interpretability
method to quantify importance of genomic features in deep neural networks", PLoS Comput. Biol.
17:e1008925, Eq. 2 and Discussion ("Generalization of GIA": random positions, occlusion).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interpkit.errors import InputError, InputTypeError
from interpkit.motifs import Motif
from interpkit.validation import check_matrix

__all__ = ["Intervention", "Pattern", "Placement", "centre", "check_fits", "parse_interventions",
           "parse_pattern", "read_motif_file", "sample_columns"]

#: IUPAC codes -> allowed bases in alphabet order (A, C, G, T/U); N keeps the background base.
_IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "U": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT",
    "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "",
}
_PLACEMENT = re.compile(r"^(?P<pattern>[^@]+?)(?:@(?P<position>-?\d+|random))?$")


def centre(length: int, width: int) -> int:
    """The 0-based start that centres ``width`` bp in ``length`` bp, ``(length - width) // 2`` (0 if wider)."""
    return max(0, (length - width) // 2)


def check_fits(pattern: Pattern, position: int, length: int, what: str | None = None) -> int:
    """``position``, after checking that ``pattern`` at it lies inside a ``length``-bp sequence.

    Raises
    ------
    InputError
        If the pattern would run past either end (numpy slicing would silently cut it short).
    """
    if not 0 <= position <= length - pattern.width:
        raise InputError(f"{what + ': ' if what else ''}pattern {pattern.name} ({pattern.width} bp) at position "
                         f"{position} runs outside the {length}-bp sequence; give a start in 0..{length - pattern.width}.")
    return position


def sample_columns(probs: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """n independent draws of every column of a (4, w) probability matrix, by the inverse CDF.

    Returns
    -------
    codes : ndarray of shape (n, w), int8
        0-3 in alphabet order.
    """
    cdf = np.cumsum(probs, axis=0)
    u = rng.random((n, probs.shape[1]))
    return np.minimum((u[:, None, :] >= cdf[None, :3, :]).sum(axis=1), 3).astype(np.int8)


@dataclass(frozen=True, eq=False)
class Pattern:
    """A pattern to embed: a (4, w) matrix of allowed bases, or of probabilities.

    Parameters
    ----------
    name : str
        Label used in row names and tables (the sequence string, or the motif id).
    allowed : ndarray of shape (4, w), bool or None
        For a sequence pattern: the bases each column may take (one for A/C/G/T, several for an IUPAC
        code, drawn uniformly per background; none for N, which keeps the background base).
    ppm : ndarray of shape (4, w), float64 or None
        For a motif: column probabilities; each background gets its own draw (Koo et al. 2021 embed
        fixed strings; sampling a PPM marginalizes over the motif's variability).

    Attributes
    ----------
    width : int
        w, in bp.
    fixed : bool
        True when every background gets the same bases (a string of A/C/G/T/U and N only).
    """

    name: str
    allowed: np.ndarray | None = field(default=None, repr=False)
    ppm: np.ndarray | None = field(default=None, repr=False)

    @property
    def width(self) -> int:
        """w, the number of columns (bp)."""
        return (self.allowed if self.allowed is not None else self.ppm).shape[1]

    @property
    def fixed(self) -> bool:
        """Whether the pattern writes the same bases into every background."""
        return self.allowed is not None and bool((self.allowed.sum(axis=0) <= 1).all())

    def codes(self) -> np.ndarray:
        """The fixed codes, shape (w,), int8: 0-3, or -1 to keep the background (only when ``fixed``)."""
        return np.where(self.allowed.any(axis=0), self.allowed.argmax(axis=0), -1).astype(np.int8)

    def reverse_complement(self) -> Pattern:
        """The pattern on the other strand (complementing = reversing the alphabet axis for ACGT/ACGU)."""
        if self.allowed is not None:
            return Pattern(self.name, allowed=self.allowed[::-1, ::-1].copy())
        return Pattern(self.name, ppm=self.ppm[::-1, ::-1].copy())

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw the bases written into ``n`` backgrounds.

        Returns
        -------
        codes : ndarray of shape (n, w), int8
            0-3 in alphabet order, -1 where the background base is kept.
        """
        if self.ppm is not None:
            return sample_columns(self.ppm, rng, n)
        if self.fixed:
            return np.broadcast_to(self.codes(), (n, self.width)).copy()
        counts = self.allowed.sum(axis=0)  # (w,)
        pick = (rng.random((n, self.width)) * np.maximum(counts, 1)).astype(np.int64)  # k-th allowed base
        order = np.cumsum(self.allowed, axis=0) - 1  # rank of each allowed base within its column
        hit = (order[None] == pick[:, None, :]) & self.allowed[None]
        return np.where(counts > 0, hit.argmax(axis=1), -1).astype(np.int8)


@dataclass(frozen=True)
class Placement:
    """A pattern at a start position on a strand.

    Parameters
    ----------
    pattern : Pattern
    position : int or None
        0-based start of the pattern in the sequence; None draws a start per background, uniformly among
        those that keep the pattern inside the sequence body (marginalizing out position).
    strand : {"+", "-", "random"}
        Default is "+".
    """

    pattern: Pattern
    position: int | None = None
    strand: str = "+"

    @property
    def label(self) -> str:
        """e.g. ``CACGTG@97`` or ``CACGTG@random(-)``."""
        where = "random" if self.position is None else str(self.position)
        strand = "" if self.strand == "+" else f"({self.strand})"
        return f"{self.pattern.name}@{where}{strand}"


@dataclass(frozen=True)
class Intervention:
    """One row of a GIA experiment: placements applied in order (a later one overwrites an earlier one).

    Parameters
    ----------
    placements : tuple of Placement
        May be empty: the row then measures nothing (0 for every background), a useful control.
    label : str
        Row name; default is the placements' labels joined by "+".
    occlude : tuple of (int, int) or None
        Spans [start, end) replaced by bases drawn from the background's position-specific frequencies
        (occlusion, Koo et al. 2021 Discussion), before the placements. Default is None.
    """

    placements: tuple[Placement, ...] = ()
    label: str = ""
    occlude: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "placements", tuple(self.placements))
        if not self.label:
            parts = [p.label for p in self.placements]
            parts += [f"occlude@{a}-{b}" for a, b in self.occlude or ()]
            object.__setattr__(self, "label", "+".join(parts) or "none")


def _from_string(text: str, name: str) -> Pattern:
    letters = text.strip().upper()
    bad = next((c for c in letters if c not in _IUPAC), None)
    if not letters or bad is not None:
        what = f"has {bad!r}, which is not a nucleotide or IUPAC code" if letters else "is empty"
        raise InputError(f"{name} {text!r} {what}; use A, C, G, T (or U), IUPAC codes, N to keep the "
                         "background base, or a motif id from motifs=.")
    allowed = np.zeros((4, len(letters)), dtype=bool)
    for j, c in enumerate(letters):
        for b in _IUPAC[c]:
            allowed["ACGT".index(b), j] = True
    if not allowed.any():
        raise InputError(f"{name} {text!r} is only N (keep the background); give at least one base.")
    return Pattern(letters, allowed=allowed)


def parse_pattern(spec: Any, *, motifs: Sequence[Motif] = (), name: str = "pattern") -> Pattern:
    """Turn a user's pattern into a :class:`Pattern`.

    Parameters
    ----------
    spec : str, Motif, Pattern or array-like of shape (4, w)
        A sequence string (A, C, G, T or U; IUPAC codes R, Y, S, W, K, M, B, D, H, V are drawn uniformly
        among their bases per background; N keeps the background base), the id or name of one of
        ``motifs``, a :class:`~interpkit.motifs.Motif`, or a PPM (alphabet first; columns sum to 1),
        sampled per background.
    motifs : sequence of Motif
        Motifs that a string may name (e.g. read from a MEME file). Default is ().
    name : str
        The argument's name, for messages. Default is "pattern".

    Returns
    -------
    Pattern

    Raises
    ------
    InputError
        For a string that is neither a motif id/name nor IUPAC letters, or a matrix that is not a (4, w)
        PPM.
    InputTypeError
        For any other type.
    """
    if isinstance(spec, Pattern):
        return spec
    if isinstance(spec, Motif):
        return Pattern(spec.id, ppm=np.array(spec.ppm))
    if isinstance(spec, str):
        for motif in motifs:
            if spec in (motif.id, motif.name):
                return Pattern(motif.id, ppm=np.array(motif.ppm))
        return _from_string(spec, name)
    if isinstance(spec, (np.ndarray, list, tuple)):
        ppm = check_matrix(spec, name, probabilities=True)
        return Pattern(f"ppm{ppm.shape[1]}", ppm=ppm / ppm.sum(axis=0, keepdims=True))
    raise InputTypeError(f"{name} must be a sequence string, a Motif or a (4, w) PPM, got {type(spec).__name__}.")


def _position(value: Any, name: str) -> int | None:
    """An int start, or None for "random"."""
    if isinstance(value, str) and value.strip() == "random":
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise InputError(f"{name}: a position must be a 0-based int or 'random', got {value!r}.")


def _placed(pattern: Pattern, where: Any, default: Any, strand: str, length: int | None) -> Placement:
    if where is None:
        where = default
    if where is None:
        if length is None:
            raise InputError("a pattern without a position needs the sequence length to be centred.")
        return Placement(pattern, centre(length, pattern.width), strand)
    return Placement(pattern, _position(where, "position"), strand)


def parse_interventions(spec: Any, *, motifs: Sequence[Motif] = (), position: int | str | None = None,
                        strand: str = "+", length: int | None = None) -> list[Intervention]:
    """Parse the rows of an ``embed`` experiment.

    Parameters
    ----------
    spec : str or sequence
        As a string (the CLI form): rows separated by ",", placements of one row joined by "+", each
        ``PATTERN[@POS]`` with POS a 0-based start or ``random``; e.g. ``"CACGTG,TGTTTAC@50+TGACTCA@120"``
        is two rows. As a sequence: one item per row, each a pattern (see :func:`parse_pattern`), a
        ``(pattern, position)`` tuple, a list of those (several placements) or an :class:`Intervention`.
    motifs : sequence of Motif
        Motifs that pattern strings may name. Default is ().
    position : int, "random" or None
        Start used where a placement gives none: an int, "random" (drawn per background), or None for
        the centre of the sequence, ``(length - w) // 2``. Default is None.
    strand : {"+", "-", "random"}
        Strand of every placement. Default is "+".
    length : int or None
        Sequence length in bp, needed when ``position`` is None. Default is None.

    Returns
    -------
    list of Intervention

    Raises
    ------
    InputError
        For an empty spec, a malformed placement, or a pattern :func:`parse_pattern` rejects.
    InputTypeError
        For items of other types.
    """
    if spec is None or (isinstance(spec, (str, list, tuple)) and len(spec) == 0):
        raise InputError("pattern is empty; give at least one pattern, e.g. pattern='CACGTG' "
                         "(--pattern CACGTG).")
    if isinstance(spec, str):
        rows = []
        for row in spec.split(","):
            placements = []
            for item in row.split("+"):
                match = _PLACEMENT.match(item.strip())
                if match is None:
                    raise InputError(f"pattern item {item!r} must be PATTERN or PATTERN@POS (0-based start) or "
                                     "PATTERN@random, e.g. 'CACGTG@97'.")
                pattern = parse_pattern(match["pattern"], motifs=motifs)
                placements.append(_placed(pattern, match["position"], position, strand, length))
            rows.append(Intervention(tuple(placements)))
        return rows
    if isinstance(spec, (Motif, Pattern, np.ndarray)):
        spec = [spec]
    rows = []
    for item in spec:
        if isinstance(item, Intervention):
            rows.append(item)
            continue
        items = item if isinstance(item, list) else [item]
        placements = []
        for sub in items:
            if isinstance(sub, tuple) and len(sub) == 2 and not isinstance(sub[0], (int, float)):
                pattern, where = parse_pattern(sub[0], motifs=motifs), sub[1]
            else:
                pattern, where = parse_pattern(sub, motifs=motifs), None
            placements.append(_placed(pattern, where, position, strand, length))
        rows.append(Intervention(tuple(placements)))
    return rows


def read_motif_file(path: Any) -> tuple[Motif, ...]:
    """Motifs that pattern strings may name: read from a MEME file, or a list of Motif as given.

    Parameters
    ----------
    path : None, path-like or sequence of Motif
        None gives ().

    Returns
    -------
    tuple of Motif

    Raises
    ------
    InputTypeError
        For any other type.
    MissingFileError, InputError
        From :func:`interpkit.meme.read_meme` for a missing or malformed file.
    """
    if path is None:
        return ()
    if isinstance(path, (list, tuple)) and all(isinstance(m, Motif) for m in path):
        return tuple(path)
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"motifs must be a MEME file path or a list of Motif, got {type(path).__name__}.")
    from interpkit.meme import read_meme

    return tuple(read_meme(path).motifs)
