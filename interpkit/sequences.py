"""Sequences in and out: one-hot encoding, reverse complement, FASTA/BED readers and shuffles.

One-hot arrays have shape (N, 4, L), float32, alphabet on axis 1 in order A, C, G, T
(RNA: A, C, G, U); an all-zero column is ``N`` or another IUPAC ambiguity code.
Biopython and pyfaidx are imported inside the readers, so importing this costs only numpy.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import numbers
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interpkit.errors import InputError, InputTypeError, MissingFileError, first_line
from interpkit.validation import check_one_hot, check_random_state, check_scalar

__all__ = ["DNA", "RNA", "dinucleotide_shuffle", "iter_fasta", "one_hot_decode", "one_hot_encode", "open_genome",
           "read_bed_windows", "read_fasta", "read_sequences", "reverse_complement", "shuffle"]

DNA = "ACGT"
RNA = "ACGU"
_IUPAC = "NRYSWKMBDHV"  # ambiguity codes, encoded as an all-zero column
_COMPLEMENT = dict(zip("ACGTRYKMSWBDHVN", "TGCAYRMKSWVHDBN"))
_FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
_ACCEPTED = ", ".join([*(s + "[.gz]" for s in _FASTA_SUFFIXES), ".npy"])
_INT = re.compile(r"[+-]?[0-9]+")  # a BED coordinate (int() alone also takes "1_000" and non-ASCII digits)


def _check_alphabet(alphabet: Any) -> str:
    if not (isinstance(alphabet, str) and len(set(alphabet.upper())) == len(alphabet) == 4 and alphabet.isalpha()):
        raise InputError(f"alphabet == {alphabet!r}, must be 4 distinct letters such as 'ACGT' or 'ACGU'.")
    return alphabet.upper()


def _symbols(X: np.ndarray) -> np.ndarray:
    """(N, 4, L) one-hot -> (N, L) codes 0-3, with 4 for an all-zero (N) column."""
    return np.where(X.any(axis=1), X.argmax(axis=1), 4)


def _from_symbols(S: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """(..., L) codes 0-4 -> (..., 4, L) one-hot; code 4 gives an all-zero column."""
    return np.ascontiguousarray(S[..., None, :] == np.arange(4)[:, None], dtype=dtype)


def one_hot_encode(sequences: str | Sequence[str], *, alphabet: str = DNA, names: Sequence[str] | None = None,
                   dtype: Any = np.float32) -> np.ndarray:
    """One-hot encode equal-length sequences (vectorised through one 256-entry byte lookup table).

    Parameters
    ----------
    sequences : str or sequence of str
        One sequence (N = 1) or N sequences of L bp each; lower case (soft-masked) is accepted.
    alphabet : str
        The four letters of axis 1, in order. Default is "ACGT" (use "ACGU" for RNA).
    names : sequence of str or None
        Record names for error messages. Default is None (records are named by 0-based index).
    dtype : numpy dtype
        The dtype of the result. Default is float32.

    Returns
    -------
    X : ndarray of shape (N, 4, L), ``dtype``
        ``X[i, j, k] = 1`` where base k of sequence i is ``alphabet[j]``. The IUPAC ambiguity
        codes N, R, Y, S, W, K, M, B, D, H and V give an all-zero column.

    Raises
    ------
    InputTypeError
        If ``sequences`` is not a str or a sequence of str.
    InputError
        If there are no sequences, one is empty, lengths differ, ``names`` has the wrong length,
        ``alphabet`` is not 4 distinct letters, or a character is neither in the alphabet nor an
        IUPAC code (the message gives the record, 1-based position and character).
    """
    alphabet = _check_alphabet(alphabet)
    seqs = [sequences] if isinstance(sequences, str) else list(sequences) if isinstance(sequences, Iterable) else None
    if seqs is None or not all(isinstance(s, str) for s in seqs):
        raise InputTypeError(f"sequences must be a str or a list of str, got {type(sequences).__name__}; "
                             "decode bytes with .decode() first.")
    if len(seqs) == 0:
        raise InputError("sequences is empty (0 sequences); pass at least one sequence.")
    if names is not None and len(names) != len(seqs):
        raise InputError(f"names has {len(names)} entries but there are {len(seqs)} sequences.")
    label = (lambda i: repr(names[i])) if names is not None else str
    lengths = np.array([len(s) for s in seqs])
    if (lengths == 0).any():
        raise InputError(f"sequence {label(int(np.argmin(lengths)))} is empty; every sequence needs >= 1 bp.")
    if (lengths != lengths[0]).any():
        j = int(np.argmax(lengths != lengths[0]))
        raise InputError(f"sequences differ in length: sequence {label(0)} has {lengths[0]} bp but sequence "
                         f"{label(j)} has {lengths[j]} bp; use fixed-length windows "
                         "(read_bed_windows(..., length=L)) or cut/pad them to one length.")
    table = np.full(256, 255, dtype=np.uint8)
    for code, letters in ((4, _IUPAC), *enumerate(alphabet)):
        for c in letters:
            table[[ord(c), ord(c.lower())]] = code
    codes = table[np.frombuffer("".join(seqs).encode("ascii", "replace"), dtype=np.uint8)]
    bad = np.flatnonzero(codes == 255)
    if bad.size:
        i, pos = divmod(int(bad[0]), int(lengths[0]))
        char = seqs[i][pos]
        other = {"U": RNA, "T": DNA}.get(char.upper())
        kind, base, model = ("RNA", "T", "an RNA") if other == RNA else ("DNA", "U", "a DNA")
        fix = f"it looks like {kind}, so pass alphabet={other!r} ({model} model) or replace {char.upper()} with " \
            f"{base}" if other else "remove the character or replace it with N"
        raise InputError(f"sequence {label(i)} has {char!r} at position {pos + 1} (1-based), which is neither in "
                         f"the alphabet {alphabet!r} nor an IUPAC code ({_IUPAC}); {fix}.")
    return _from_symbols(codes.reshape(len(seqs), -1), dtype)


def one_hot_decode(X: Any, *, alphabet: str = DNA) -> list[str]:
    """Decode one-hot sequences to upper-case strings (the inverse of :func:`one_hot_encode`).

    Parameters
    ----------
    X : array-like of shape (N, 4, L)
        One-hot sequences; an all-zero column decodes to "N".
    alphabet : str
        The four letters of axis 1, in order. Default is "ACGT".

    Returns
    -------
    sequences : list of str
        N strings of L characters.

    Raises
    ------
    InputTypeError, InputError
        If ``X`` is not one-hot (see ``check_one_hot``) or ``alphabet`` is not 4 distinct letters.
    """
    X = check_one_hot(X, "X")
    letters = np.frombuffer((_check_alphabet(alphabet) + "N").encode(), dtype=np.uint8)
    return [row.tobytes().decode() for row in letters[_symbols(X)]]


def reverse_complement(X: np.ndarray | str) -> np.ndarray | str:
    """Reverse complement of one-hot sequences or of one sequence string.

    Parameters
    ----------
    X : ndarray of shape (N, 4, L) or str
        One-hot sequences in alphabet order A, C, G, T (or A, C, G, U), or a sequence string.

    Returns
    -------
    ndarray of shape (N, 4, L), float32, or str
        For an array, the copy ``X[:, ::-1, ::-1]``: reversing the alphabet axis complements
        each base because the order is A, C, G, T; all-zero (N) columns stay all-zero. For a
        string, IUPAC codes are complemented too (R<->Y, K<->M, B<->V, D<->H; S, W, N kept),
        case is kept, and A pairs with U when the string holds U (RNA).

    Raises
    ------
    InputTypeError, InputError
        If the array is not one-hot, or the string holds a character that is not a nucleotide
        or IUPAC code, or holds both T and U.
    """
    if not isinstance(X, str):
        return check_one_hot(X, "X")[:, ::-1, ::-1].copy()
    upper = X.upper()
    if "T" in upper and "U" in upper:
        raise InputError("X holds both T and U; a sequence is either DNA (T) or RNA (U).")
    comp = {**_COMPLEMENT, "U": "A", "A": "U"} if "U" in upper else _COMPLEMENT
    bad = next((i for i, c in enumerate(upper) if c not in comp), None)
    if bad is not None:
        raise InputError(f"X has {X[bad]!r} at position {bad + 1} (1-based), which is not a nucleotide or "
                         "IUPAC code; remove it or replace it with N.")
    return X.translate(str.maketrans({**comp, **{k.lower(): v.lower() for k, v in comp.items()}}))[::-1]


def _existing_file(path: Any, what: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"{what} must be a path (str or os.PathLike), got {type(path).__name__}.")
    if not Path(path).is_file():
        raise MissingFileError(f"{what} file {path} does not exist or is not a file; check the path.")
    return Path(path)


def read_fasta(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Read every record of a FASTA file, plain or ``.gz``, with Biopython's FASTA parser (Cock et al. 2009).

    Parameters
    ----------
    path : path-like
        The FASTA file. Nothing is written beside it.

    Returns
    -------
    names : list of str
        Record identifiers (the header up to the first white space).
    sequences : list of str
        Record sequences, case kept, white space (line breaks included) removed.

    Raises
    ------
    MissingFileError
        If ``path`` does not exist.
    InputError
        If the file is not FASTA (its first non-blank line does not start with ">"), cannot be
        decompressed or decoded as UTF-8, holds no records, or holds a record with an empty sequence.
    """
    records = list(iter_fasta(path))
    return [r[0] for r in records], [r[1] for r in records]


