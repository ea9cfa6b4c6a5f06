"""Peak memory of attributions streamed to disk: 10,000 against 100,000 sequences of 200 bp, in one run.

Goal (issue 9): ``interpkit run METHOD`` over 100,000 sequences peaks at most 10% above the same run
over 10,000 (memory independent of N). Each run is a fresh ``python -m interpkit run`` process on
the embedded ExplaiNN (200 bp, one output) and a FASTA of random sequences (seeded); its peak
resident set size is the kernel's ``ru_maxrss`` for that process alone (``os.wait4``). The whole
run's one-hot, attribution and hypothetical arrays for 100,000 sequences are 0.96 GB, so a run that
held them would show it.

Run: python bench/attribution_memory.py [--method saliency] [--sizes 10000 100000] [--chunk-size 10000]
     [--option n_references=2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "interpkit" / "data" / "default_model" / "model.pth"
GOAL = 1.10


def write_fasta(path: Path, n: int, length: int = 200, seed: int = 0) -> None:
    """``n`` uniform random sequences of ``length`` bp, written in blocks (the writer stays small too)."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(path, "w") as handle:
        for start in range(0, n, 10_000):
            block = letters[rng.integers(0, 4, size=(min(10_000, n - start), length))]
            handle.writelines(f">s{start + i}\n{row.tobytes().decode()}\n" for i, row in enumerate(block))


def peak_rss(argv: list[str]) -> tuple[float, float]:
    """Run ``argv``; return (wall seconds, peak RSS in MiB) of that process alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="saliency", help="A per-sequence method (saliency, deeplift, ism).")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="A method option, e.g. n_references=2; repeatable.")
    args = parser.parse_args()
    options = [f"--{k.replace('_', '-')}={v}" for k, v in (o.split("=", 1) for o in args.option)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            fasta = Path(tmp) / f"random_{n}.fa"
            write_fasta(fasta, n)
            out = Path(tmp) / f"out_{n}"
            wall, rss = peak_rss([sys.executable, "-m", "interpkit", "run", args.method, str(MODEL), "-s", str(fasta),
                                  "-o", str(out), "--chunk-size", str(args.chunk_size), *options])
            size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
            rows.append((n, wall, rss, size))
            print(f"{args.method} N={n:>7,}: {wall:7.1f} s, peak RSS {rss:7.1f} MiB, outputs {size:7.1f} MiB",
                  flush=True)
    growth = rows[-1][2] / rows[0][2]
    verdict = "meets" if growth <= GOAL else "MISSES"
    print(f"peak RSS {rows[-1][0]:,} / {rows[0][0]:,} sequences = {growth:.3f} ({verdict} the goal <= {GOAL:.2f})")
    return 0 if growth <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
