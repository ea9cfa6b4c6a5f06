"""GIA k-mer scan vs a bare batched forward pass and vs tangermeme's ``marginalize``, one run.

The work: every 4^k k-mer embedded at the centre of N backgrounds (profile null of 1,000 real TAp73alpha
ChIP-seq peaks, 200 bp) and run through the real ExplaiNN checkpoint
(../shared/checkpoints/explainn_tf_binding/model_epoch_best_4.pth, 3 outputs), i.e. 4^k N forward passes.

Printed, each measured in this run, as wall-clock and as CPU time of this process (the CPU ratio is the
one to read on a shared machine, where other processes stretch wall time unevenly):

- scan / bare: interpkit's scan (``global_importance`` over all k-mers, null predictions included) over
  ``model.predict`` on an already-built array of the same 4^k N sequences, same batch size. Goal <= 1.15.
  Also the time of interpkit's own work alone (the scan with a model whose predictions cost nothing but
  input validation).
- full / bare: the whole ``kmer-scan`` experiment (plus the top-k local pass, alignment motifs and the
  global ISM of each output's top k-mer).
- tangermeme / scan: tangermeme 1.6 ``marginalize`` called once per k-mer on the same backgrounds (its way
  of doing this work: it predicts the backgrounds again with every k-mer, in batches of at most N), same
  batch size. Goal > 1 (interpkit faster). Its global importances are checked equal to ours.

Sides run in interleaved rounds and each keeps its best time; the per-round ratios (the two sides side by
side in one round) and their median are printed too, since on a shared machine the best times of the two
sides can come from different rounds. On the 2-core development machine the full
4096 x 1000 scan takes 10-30 minutes per side, so the defaults are smaller; --n-backgrounds 1000 runs the
issue's size. The batch size matters on a CPU (cache): 64-128 is about twice as fast as 512 for ExplaiNN.

Run: python bench/gia_overhead.py [--kmers 6] [--n-backgrounds 20] [--batch-size 128] [--repeats 3]
     [--no-tangermeme]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from interpkit_gia.interventions import global_importance
from interpkit_gia.kmers import all_kmers, kmer_scan
from interpkit_gia.nulls import make_null
from interpkit_gia.patterns import Intervention, Placement, parse_pattern

import interpkit
from interpkit.sequences import read_sequences

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _timed(fn):
    """Run ``fn``; returns (its result, wall seconds, CPU seconds of this process, all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def bare(model, null_x: np.ndarray, k: int, position: int, batch_size: int):
    """A call running model.predict over 4^k N prebuilt sequences (a pool of real embedded ones, reused)."""
    n = len(null_x)
    total = 4**k * n
    words = all_kmers(k)
    per_chunk = (1 << 24) // (16 * null_x.shape[2]) // batch_size * batch_size  # the scan's chunk: 16 MiB
    pool_rows = max(1, min(4**k, per_chunk // n))  # k-mers per pool, so both sides predict arrays of one size
    pool = np.repeat(null_x[None], pool_rows, axis=0)
    for i in range(pool_rows):
        pool[i, :, :, position:position + k] = np.eye(4, dtype=np.float32)[["ACGT".index(c) for c in words[i]]].T
    pool = pool.reshape(-1, 4, null_x.shape[2])

    def run() -> None:
        done = 0
        while done < total:
            m = min(len(pool), total - done)
            model.predict(pool[:m], batch_size=batch_size)
            done += m
    return run


class _Free(interpkit.Predictor):
    """The same model's interface with free predictions: times everything but the forward passes."""

    def __init__(self, inner) -> None:
        self.inner = inner

    @property
    def input_spec(self):
        return self.inner.input_spec

    @property
    def output_names(self):
        return self.inner.output_names

    def predict(self, X, *, batch_size=None):
        from interpkit.validation import check_one_hot

        check_one_hot(X, length=200)  # the validation every backend does
        return np.zeros((len(X), len(self.output_names)), dtype=np.float32)


def tangermeme_scan(module, null_x: np.ndarray, k: int, position: int, batch_size: int) -> np.ndarray:
    """Global importances (4^k, 3) by tangermeme's marginalize, one call per k-mer."""
    import torch
    from tangermeme.marginalize import marginalize

    x = torch.from_numpy(null_x)
    out = np.empty((4**k, 3))
    for i, word in enumerate(all_kmers(k)):
        before, after = marginalize(module, x, word, start=position, batch_size=batch_size, device="cpu")
        out[i] = (after - before).double().mean(dim=0).numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kmers", type=int, default=6, help="k: the scan embeds all 4^k k-mers")
    parser.add_argument("--n-backgrounds", type=int, default=20, help="backgrounds (profile null)")
    parser.add_argument("--batch-size", type=int, default=128, help="sequences per forward pass, all sides "
                        "(128 is about the fastest for ExplaiNN on a CPU; tangermeme's batches are at most N)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds of every side; best kept")
    parser.add_argument("--no-tangermeme", action="store_true", help="skip the tangermeme comparison")
    args = parser.parse_args()

    model = interpkit.load(SHARED / "checkpoints" / "explainn_tf_binding" / "model_epoch_best_4.pth", arch="explainn")
    _, X = read_sequences(SHARED / "data" / "peaks" / "TAp73alpha.fa", length=200)
    null = make_null(X, "profile", n=args.n_backgrounds, random_state=0)
    k, n, bs = args.kmers, args.n_backgrounds, args.batch_size
    position = (200 - k) // 2
    rows = [Intervention((Placement(parse_pattern(w), position),), label=w) for w in all_kmers(k)]
    model.predict(null.one_hot, batch_size=bs)  # warm-up (dry run, allocator)
    print(f"ExplaiNN (real), 200 bp, {4**k} {k}-mers x {n} backgrounds = {4**k * n:,} sequences, batch {bs}")

    sides = {"bare": bare(model, null.one_hot, k, position, bs),
             "scan": lambda: global_importance(model, null, rows, keep_local=False, batch_size=bs)}
    if not args.no_tangermeme:
        sides["tangermeme"] = lambda: tangermeme_scan(model.module, null.one_hot, k, position, bs)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    outputs = {}
    for _ in range(args.repeats):  # interleaved rounds: load from other processes hits every side alike
        for name, fn in sides.items():
            outputs[name], wall, cpu = _timed(fn)
            times[name].append((wall, cpu))
    best = {name: (min(w for w, _ in t), min(c for _, c in t)) for name, t in times.items()}
    _, own, _ = _timed(lambda: global_importance(_Free(model), null, rows, keep_local=False, batch_size=bs))
    _, full, full_cpu = _timed(lambda: kmer_scan(model, null, k=k, batch_size=bs))
    (bw, bc), (sw, sc) = best["bare"], best["scan"]
    pairs = [s_[0] / b_[0] for b_, s_ in zip(times["bare"], times["scan"])]  # side by side, same round
    rounds = ", ".join(f"{r:.3f}" for r in pairs)
    print(f"{'':18}{'wall s':>9}{'CPU s':>9}   best of {args.repeats} interleaved rounds")
    print(f"bare predict      {bw:9.2f}{bc:9.2f}   {4**k * n / bw:,.0f} seq/s")
    print(f"interpkit scan    {sw:9.2f}{sc:9.2f}   scan / bare = {sw / bw:.3f} wall, {sc / bc:.3f} CPU "
          f"(per round, wall: {rounds}; median {float(np.median(pairs)):.3f})  goal <= 1.15")
    print(f"  interpkit's own work alone (building, validation, bookkeeping; predictions free): {own:.2f} s "
          f"= {own / bw:.1%} of bare")
    print(f"interpkit full    {full:9.2f}{full_cpu:9.2f}   full / bare = {full / bw:.3f} wall, {full_cpu / bc:.3f} CPU "
          "(+ top-k local pass, alignment motifs, global ISM)")
    if "tangermeme" in best:
        tw, tc = best["tangermeme"]
        ours = outputs["scan"].global_importance
        diff = np.abs(outputs["tangermeme"] - ours).max() / np.abs(ours).max()
        print(f"tangermeme        {tw:9.2f}{tc:9.2f}   tangermeme / scan = {tw / sw:.2f} wall, {tc / sc:.2f} CPU "
              f"(goal > 1); same global importances to {diff:.1e} of their scale")

if __name__ == "__main__":
    main()
