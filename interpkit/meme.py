"""Read and write the MEME minimal motif format (the format Tomtom, FIMO and JASPAR's MEME files use).

The format is specified at https://meme-suite.org/meme/doc/meme-format.html::

    MEME version 4

    ALPHABET= ACGT

    strands: + -

    Background letter frequencies
    A 0.25 C 0.25 G 0.25 T 0.25

    MOTIF MA0139.1 CTCF
    letter-probability matrix: alength= 4 w= 19 nsites= 913 E= 0
    0.0953 0.1829 0.3078 0.4140
    ... (w rows, one per position, alength columns)
    URL https://jaspar.elixir.no/matrix/MA0139.1/

Files store one row per position; :class:`~interpkit.motifs.Motif` keeps the transpose, (4, w).
memelite's own reader and writer drop the alphabet, background, nsites and E-value, hence this module.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from interpkit._io import atomic_write
from interpkit.errors import InputError, MissingFileError
from interpkit.motifs import ALPHABETS, Motif, check_background, check_motifs
from interpkit.validation import check_choice, check_scalar

__all__ = ["MemeFile", "read_meme", "write_meme"]

STRANDS = ("+ -", "+")
_ROW_TOL = 1e-2  # rows of a file may sum to 1 within this (values rounded to few decimals)
_KEEP_TOL = 1e-3  # rows within this are kept verbatim; rows between the two are divided by their sum
_KEYWORDS = ("MOTIF", "URL", "letter-probability", "log-odds")

# Shortest text that reads back as the same float64, without scientific notation.
_num = partial(np.format_float_positional, unique=True, trim="-")


@dataclass(frozen=True, eq=False)
class MemeFile:
    """The contents of a MEME motif file.

    Parameters
    ----------
    motifs : tuple of Motif
        The motifs in file order; all share ``alphabet``.
    alphabet : {"ACGT", "ACGU"}
        DNA or RNA. Default is "ACGT".
    strands : {"+ -", "+"}
        Strands the motifs apply to (both, or the given one only). Default is "+ -".
    background : None or array-like of shape (4,)
        Background letter frequencies in alphabet order, stored as a read-only float64 array;
        None means uniform (0.25 each). Default is uniform.
    version : str
        The MEME format version from the "MEME version" line. Default is "4".

    Raises
    ------
    InputTypeError
        If ``motifs`` holds something other than Motif.
    InputError
        If ``motifs`` is empty, a motif's alphabet differs from ``alphabet``, or ``strands`` or ``background`` is invalid.
    """

    motifs: tuple[Motif, ...]
    alphabet: str = "ACGT"
    strands: str = "+ -"
    background: np.ndarray = field(default_factory=lambda: np.full(4, 0.25), repr=False)
    version: str = "4"

    def __post_init__(self) -> None:
        motifs = check_motifs(self.motifs)
        check_choice(self.alphabet, "alphabet", ALPHABETS)
        check_choice(self.strands, "strands", STRANDS)
        for m in motifs:
            if m.alphabet != self.alphabet:
                raise InputError(
                    f"motif {m.id} has alphabet {m.alphabet} but the file's is {self.alphabet}; "
                    "one MEME file holds one alphabet, so write DNA and RNA motifs to separate files."
                )
        background = check_background(self.background)
        background.setflags(write=False)
        object.__setattr__(self, "motifs", motifs)
        object.__setattr__(self, "background", background)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MemeFile):
            return NotImplemented
        return (self.motifs, self.alphabet, self.strands, self.version) == (
            other.motifs, other.alphabet, other.strands, other.version
        ) and np.array_equal(self.background, other.background)

    __hash__ = None  # equality compares the background array by value, so there is no matching hash


def write_meme(
    path: str | os.PathLike,
    motifs: Sequence[Motif],
    *,
    background: Any = None,
    strands: str = "+ -",
    overwrite: bool = False,
) -> Path:
    """Write motifs to a MEME minimal motif file, atomically.

    The file holds the "MEME version 4", "ALPHABET=", "strands:" and "Background letter
    frequencies" sections, then per motif a ``MOTIF id [name]`` line, a
    ``letter-probability matrix: alength= 4 w= W [nsites= N] [E= E]`` line, one row per position
    and a ``URL`` line when the motif has one. ``nsites=`` and ``E=`` are omitted when they are None
    (the format makes them optional; MEME tools then assume 20 sites and E = 0), so reading the file
    back gives None again. Probabilities are written as the shortest decimal text that reads back
    as the same float64 (no scientific notation), so :func:`read_meme` returns identical arrays.

    Parameters
    ----------
    path : path-like
        The file to write; its directory must exist.
    motifs : sequence of Motif
        One or more motifs sharing one alphabet (ACGT, or ACGU for RNA).
    background : None or array-like of shape (4,)
        Background letter frequencies to record; None means uniform (0.25). Default is None.
    strands : {"+ -", "+"}
        "+ -" if the motifs may match either strand, "+" for the given strand only (RNA).
        Default is "+ -".
    overwrite : bool
        Whether an existing file may be replaced. Default is False.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputTypeError
        If ``motifs`` is not a sequence of Motif.
    InputError
        If ``motifs`` is empty, mixes alphabets, ``strands`` or ``background`` is invalid, or
        ``path`` exists and ``overwrite`` is False.
    """
    check_scalar(overwrite, "overwrite", bool)
    motifs = check_motifs(motifs)
    meme = MemeFile(motifs, motifs[0].alphabet, strands, background)
    letters = meme.alphabet
    lines = [
        "MEME version 4", "", f"ALPHABET= {letters}", "", f"strands: {meme.strands}", "",
        "Background letter frequencies",
        " ".join(f"{a} {_num(b)}" for a, b in zip(letters, meme.background)), "",
    ]
    for m in meme.motifs:
        header = f"letter-probability matrix: alength= 4 w= {m.width}"
        header += "" if m.nsites is None else f" nsites= {m.nsites}"
        header += "" if m.evalue is None else f" E= {m.evalue!r}"
        lines += [f"MOTIF {m.id} {m.name}".rstrip(), header]
        lines += [" ".join(map(_num, row)) for row in m.ppm.T]
        lines += ([f"URL {m.url}"] if m.url else []) + [""]
    path = Path(path)
    with atomic_write(path, overwrite=overwrite) as handle:
        handle.write("\n".join(lines))
    return path


class _Parser:
    """A cursor over a file's lines that reports errors with the file name and 1-based line."""

    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path, self.lines, self.pos = path, lines, 0

    def error(self, lineno: int | None, message: str) -> InputError:
        where = f"{self.path}, line {lineno}" if lineno else str(self.path)
        return InputError(f"{where}: {message}")

    def next(self) -> tuple[int | None, str]:
        """The next non-blank line (stripped) and its number; (None, "") at the end of the file."""
        while self.pos < len(self.lines):
            self.pos += 1
            text = self.lines[self.pos - 1].strip()
            if text:
                return self.pos, text
        return None, ""

    def peek(self) -> str:
        save = self.pos
        _, text = self.next()
        self.pos = save
        return text