def iter_fasta(path: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """The records of a FASTA file, plain or ``.gz``, one at a time: (name, sequence).

    As :func:`read_fasta` (same checks), but reading the file as it goes, so that memory does not
    grow with the number of records.

    Raises
    ------
    MissingFileError
        If ``path`` does not exist.
    InputError
        As :func:`read_fasta`; an error in a later record comes once the earlier ones were yielded.
    """
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    path = _existing_file(path, "FASTA")
    try:
        with (gzip.open if path.suffix.lower() == ".gz" else open)(path, "rt", encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "")  # blank lines before it are skipped
            if not first.startswith(">"):
                what = f"its first line {first[:40].strip()!r} does not start with '>'" if first else "no records"
                raise InputError(f"FASTA file {path} is not FASTA: {what}; pass a FASTA file (or a .npy "
                                 "one-hot array).")
            for title, seq in SimpleFastaParser(itertools.chain([first], handle)):
                name, seq = (title.split(None, 1) or [""])[0], "".join(seq.split())  # as SeqIO's "fasta"
                if not seq:
                    raise InputError(f"FASTA file {path}: record {name!r} has an empty sequence; "
                                     "remove the record.")
                yield name, seq
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise InputError(f"FASTA file {path} could not be read as FASTA text ({exc}); "
                         "pass a plain or gzip-compressed FASTA file.") from None


def read_sequences(path: str | os.PathLike, *, alphabet: str = DNA, length: int | None = None,
                   min_length: int = 1) -> tuple[list[str], np.ndarray]:
    """Read FASTA or a ``.npy`` one-hot array as names and one-hot sequences.

    Parameters
    ----------
    path : path-like
        FASTA (``.fa``, ``.fasta``, ``.fna``, ``.fas``, each optionally ``.gz``) or ``.npy``
        holding a one-hot array of shape (N, 4, L).
    alphabet : str
        Alphabet for FASTA input (see :func:`one_hot_encode`). Default is "ACGT".
    length : int or None
        Length in bp required of every record, or None for any common length. Default is None.
    min_length : int
        The shortest record accepted, in bp (a model's receptive field, ``InputSpec.min_length``).
        Default is 1.

    Returns
    -------
    names : list of str
        FASTA record identifiers, or "seq0", "seq1", ... for ``.npy`` input.
    X : ndarray of shape (N, 4, L), float32

    Raises
    ------
    MissingFileError
        If ``path`` does not exist.
    InputError
        If the suffix is not one of those above, the content is not valid FASTA or one-hot, a
        record holds a character outside ``alphabet`` and the IUPAC codes, or a record is not
        ``length`` bp (with ``length`` None: not the first record's length). The message names
        the file and the first such record.
    """
    chunks = list(iter_sequences(path, alphabet=alphabet, length=length, min_length=min_length))
    names = [name for chunk_names, _ in chunks for name in chunk_names]
    return names, chunks[0][1] if len(chunks) == 1 else np.concatenate([X for _, X in chunks])


def iter_sequences(path: str | os.PathLike, *, alphabet: str = DNA, length: int | None = None,
                   min_length: int = 1, chunk_size: int | None = None) -> Iterator[tuple[list[str], np.ndarray]]:
    """Read FASTA or ``.npy`` sequences in chunks: as :func:`read_sequences` (same checks, same
    errors), but ``chunk_size`` records at a time, so that memory does not grow with the file.

    Parameters
    ----------
    path, alphabet, length, min_length
        As :func:`read_sequences`.
    chunk_size : int or None
        Records per chunk (the last may be shorter); None reads the whole file as one chunk.
        Default is None.

    Yields
    ------
    names : list of str
    X : ndarray of shape (n, 4, L), float32
        One chunk; a ``.npy`` file is memory-mapped and read a chunk at a time.

    Raises
    ------
    MissingFileError, InputError
        As :func:`read_sequences`; an error in a later chunk comes once the earlier chunks were
        yielded.
    """
    path = _existing_file(path, "sequence")
    if length is not None:
        check_scalar(length, "length", int, min_val=1)
    if chunk_size is not None:
        check_scalar(chunk_size, "chunk_size", int, min_val=1)
    suffixes = ["", "", *(s.lower() for s in path.suffixes)]
    gz = suffixes[-1] == ".gz"
    kind = suffixes[-2] if gz else suffixes[-1]
    if kind == ".npy" and not gz:
        yield from _npy_chunks(path, length, min_length, chunk_size)
    elif kind in _FASTA_SUFFIXES:
        records = iter_fasta(path)
        first = None
        while chunk := list(itertools.islice(records, chunk_size)):
            names = [name for name, _ in chunk]
            first = first or (names[0], len(chunk[0][1]))
            _check_lengths(path, names, [len(seq) for _, seq in chunk], length, first, min_length)
            try:
                yield names, one_hot_encode([seq for _, seq in chunk], alphabet=alphabet, names=names)
            except InputError as exc:
                raise InputError(f"sequence file {path}: {exc}") from None
    else:
        raise InputError(f"sequence file {path} has an unknown suffix; accepted are {_ACCEPTED}.")


def _npy_chunks(path: Path, length: int | None, min_length: int,
                chunk_size: int | None) -> Iterator[tuple[list[str], np.ndarray]]:
    try:  # memory-mapped, so a damaged header cannot make numpy allocate what the file does not hold
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises many types (SyntaxError, TokenError, ...) on damage
        raise InputError(f"sequence file {path} is not a readable .npy array ({first_line(exc)}); pass an "
                         "array saved with numpy.save, shape (N, 4, L).") from None
    if arr.ndim != 3 or not len(arr):
        check_one_hot(np.array(arr), str(path))  # its message names the shape problem
    size = chunk_size or len(arr)
    for start in range(0, len(arr), size):
        X = check_one_hot(np.array(arr[start:start + size]), str(path))
        names = [f"seq{i}" for i in range(start, start + len(X))]
        _check_lengths(path, names, [X.shape[2]] * len(X), length, (names[0], X.shape[2]), min_length)
        yield names, X


def _check_lengths(path: Path, names: list[str], lengths: list[int], length: int | None,
                   first: tuple[str, int], min_length: int = 1) -> None:
    """One length for every record: ``length``, or (None) the file's first record's; >= ``min_length``."""
    where = f"sequence file {path}"
    short = next((i for i, n in enumerate(lengths) if n < min_length), None)
    if short is not None and length is None:
        raise InputError(f"{where}: record {names[short]!r} is {lengths[short]} bp, shorter than the model's "
                         f"receptive field ({min_length} bp); give records of at least {min_length} bp (e.g. wider "
                         "windows around the sites).")
    windows = "or write a FASTA of windows of that length (e.g. with interpkit.read_bed_windows)"
    wrong = next((i for i, n in enumerate(lengths) if n != (first[1] if length is None else length)), None)
    if wrong is not None and length is not None:
        raise InputError(f"{where}: record {names[wrong]!r} is {lengths[wrong]} bp but length={length} bp is "
                         f"required; centre-crop longer records and pad shorter ones with N to {length} bp, {windows}.")
    if wrong is not None:
        raise InputError(f"{where}: record {names[wrong]!r} is {lengths[wrong]} bp but the first record "
                         f"{first[0]!r} is {first[1]} bp; one-hot input needs one length, so centre-crop or pad the "
                         f"records with N to one length, {windows}.")


def _parse_bed(bed: Path) -> list[tuple[int, str, int, int, str, bool]]:
    """BED lines -> (1-based line number, chrom, start, end, name, minus strand)."""
    rows = []
    with open(bed, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            where = f"BED file {bed} line {lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{where} is not text ({raw[:20]!r}); pass a plain-text BED file (decompress a "
                                 ".bed.gz first).") from None
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            cols = [c.strip() for c in line.split("\t")] if "\t" in line else line.split()
            shown = f"{line.strip()[:60]!r} but must start with chrom, start, end (tab-separated)"
            if len(cols) < 3 or not cols[0]:
                raise InputError(f"{where} is {shown}; fix or remove the line.")
            bad = next((f"{what} {c!r}" for what, c in (("start", cols[1]), ("end", cols[2])) if not _INT.fullmatch(c)),
                       None)
            if bad:
                raise InputError(f"{where} is {shown}: its {bad} is not an integer (BED is 0-based, half-open, in "
                                 "bp); fix or remove the line.")
            chrom, start, end = cols[0], int(cols[1]), int(cols[2])
            if start < 0 or end <= start:
                raise InputError(f"{where} has start={start}, end={end}; BED needs 0 <= start < end "
                                 "(0-based, half-open); fix the coordinates.")
            name = cols[3] if len(cols) > 3 and cols[3] not in ("", ".") else f"{chrom}:{start}-{end}"
            rows.append((lineno, chrom, start, end, name, len(cols) > 5 and cols[5] == "-"))
    if not rows:
        raise InputError(f"BED file {bed} holds no intervals; check the file.")
    return rows


@contextlib.contextmanager
def open_genome(genome: str | os.PathLike) -> Iterator[Any]:
    """A genome FASTA opened with pyfaidx (Shirley et al. 2015) for random access; closed on exit.

    Parameters
    ----------
    genome : path-like
        Plain or bgzip-compressed FASTA. An up-to-date ``.fai`` (and ``.gzi``) beside it is used;
        otherwise one is built in a temporary directory, so nothing is ever written beside the genome.

    Yields
    ------
    pyfaidx.Fasta
        With ``as_raw=True``: ``fasta[chrom][lo:hi]`` is a str, 0-based half-open.

    Raises
    ------
    MissingFileError
        If ``genome`` does not exist.
    InputError
        If it cannot be indexed as FASTA.
    """
    import pyfaidx

    genome = _existing_file(genome, "genome")
    fai, gzi = Path(f"{genome}.fai"), Path(f"{genome}.gzi")
    fresh = fai.is_file() and fai.stat().st_mtime >= genome.stat().st_mtime and \
        (gzi.is_file() or genome.suffix.lower() not in (".gz", ".bgz"))
    with tempfile.TemporaryDirectory(prefix="interpkit-fai-") as tmp:
        index = {"rebuild": False} if fresh else {"indexname": Path(tmp, "g.fai"), "gzi_indexname": Path(tmp, "g.gzi")}
        try:
            fasta = pyfaidx.Fasta(genome, as_raw=True, **index)
        except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, ValueError, OSError) as exc:
            raise InputError(f"genome {genome} could not be indexed as FASTA ({exc}); "
                             "pass a plain or bgzip-compressed FASTA file.") from None
        with fasta:
            yield fasta


