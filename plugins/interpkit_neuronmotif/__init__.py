"""Bundled plugin: the ``neuronmotif`` method (Wei et al. 2023): CN CRMs of convolutional neurons on any CNN.

Modules: ``stack`` (the convolution stack below a neuron, from the layer table), ``neuron`` (a neuron as a
function of its window, through LayerProbe), ``sampling`` (enumeration and the genetic algorithm),
``demix`` (backward activation-weighted k-means), ``crm`` (binned PPMs, segments, quality),
``neuronmotif`` (the verb, checkpoints), ``result`` and ``report``.
"""

from __future__ import annotations

from interpkit import RANDOM_STATE, VERBOSE, Capability, MethodSpec, Param, hookimpl

__all__ = ["SAMPLINGS", "explain_options", "register_methods"]


def explain_options(model: object, context: object) -> str:
    """Off in ``interpkit explain`` unless asked for: NeuronMotif takes minutes per neuron."""
    return "slow, so off by default; ask with --neuronmotif LAYER[:CHANNELS]"

#: How windows are sampled: "auto" (enumerate under 11 bp, else the GA), or one of the three forced.
SAMPLINGS = ("auto", "enumerate", "ga", "ga-gradient-free")

_PARAMS = (
    Param("layer", str, None, "Convolution layer (name or layer-table index; `interpkit info MODEL` lists them)."),
    Param("neurons", str, "all", "Channels: all, '0,3,7' or START:STOP.", accepts=(int, list, tuple)),
    Param("sampling", str, "auto", "auto (enumerate windows under 11 bp, else the genetic algorithm), enumerate, "
          "ga, ga-gradient-free.", choices=SAMPLINGS),
    Param("m", str, "auto", "Flexible motifs per pool (p^m clusters per pool of size p), or auto (the decoupling "
          "indicator's 0.95 rule).", accepts=(int,)),
    Param("max_m", int, 3, "Largest m tried by auto.", min=1),
    Param("population", int, None, "GA population (unset: clamp(R/20 x 1000, 2000, 5000)).", min=10),
    Param("max_generations", int, 200, "GA generations at most.", min=1),
    Param("bins", int, 50, "Activation bins of the CRM PPMs and archive strata.", min=1),
    Param("min_split", int, 50, "Clusters smaller than this are not split.", min=2),
    Param("checkpoint_dir", str, None, "Directory for finished neurons; a rerun resumes from it (unset on the "
          "command line: OUT/checkpoints)."),
    Param("seed_from", str, None, "Output directory of this method on the layer below: the GA starts from its CRMs' "
          "consensus sequences."),
    Param("n_jobs", int, 1, "Neurons analysed at once on worker threads (-1: one per CPU core).", min=-1),
    Param("motif_db", str, "jaspar", "Motifs annotating segments and the dictionary: jaspar (pyjaspar's newest "
          "CORE vertebrates, offline), a MEME file, or none."),
    RANDOM_STATE,
    VERBOSE,
)

_SUMMARY = ("NeuronMotif: sample windows that activate convolutional neurons, demix them through the max-pools into "
            "CN CRMs (motif arrangements), with PPMs, segments and a quality ranking.")
_SOURCE = "Wei, Zhang, Wang et al. (2023) PNAS 120:e2216698120 (NeuronMotif); reference code wzthu/NeuronMotif."


@hookimpl
def register_methods() -> list[MethodSpec]:
    """The neuronmotif method (needs layers and single neurons; gradients make sampling faster)."""
    spec = MethodSpec("neuronmotif", "interpkit_neuronmotif.neuronmotif:neuronmotif", _SUMMARY,
                      requires=frozenset({Capability.LAYERS, Capability.NEURON}), params=_PARAMS, source=_SOURCE,
                      needs_sequences=False, checkpoint_param="checkpoint_dir",
                      explain=explain_options, explain_order=50)
    return [spec]