_MATRIX = re.compile(r"(letter-probability|log-odds)\s+matrix\s*:?")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _header_values(p: _Parser, lineno: int, text: str) -> dict[str, Any]:
    """The key= value pairs of a matrix header line, converted (alength, w, nsites: int; E: float)."""
    pairs = dict(re.findall(r"(\S+?)=\s*(\S+)", _MATRIX.sub("", text, count=1)))
    out: dict[str, Any] = {}
    for key, kind in (("alength", int), ("w", int), ("nsites", float), ("E", float)):
        if key in pairs:
            value = float(pairs[key]) if _is_number(pairs[key]) else math.nan
            if not (math.isfinite(value) and value >= 0 and (kind is float or value.is_integer())):
                what = "a whole number" if kind is int else "a finite number >= 0"
                raise p.error(lineno, f"{key}= {pairs[key]!r} is not {what}; fix the matrix header.")
            out[key] = int(value) if kind is int else value
    if out.get("alength", 4) != 4:
        raise p.error(lineno, f"alength= {out['alength']} but interpkit reads 4-letter (DNA/RNA) motifs only.")
    if out.get("w", 1) < 1:
        raise p.error(lineno, f"w= {out['w']} but a motif needs at least one position.")
    return out


def _read_rows(p: _Parser, motif_id: str, width: int | None, header_line: int, probabilities: bool) -> np.ndarray:
    """Read ``width`` rows of 4 numbers (without w=, the rows up to the next other line); returns (w, 4).

    With ``probabilities``, each row must sum to 1 within _ROW_TOL; rows off by more than _KEEP_TOL
    are divided by their sum.
    """
    rows: list[np.ndarray] = []
    while width is None or len(rows) < width:
        save = p.pos
        lineno, text = p.next()
        if width is None and (lineno is None or not _is_number(text.split()[0])):
            if not rows:
                raise p.error(header_line, f"no rows follow the matrix header of motif {motif_id}.")
            p.pos = save  # the line belongs to what follows the matrix
            break
        if lineno is None or text.startswith(_KEYWORDS):
            where = "the end of the file" if lineno is None else f"line {lineno}"
            raise p.error(
                lineno or header_line,
                f"motif {motif_id} has w= {width} but only {len(rows)} rows come before {where}; "
                "fix w= or add the missing rows.",
            )
        tokens = text.split()
        bad = next((t for t in tokens if not _is_number(t)), None)
        if bad is not None:
            raise p.error(lineno, f"{bad!r} is not a number (motif {motif_id}, row {len(rows) + 1}).")
        if len(tokens) != 4:
            raise p.error(lineno, f"motif {motif_id} row {len(rows) + 1} has {len(tokens)} values but alength= 4.")
        row = np.array(tokens, dtype=np.float64)
        total = row.sum()
        if not probabilities:
            rows.append(row)
            continue
        if (row < 0).any() or not np.isfinite(row).all() or abs(total - 1) > _ROW_TOL:
            raise p.error(
                lineno,
                f"motif {motif_id} row {len(rows) + 1} = {' '.join(tokens)} sums to {total:.4g}; "
                f"letter probabilities must be >= 0 and sum to 1 (within {_ROW_TOL}).",
            )
        rows.append(row / total if abs(total - 1) > _KEEP_TOL else row)
    return np.array(rows)


