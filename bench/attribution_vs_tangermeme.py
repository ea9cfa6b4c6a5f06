"""ISM and DeepLIFT through interpkit vs tangermeme 1.6, same model, sequences and references, one run.

Prints, per model, variants/s (ISM) and (sequence, reference) pairs/s (DeepLIFT) for both (fastest of
3 calls each, interleaved per method), the speed ratio (tangermeme time / interpkit time; > 1 means interpkit is faster) and the largest
difference relative to the attribution scale (results must be equal). Goals (issue 4): ISM >= 3x,
DeepLIFT >= 1.5x. Models: Kipoi Basset architecture (random weights, logits, 600 bp) and the real
ExplaiNN checkpoint (../shared/checkpoints/explainn_tf_binding/model_epoch_best_4.pth, 200 bp).

Run: python bench/attribution_vs_tangermeme.py [--n 8] [--refs 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import interpkit
from interpkit.testing import random_one_hot

SHARED = Path(__file__).resolve().parents[2] / "shared" / "checkpoints"


class _NCL(nn.Module):
    """Basset wants (N, 4, 600, 1); tangermeme passes (N, 4, L)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.unsqueeze(-1))


#: Timed calls per measurement; the fastest counts (the first call of either tool pays one-off set-up costs).
REPEATS = 3


def _timed(fn):
    """Call ``fn`` REPEATS times now (so closures over loop variables are safe): (result, fastest time)."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def models():
    from interpkit_basset.architecture import Basset
    from interpkit_explainn.architecture import Exp
    from interpkit_explainn.model import load_module

    torch.manual_seed(0)
    basset = Basset(logits=True).eval()
    yield "Basset 600 bp", interpkit.load(basset, layout="NCL1", length=600), _NCL(basset), 600, {}
    path = SHARED / "explainn_tf_binding" / "model_epoch_best_4.pth"
    if path.exists():
        from tangermeme.deep_lift_shap import _nonlinear

        net = load_module(path).eval()
        yield "ExplaiNN 200 bp (real)", interpkit.load(path, arch="explainn"), net, 200, {Exp: _nonlinear}


def main(argv=None) -> None:
    from interpkit_deeplift.deeplift import deeplift_from_references, deeplift_references
    from tangermeme.deep_lift_shap import deep_lift_shap
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="sequences")
    parser.add_argument("--refs", type=int, default=20, help="references per sequence (DeepLIFT)")
    args = parser.parse_args(argv)
    print(f"{'model':24} {'method':9} {'interpkit/s':>12} {'tangermeme/s':>13} {'speed ratio':>12} {'max rel diff':>13}")
    for label, model, module, length, nonlinear in models():
        # every lambda below runs at once inside _timed, so binding loop variables late is harmless
        X = random_one_hot(args.n, length)
        xt = torch.from_numpy(X)
        variants = args.n * 3 * length
        ours, t_ours = _timed(lambda: interpkit.run("ism", model, X, target=0).arrays["hypothetical"][:, 0])  # noqa: B023
        theirs, t_theirs = _timed(lambda: saturation_mutagenesis(module, xt, target=0, hypothetical=True,  # noqa: B023
                                                                 device="cpu", batch_size=128).numpy())
        diff = np.abs(ours - theirs).max() / np.abs(theirs).max()
        print(f"{label:24} {'ISM':9} {variants / t_ours:12.0f} {variants / t_theirs:13.0f} "
              f"{t_theirs / t_ours:12.2f} {diff:13.1e}")
        refs = deeplift_references(X, n_references=args.refs, random_state=0)
        pairs = args.n * args.refs
        ours, t_ours = _timed(lambda: deeplift_from_references(model, X, refs, target=0)  # noqa: B023
                              .arrays["hypothetical"][:, 0])
        theirs, t_theirs = _timed(lambda: deep_lift_shap(
            module, xt, target=0, references=torch.from_numpy(refs), hypothetical=True, device="cpu",  # noqa: B023
            batch_size=args.refs * 4, additional_nonlinear_ops=nonlinear or None).numpy())  # noqa: B023
        diff = np.abs(ours - theirs).max() / np.abs(theirs).max()
        print(f"{label:24} {'DeepLIFT':9} {pairs / t_ours:12.0f} {pairs / t_theirs:13.0f} "
              f"{t_theirs / t_ours:12.2f} {diff:13.1e}")


if __name__ == "__main__":
    main()