def read_bed_windows(bed: str | os.PathLike, genome: str | os.PathLike, *, length: int,
                     alphabet: str = DNA) -> tuple[list[str], np.ndarray]:
    """Fixed-length windows centred on BED intervals, read from a genome FASTA.

    Parameters
    ----------
    bed : path-like
        BED file (0-based, half-open): ``chrom start end [name [score [strand]]]``; ``track``,
        ``browser`` and ``#`` lines are skipped. Strand "-" gives the window's reverse complement.
    genome : path-like
        Genome FASTA, plain or bgzip-compressed, read with pyfaidx (Shirley et al. 2015). An
        up-to-date ``.fai`` index beside it is used; otherwise one is built in a temporary
        directory, so nothing is ever written beside the genome.
    length : int
        Window length in bp.
    alphabet : str
        Alphabet of the result (see :func:`one_hot_encode`). Default is "ACGT".

    Returns
    -------
    names : list of str
        BED column 4 where present and not ".", else "chrom:start-end".
    X : ndarray of shape (N, 4, length), float32
        Windows in BED order; window i spans ``[lo, lo + length)`` (0-based, half-open) with
        ``lo = (start + end) // 2 - length // 2``.

    Raises
    ------
    MissingFileError
        If ``bed`` or ``genome`` does not exist.
    InputError
        If the BED holds no intervals or a line is malformed (not UTF-8 text, fewer than 3 columns,
        non-integer coordinates, start < 0 or end <= start), names a chromosome the genome lacks,
        ends past the chromosome's end, or its window runs below 0 or past the chromosome end (the
        message names the BED file and 1-based line); if the genome cannot be indexed; or if a
        window holds a letter outside ``alphabet`` and the IUPAC codes.
    """
    check_scalar(length, "length", int, min_val=1)
    bed, genome = _existing_file(bed, "BED"), _existing_file(genome, "genome")
    rows = _parse_bed(bed)
    seqs = []
    with open_genome(genome) as fasta:
        for lineno, chrom, start, end, _, _ in rows:
            where = f"BED file {bed} line {lineno}"
            if chrom not in fasta:
                known = list(fasta.keys())
                raise InputError(f"{where}: chromosome {chrom!r} is not in genome {genome}, which has "
                                 f"{', '.join(known[:5])}{', ...' if len(known) > 5 else ''}; "
                                 "use the genome's chromosome names.")
            lo, size = (start + end) // 2 - length // 2, len(fasta[chrom])
            if end > size:
                raise InputError(f"{where}: the interval {chrom}:{start}-{end} ends past the end of {chrom} "
                                 f"({size} bp in genome {genome}); the BED may be for another assembly, so fix the "
                                 "interval or pass the matching genome.")
            if lo < 0 or lo + length > size:
                raise InputError(f"{where}: the {length} bp window {chrom}:{lo}-{lo + length} runs off "
                                 f"{chrom} (0-{size}); remove the interval or use a smaller length.")
            seqs.append(fasta[chrom][lo:lo + length])
    names = [r[4] for r in rows]
    try:
        X = one_hot_encode(seqs, alphabet=alphabet, names=names)
    except InputError as exc:
        raise InputError(f"genome {genome}, windows of BED file {bed}: {exc}") from None
    minus = np.array([r[5] for r in rows])
    X[minus] = X[minus, ::-1, ::-1]
    return names, X