def _read_motif(p: _Parser, lineno: int, text: str, alphabet: str) -> Motif:
    """Parse from a MOTIF line to the line before the next MOTIF (or the end)."""
    tokens = text.split()
    if len(tokens) < 2 or tokens[0] != "MOTIF":
        raise p.error(lineno, f"{text!r} has no motif identifier; write 'MOTIF <id> [name]'.")
    motif_id, name = tokens[1], " ".join(tokens[2:])
    ppm, url, values, matrix_line = None, None, {}, lineno
    while (following := p.peek()) and not following.startswith("MOTIF"):
        line, text = p.next()
        if _MATRIX.match(text):
            header = _header_values(p, line, text)
            probabilities = text.startswith("letter")
            rows = _read_rows(p, motif_id, header.get("w"), line, probabilities)
            if probabilities:
                ppm, values, matrix_line = rows, header, line
        elif text.startswith("URL"):
            url = text[3:].strip() or None
        elif _is_number(text.split()[0]):
            raise p.error(line, f"a row of numbers follows the matrix of motif {motif_id}; check its w=.")
    if ppm is None:
        raise p.error(lineno, f"motif {motif_id} has no 'letter-probability matrix:' block.")
    nsites = values.get("nsites")
    try:
        return Motif(
            motif_id, ppm.T, name, alphabet, None if nsites is None else round(nsites), values.get("E"), url
        )
    except InputError as exc:
        raise p.error(matrix_line, str(exc)) from None


