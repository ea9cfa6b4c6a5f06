"""NeuronMotif on a Basset-architecture layer-2 neuron: share of time in the model, and neurons per minute.

The model: Kipoi's Basset architecture (600 bp, conv 300x19 - pool 3 - conv 200x11 - pool 4 - ...), with
seeded random weights (no Basset weights exist offline). Layer 2 (the second convolution, receptive field
51 bp, jump 3) is sampled by the genetic algorithm and demixed at the 3-wide pool below it.

Printed, measured in this run:

- model share = seconds inside the model's forward and backward passes (the result's
  ``provenance["timing"]["model_seconds"]``, timed around every ``neuron`` / ``neuron_gradient`` /
  ``activations`` call) / wall seconds of the whole
  ``neuronmotif`` call. Goal >= 0.7: bookkeeping (mutation, crossover, archive, k-means, PPMs) is not
  the bottleneck.
- neurons per minute on this machine (all its cores; 2 on the development machine).

Run: python bench/neuronmotif_speed.py [--neurons 2] [--max-generations 200] [--motif-db none]
"""

from __future__ import annotations

import argparse
import time

import torch
from interpkit_basset.architecture import Basset
from interpkit_neuronmotif.neuronmotif import neuronmotif

import interpkit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=2, help="layer-2 neurons analysed (0..n-1)")
    parser.add_argument("--max-generations", type=int, default=200, help="GA generations at most")
    parser.add_argument("--motif-db", default="none", help="annotation database (none, jaspar or a MEME file)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = interpkit.load(Basset(logits=True).eval(), layout="NCL1", length=600)
    start = time.perf_counter()
    result = neuronmotif(model, layer=4, neurons=f"0:{args.neurons}", max_generations=args.max_generations,
                         motif_db=args.motif_db)
    total = time.perf_counter() - start
    model_s = result.provenance["timing"]["model_seconds"]
    print(f"Basset architecture (random weights), layer 2 (conv 200x11, receptive field 51 bp), "
          f"{args.neurons} neurons, {torch.get_num_threads()} torch threads")
    for row in result.tables["neurons"].rows:
        print(f"  neuron {row[0]}: {row[1]:,} samples, {row[3]} generations, m = {row[4]}, {row[5]} CRMs, "
              f"decoupling {row[6]:.3f}")
    print(f"model share     {model_s / total:.3f}  ({model_s:.1f} s of {total:.1f} s in forward/backward passes; "
          "goal >= 0.7)")
    print(f"neurons/minute  {60 * args.neurons / total:.2f}")


if __name__ == "__main__":
    main()