def _seed(random_state: Any) -> int:
    """One int seed: an int is used as is; a Generator gives one draw; None draws fresh entropy."""
    rng = check_random_state(random_state)
    return int(random_state) if isinstance(random_state, numbers.Integral) else int(rng.integers(2**63))


def shuffle(X: Any, *, n: int = 1, random_state: Any = 0) -> np.ndarray:
    """Mononucleotide shuffles: random permutations of the positions of each sequence.

    Parameters
    ----------
    X : array-like of shape (N, 4, L)
        One-hot sequences; all-zero (N) columns are a fifth symbol.
    n : int
        Shuffles per sequence. Default is 1.
    random_state : None, int >= 0 or numpy.random.Generator
        Seed. Sequence i uses ``numpy.random.default_rng([seed, i])``, so its shuffles depend
        only on the seed, i and the sequence, never on the rest of the batch. A Generator gives
        one seed drawn from it; None draws fresh entropy. Default is 0, as everywhere in interpkit.

    Returns
    -------
    X_shuffled : ndarray of shape (N, n, 4, L), float32
        Base counts are kept exactly; dinucleotides are not (see :func:`dinucleotide_shuffle`).

    Raises
    ------
    InputTypeError, InputError
        If ``X`` is not one-hot, ``n`` is not an int >= 1, or ``random_state`` is invalid.
    """
    X = check_one_hot(X, "X")
    check_scalar(n, "n", int, min_val=1)
    seed = _seed(random_state)
    out = np.empty((X.shape[0], n, 4, X.shape[2]), dtype=np.float32)
    for i, x in enumerate(X):
        perm = np.random.default_rng([seed, i]).random((n, X.shape[2])).argsort(axis=1)
        out[i] = x[:, perm].transpose(1, 0, 2)
    return out