def _read_background(p: _Parser, lineno: int, alphabet: str) -> np.ndarray:
    """Read letter/frequency pairs (possibly over several lines) after the background header."""
    tokens: list[str] = []
    while len(tokens) < 8:
        line, text = p.next()
        if line is None or text.startswith(_KEYWORDS):
            raise p.error(lineno, f"background has {len(tokens) // 2} of 4 'letter frequency' pairs.")
        tokens += text.split()
    found = dict(zip(tokens[0::2], tokens[1::2]))
    if sorted(found) != sorted(alphabet) or not all(map(_is_number, found.values())):
        raise p.error(line, f"background should pair each of {', '.join(alphabet)} with a frequency, found {tokens}.")
    try:
        return check_background([float(found[a]) for a in alphabet])
    except InputError as exc:
        raise p.error(line, str(exc)) from None


def read_meme(path: str | os.PathLike) -> MemeFile:
    """Read a MEME minimal motif file (version 4 or later).

    Reads the "MEME version" line (required, first), ``ALPHABET=`` (ACGT or ACGU; default ACGT
    when absent), ``strands:``, the background frequencies (which may span several lines; uniform
    when absent) and every ``MOTIF id [name]`` with its ``letter-probability matrix`` (``alength``,
    ``w``, ``nsites`` and ``E`` when given; without ``w=`` the rows run to the next non-numeric line)
    and ``URL``. ``log-odds matrix`` blocks are skipped, and so are lines the format does not define.

    Rows summing to 1 within 1e-3 are kept exactly as written; rows off by more (files rounded to
    few decimals), up to 1e-2, are divided by their sum; worse rows are an error.

    Parameters
    ----------
    path : path-like
        The MEME file, e.g. JASPAR's ``*_meme.txt`` or the output of MEME, STREME or ExplaiNN.

    Returns
    -------
    MemeFile
        Motifs (each ppm of shape (4, w), float64), alphabet, strands, background and version.

    Raises
    ------
    MissingFileError
        If ``path`` does not exist or cannot be read.
    InputError
        If the file is empty or not UTF-8 text, lacks the "MEME version" line, declares another
        alphabet, has no motifs, repeats a motif identifier, or a matrix has a non-numeric value, a row of the wrong length, fewer rows than
        ``w``, or a row that is not a probability distribution. The message names the file and the
        1-based line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"MEME file {path} is not UTF-8 text ({exc}); MEME files are plain ASCII.") from None
    except OSError as exc:
        raise MissingFileError(f"cannot read MEME file {path}: {exc}; check the path.") from None
    p = _Parser(path, text.splitlines())
    lineno, text = p.next()
    if lineno is None:
        raise p.error(None, "the file is empty; a MEME file starts with 'MEME version 4'.")
    version = re.fullmatch(r"MEME version\s+(\S+).*", text)
    if version is None:
        raise p.error(lineno, f"found {text[:40]!r} where the 'MEME version 4' line must come first.")
    alphabet, strands, background, motifs = "ACGT", "+ -", None, []
    seen: dict[str, int] = {}
    while (found := p.next())[0] is not None:
        lineno, text = found
        if text.startswith("ALPHABET"):
            alphabet = text.partition("=")[2].strip()
            if "=" not in text or alphabet not in ALPHABETS:
                raise p.error(
                    lineno,
                    f"alphabet {text!r} is not supported; interpkit reads 'ALPHABET= ACGT' (DNA) and "
                    "'ALPHABET= ACGU' (RNA) motifs only.",
                )
        elif text.startswith("strands:"):
            strands = {"+": "+", "+ -": "+ -", "- +": "+ -"}.get(" ".join(text[8:].split()))
            if strands is None:
                raise p.error(lineno, f"{text!r} must be 'strands: + -' or 'strands: +'.")
        elif text.startswith("Background letter frequencies"):
            background = _read_background(p, lineno, alphabet)
        elif text.startswith("MOTIF"):
            motif = _read_motif(p, lineno, text, alphabet)
            if motif.id in seen:
                raise p.error(lineno, f"motif identifier {motif.id} is used twice (first on line {seen[motif.id]}); "
                                      "MEME identifiers must be unique, so rename one.")
            seen[motif.id] = lineno
            motifs.append(motif)
    if not motifs:
        raise p.error(None, "the file has no MOTIF entries; expected 'MOTIF <id>' followed by a letter-probability matrix.")
    return MemeFile(tuple(motifs), alphabet, strands, check_background(background), version.group(1))

