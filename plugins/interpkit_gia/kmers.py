"""Ab initio motifs by GIA: the k-mer scan, global ISM of the top k-mer, and the k-mer alignment motif.

Koo et al. (2021), PLoS Comput. Biol. 17:e1008925: "GIA identifies expected sequence motifs with k-mers"
(all 4^k k-mers embedded at one position, ranked by global importance; the top k-mer's single mutants;
Fig 2e) and Materials and methods ("top k-mer motif", "k-mer alignment-based motif").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from interpkit import Predictor
from interpkit.errors import InputError, InputTypeError
from interpkit.motifs import Motif
from interpkit.tables import Table
from interpkit.validation import check_scalar
from interpkit_gia.interventions import Effects, global_importance
from interpkit_gia.nulls import Null
from interpkit_gia.patterns import Intervention, Placement, centre, parse_pattern

__all__ = ["all_kmers", "global_ism", "kmer_alignment_motif", "kmer_scan", "motif_id"]


def all_kmers(k: int, *, alphabet: str = "ACGT") -> list[str]:
    """Every k-mer over the alphabet, in lexicographic order of the alphabet (AAAA.., AAAC.., ...).

    Parameters
    ----------
    k : int
        Length, 1 <= k <= 10.
    alphabet : str
        "ACGT" or "ACGU". Default is "ACGT".

    Returns
    -------
    list of str
        4**k strings; k-mer i has base ``alphabet[(i // 4**(k-1-j)) % 4]`` at position j.

    Raises
    ------
    InputError
        If k is outside 1..10.
    """
    check_scalar(k, "kmer_size", int, min_val=1, max_val=10)
    return ["".join(p) for p in itertools.product(alphabet, repeat=k)]


def global_ism(
    model: Predictor,
    null: Null,
    kmer: str,
    *,
    position: int | None = None,
    strand: str = "+",
    alphabet: str = "ACGT",
    **common: Any,
) -> Effects:
    """Global ISM of a k-mer: the global importance of the k-mer and of each of its 3k single mutants.

    Parameters
    ----------
    model : Predictor
    null : Null
    kmer : str
        A fixed sequence (A, C, G, T/U).
    position : int or None
        0-based start; None centres it. Default is None.
    strand : {"+", "-", "random"}
        Default is "+".
    alphabet : str
        Letters for row labels ("ACGU" for RNA models). Default is "ACGT".
    **common
        ``target``, ``batch_size``, ``random_state``, ``verbose`` as :func:`global_importance` takes them.

    Returns
    -------
    Effects
        Rows: the k-mer, then every mutant (labelled by its sequence), position-major, bases in alphabet
        order. Extras (K = outputs):

        - ``ism_global``: (4, k, K), float64, global importance of the k-mer with base b at position j
          (the k-mer's own at its own letter);
        - ``ism``: (4, k, K), float64, that minus the k-mer's global importance (0 at its own letters);
        - ``ism_l2``: (k, K), float64, the Euclidean norm over the 4 bases of ``ism`` at each position,
          the letter heights of the paper's "top k-mer motif".

    Raises
    ------
    InputError
        If ``kmer`` is not a fixed sequence, or does not fit at ``position``.

    Notes
    -----
    Koo et al. (2021), Fig 2e and Materials and methods: heights are "the L2-norm of the difference in
    global importance of nucleotide variants at each position"; the reference code takes the norm of the
    variants' raw global importances instead.
    """
    pattern = parse_pattern(kmer, name="kmer")
    if not pattern.fixed or (pattern.codes() < 0).any():
        raise InputError(f"kmer {kmer!r} must be a fixed sequence of A, C, G, T/U (no IUPAC codes or N).")
    k, length = pattern.width, null.one_hot.shape[2]
    position = centre(length, k) if position is None else position
    codes = pattern.codes()
    variants = [codes.copy()]
    labels = [_word(codes, alphabet)]
    for j in range(k):
        for b in range(4):
            if b != codes[j]:
                v = codes.copy()
                v[j] = b
                variants.append(v)
                labels.append(_word(v, alphabet))
    rows = [Intervention((Placement(parse_pattern(lab.replace("U", "T")), position, strand),), label=lab)
            for lab in labels]
    eff = global_importance(model, null, rows, **common)
    gi = eff.global_importance
    table = np.empty((4, k, gi.shape[1]))
    table[codes, np.arange(k)] = gi[0]
    r = 1
    for j in range(k):
        for b in range(4):
            if b != codes[j]:
                table[b, j] = gi[r]
                r += 1
    diff = table - gi[0]
    extras = {"ism_global": table, "ism": diff, "ism_l2": np.sqrt((diff**2).sum(axis=0))}
    return replace(eff, extras=extras)


def _word(codes: np.ndarray, alphabet: str) -> str:
    return "".join(alphabet[c] for c in codes)


def _one_hot(word: str) -> np.ndarray:
    idx = ["ACGT".index(c) for c in word.upper().replace("U", "T")]
    return np.eye(4)[idx].T


def kmer_alignment_motif(
    kmers: Sequence[str],
    scores: Any,
    *,
    reverse_complement: bool = False,
    min_coverage: float = 0.5,
    pseudocount: float = 0.1,
    alphabet: str = "ACGT",
    id: str = "kmer_alignment",
) -> Motif:
    """A PPM from top k-mers aligned to the best one and weighted by their global importance.

    The k-mers are taken best first. The best is placed in the middle of a canvas; each next one is
    placed at the offset (and, with ``reverse_complement``, the strand) whose letters best match the
    weighted letter counts placed so far, ties going to the smallest shift and then the forward strand,
    and its one-hot letters are added with weight max(score, 0). Each column's probabilities are the
    weighted letter frequencies of the k-mers that cover it; columns covered by less than
    ``min_coverage`` of the total weight are trimmed from either end.

    Parameters
    ----------
    kmers : sequence of str
        Equal-length k-mers (A, C, G, T/U), e.g. the top 10 of a k-mer scan.
    scores : array-like of shape (n,)
        Their global importances (model output units); k-mers scoring <= 0 get no weight.
    reverse_complement : bool
        Also try each k-mer's reverse complement (for double-stranded DNA models). Default is False
        (the paper aligns single-stranded RNA k-mers).
    min_coverage : float
        Fraction of the total weight a column must be covered by to be kept, in (0, 1]. Default is 0.5.
    pseudocount : float
        Probability mass mixed uniformly into every column, p' = (p + pseudocount / 4) / (1 + pseudocount),
        so that a motif from a handful of k-mers claims no probability of exactly 0 or 1 (as PPMs from
        MEME or JASPAR do not); 0 gives the raw weighted frequencies. Default is 0.1.
    alphabet : {"ACGT", "ACGU"}
        Alphabet of the motif. Default is "ACGT".
    id : str
        Motif id (no whitespace). Default is "kmer_alignment".

    Returns
    -------
    Motif
        Its PPM has shape (4, w) with k <= w <= 3k - 2 (columns sum to 1); ``nsites`` is the number of
        k-mers with weight.

    Raises
    ------
    InputError
        For no k-mers, k-mers of different lengths or letters, a score count that differs, no positive
        score, ``min_coverage`` outside (0, 1], or a negative ``pseudocount``.
    InputTypeError
        For k-mers that are not strings.

    Notes
    -----
    Koo et al. (2021), Materials and methods: "greedily aligning the top 10 k-mers ... to the top k-mer
    according to the maximum cross-correlation value. The nucleotide frequency, weighted by the global
    importance score for each k-mer, gives a matrix that resembles a position probability matrix." Unlike
    the reference code (``explain.kmer_alignment_motif``) the top k-mer itself is counted, no column is
    dropped at the end, columns are normalised to sum to 1, and each k-mer is aligned to the weighted
    profile so far rather than to the top k-mer alone.
    """
    kmers = list(kmers)
    if not kmers:
        raise InputError("kmers is empty; pass at least one k-mer.")
    if not all(isinstance(w, str) for w in kmers):
        raise InputTypeError("kmers must be strings such as 'CACGTG'.")
    k = len(kmers[0])
    if any(len(w) != k or not re.fullmatch(r"[ACGTUacgtu]+", w) for w in kmers):
        raise InputError(f"kmers must all be {k} letters of A, C, G, T/U; got {kmers[:3]}...")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.shape != (len(kmers),) or not np.isfinite(scores).all():
        raise InputError(f"scores has {scores.size} values for {len(kmers)} k-mers; give one finite score each.")
    check_scalar(min_coverage, "min_coverage", (int, float), min_val=1e-9, max_val=1)
    check_scalar(pseudocount, "pseudocount", (int, float), min_val=0)
    order = np.argsort(-scores, kind="stable")
    weights = np.maximum(scores[order], 0)
    used = [(kmers[i], w) for i, w in zip(order, weights) if w > 0]
    if not used:
        raise InputError("no k-mer has a positive score; the alignment motif weights k-mers by their global "
                         "importance, so at least one must be > 0.")
    width = 3 * k - 2
    counts = np.zeros((4, width))
    cover = np.zeros(width)
    for n, (word, w) in enumerate(used):
        hot = _one_hot(word)
        options = [hot, hot[::-1, ::-1]] if reverse_complement else [hot]
        if n == 0:
            best = (k - 1, hot)
        else:
            scored = [(float((counts[:, o:o + k] * h).sum()), -abs(o - (k - 1)), -s, o, h)
                      for s, h in enumerate(options) for o in range(width - k + 1)]
            top = max(scored, key=lambda t: t[:3])
            best = (top[3], top[4])
        counts[:, best[0]:best[0] + k] += w * best[1]
        cover[best[0]:best[0] + k] += w
    total = sum(w for _, w in used)
    ppm = np.divide(counts, cover, out=np.full_like(counts, 0.25), where=cover > 0)
    ppm = (ppm + pseudocount / 4) / (1 + pseudocount)
    kept = np.flatnonzero(cover >= min_coverage * total)
    first, last = (kept[0], kept[-1]) if kept.size else (k - 1, 2 * k - 2)
    return Motif(id, ppm[:, first:last + 1], name=f"aligned top {len(used)} {k}-mers", alphabet=alphabet,
                 nsites=len(used))


def motif_id(null: str, output: str) -> str:
    """The id of the alignment motif of one output on one null: ``gia_<null>_<output>``, whitespace as "_"."""
    return re.sub(r"\s+", "_", f"gia_{null}_{output}".strip())


def kmer_scan(
    model: Predictor,
    null: Null,
    *,
    k: int = 6,
    position: int | None = None,
    strand: str = "+",
    top: int = 10,
    alphabet: str = "ACGT",
    reverse_complement: bool = False,
    target: Any = None,
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = False,
) -> Effects:
    """Ab initio k-mer scan: the global importance of all 4^k k-mers embedded at one position.

    Every k-mer is embedded at ``position`` in every background (4^k N forward passes, batched across
    k-mers and backgrounds). For each output, the ``top`` k-mers are kept with their local importances
    (a second, small pass), aligned into a motif (:func:`kmer_alignment_motif`), and the best one gets a
    global ISM (:func:`global_ism`, 3k + 1 more rows).

    Parameters
    ----------
    model : Predictor
    null : Null
    k : int
        k-mer length, 1..10. Default is 6 (the paper's; 7 is the reference class default).
    position : int or None
        0-based start; None centres the k-mer ((L - k) // 2; the paper's 17 for 41 nt and k = 6-7).
        Default is None.
    strand : {"+", "random"}
        "+" embeds each k-mer as labelled; "random" embeds it or its reverse complement, drawn per
        background. ("-" is refused: the same 4^k sequences as "+" under other labels.) Default is "+".
    top : int
        k-mers kept per output. Default is 10 (the paper aligns the top 10).
    alphabet : {"ACGT", "ACGU"}
        Letters of the k-mer labels. Default is "ACGT".
    reverse_complement : bool
        Let the alignment motif use reverse complements. Default is False.
    target, batch_size, random_state, verbose
        As :func:`global_importance`.

    Returns
    -------
    Effects
        Rows: all 4^k k-mers in :func:`all_kmers` order, with global importances and standard errors
        (``local_importance`` is None: 4^k N K values would not fit in memory). Extras, K = outputs:

        - ``top_index``: (top, K), int64, rows of the best k-mers per output, best first;
        - ``top_local``: (top, N, K), float32, their local importances;
        - ``ism``, ``ism_global``: (4, k, K), float64, global ISM of each output's top k-mer (see
          :func:`global_ism`; column K holds output K's own top k-mer);
        - ``ism_l2``: (k, K), float64.

        Tables: ``top_kmers`` (target, rank, kmer, global_importance, standard_error, n). Motifs: one
        alignment motif per output, id ``gia_<null>_<output>``.

    Raises
    ------
    InputError
        For k outside 1..10, ``top`` < 1, strand "-", or a position where the k-mer does not fit.
    """
    check_scalar(top, "top", int, min_val=1)
    if strand == "-":
        raise InputError("strand '-' scans the same 4^k sequences as '+' (each k-mer's reverse complement is "
                         "another k-mer), under the other labels; use strand='+', or 'random' to draw the strand "
                         "per background.")
    words = all_kmers(k, alphabet=alphabet)
    length = null.one_hot.shape[2]
    position = centre(length, k) if position is None else position
    common = {"batch_size": batch_size, "random_state": random_state, "verbose": verbose}
    rows = [Intervention((Placement(parse_pattern(w.replace("U", "T")), position, strand),), label=w) for w in words]
    eff = global_importance(model, null, rows, target=target, keep_local=False, **common)
    names = list(model.output_names)
    targets, gi = eff.targets, eff.global_importance
    top = min(top, len(words))
    order = np.argsort(-np.nan_to_num(gi, nan=-np.inf), axis=0, kind="stable")[:top]  # (top, K)
    union = sorted(set(order.ravel().tolist()))
    again = global_importance(model, null, [rows[i] for i in union], target=target,
                              null_predictions=eff.null_predictions, **common)
    where = {r: i for i, r in enumerate(union)}
    n_bg = len(null)
    top_local = np.empty((top, n_bg, len(targets)), dtype=np.float32)
    records, motifs, warnings = [], [], list(eff.warnings)
    ism = np.zeros((4, k, len(targets)))
    ism_global = np.zeros((4, k, len(targets)))
    ism_l2 = np.zeros((k, len(targets)))
    done: dict[str, Effects] = {}
    for t, out in enumerate(targets):
        label = names[out]
        for rank, r in enumerate(order[:, t]):
            top_local[rank, :, t] = again.local_importance[where[int(r)], :, t]
            records.append({"target": label, "rank": rank + 1, "kmer": words[r],
                            "global_importance": float(gi[r, t]), "standard_error": float(eff.standard_error[r, t]),
                            "n": int(eff.n[r])})
        best = words[order[0, t]]
        try:
            motifs.append(kmer_alignment_motif([words[r] for r in order[:, t]], gi[order[:, t], t],
                                               reverse_complement=reverse_complement, alphabet=alphabet,
                                               id=motif_id(null.name, label)))
        except InputError as exc:
            warnings.append(f"no alignment motif for {label} on null {null.name!r}: {exc}")
        if best not in done:
            done[best] = global_ism(model, null, best, position=position, strand=strand, alphabet=alphabet,
                                    target=target, null_predictions=eff.null_predictions, **common)
        for name, arr in (("ism", ism), ("ism_global", ism_global)):
            arr[..., t] = done[best].extras[name][..., t]
        ism_l2[:, t] = done[best].extras["ism_l2"][:, t]
    extras = {"top_index": order.astype(np.int64), "top_local": top_local, "ism": ism, "ism_global": ism_global,
              "ism_l2": ism_l2}
    table = Table.from_records(records, ["target", "rank", "kmer", "global_importance", "standard_error", "n"])
    return replace(eff, extras=extras, tables={"top_kmers": table}, motifs=tuple(motifs), warnings=tuple(warnings))