def _last_exit_edges(rng: np.random.Generator, n: int, tgt: np.ndarray, by_src: np.ndarray, starts: np.ndarray,
                     counts: np.ndarray, need: np.ndarray, last: int) -> np.ndarray:
    """Uniform random last-exit trees rooted at ``last``, for n shuffles at once: (n, 5) edge indices.

    Wilson (1996, STOC, "Generating random spanning trees more quickly than the cover time"):
    from each vertex not yet in the tree, walk along uniformly chosen out-edges until the tree is
    hit, remembering the last edge taken from each vertex (which erases loops), then add that path.
    Every edge-labelled tree is equally likely, as with Altschul and Erickson's rejection sampling,
    but the time is the walks' hitting time rather than exponential in low-complexity sequences.
    """
    exit_pos = np.zeros((n, 5), dtype=np.intp)
    in_tree = np.zeros((n, 5), dtype=bool)
    in_tree[:, last] = True
    shuffles = np.arange(n)
    for v in np.flatnonzero(need):
        for add in (False, True):  # first the random walk, then the retrace that adds its loop-erased path
            u = np.full(n, v)
            active = ~in_tree[:, v]
            while active.any():
                a, ua = shuffles[active], u[active]
                if add:
                    in_tree[a, ua] = True
                else:
                    exit_pos[a, ua] = by_src[starts[ua] + rng.integers(0, counts[ua])]
                u[a] = tgt[exit_pos[a, ua]]
                active[a] = ~in_tree[a, u[a]]
    return exit_pos


def dinucleotide_shuffle(X: Any, *, n: int = 1, random_state: Any = 0) -> np.ndarray:
    """Dinucleotide shuffles that keep every dinucleotide count exactly.

    Each shuffle is a uniformly random Eulerian walk from the first symbol to the last through the
    multigraph with vertices A, C, G, T, N and one edge per adjacent pair (Altschul & Erickson 1985,
    Mol. Biol. Evol. 2:526), sampled as in Kandel et al. 1996 (Discrete Appl. Math. 71:171) and
    uShuffle: the last-exit out-edges of all vertices but the last symbol form a uniformly random
    tree rooted at the last symbol (drawn with Wilson's algorithm); each vertex's other out-edges
    are randomly permuted; the walk leaves each vertex by its edges in that order.

    Parameters
    ----------
    X : array-like of shape (N, 4, L)
        One-hot sequences; all-zero (N) columns are a fifth symbol.
    n : int
        Shuffles per sequence. Default is 1.
    random_state : None, int >= 0 or numpy.random.Generator
        Seed. Sequence i uses ``numpy.random.default_rng([seed, i])``, so its shuffles depend
        only on the seed, i and the sequence, never on the rest of the batch. A Generator gives
        one seed drawn from it; None draws fresh entropy. Default is 0, as everywhere in interpkit.

    Returns
    -------
    X_shuffled : ndarray of shape (N, n, 4, L), float32
        Shuffles with the first and last base and the counts of bases and dinucleotides
        (N included) of their sequence. Sequences under 3 bp, or with a single Eulerian
        walk, come back unchanged.

    Raises
    ------
    InputTypeError, InputError
        If ``X`` is not one-hot, ``n`` is not an int >= 1, or ``random_state`` is invalid.
    """
    X = check_one_hot(X, "X")
    check_scalar(n, "n", int, min_val=1)
    seed = _seed(random_state)
    S = _symbols(X)
    N, L = S.shape
    if L < 3:
        return np.repeat(X[:, None], n, axis=1)
    edges = np.empty((N, n, L - 1), dtype=np.intp)  # out-edge targets grouped by source vertex, in exit order
    starts = np.empty((N, 5), dtype=np.intp)  # where each vertex's group begins
    verts = np.arange(5)
    for i, s in enumerate(S):
        rng = np.random.default_rng([seed, i])
        src, tgt, last = s[:-1], s[1:], s[-1]
        counts = np.bincount(src, minlength=5)
        starts[i] = np.cumsum(counts) - counts
        by_src = np.argsort(src, kind="stable")
        need = (counts > 0) & (verts != last)
        exit_pos = _last_exit_edges(rng, n, tgt, by_src, starts[i], counts, need, last)
        keys = rng.random((n, L - 1)) + 2.0 * src  # random order inside each source group ...
        keys[np.arange(n)[:, None], exit_pos[:, need]] = 2.0 * verts[need] + 1.5  # ... last exit at its end
        edges[i] = tgt[keys.argsort(axis=1)]
    edges = edges.reshape(N * n, L - 1)  # the walk runs over all N * n shuffles at once
    nxt = np.repeat(starts, n, axis=0)
    walk = np.empty((N * n, L), dtype=np.intp)
    walk[:, 0] = cur = np.repeat(S[:, 0], n)
    rows = np.arange(N * n)
    for k in range(1, L):
        pos = nxt[rows, cur]
        nxt[rows, cur] = pos + 1
        walk[:, k] = cur = edges[rows, pos]
    return _from_symbols(walk.reshape(N, n, L))

