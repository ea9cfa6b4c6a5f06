"""interpkit: explain what trained genomics sequence models have learned.

The core defines the model interfaces (:class:`Predictor`, :class:`LayerProbe`),
sequence and motif handling, results and the plugin system; backends (PyTorch,
Keras, ONNX, numpy), methods and model architectures are plugins found through the
``interpkit`` entry-point group. Importing interpkit imports no deep-learning framework.

Plugin authors need only ``from interpkit import hookimpl`` and the spec classes.
"""

__version__ = "0.1.0"

from interpkit.api import describe_model, load, run
from interpkit.chunks import run_chunked
from interpkit.datasets import LabelledSequences, read_labelled
from interpkit.errors import (
    CapabilityError,
    InputError,
    InputTypeError,
    InterpkitError,
    InterpkitWarning,
    MissingFileError,
    OutOfSpaceError,
    PluginError,
)
from interpkit.explain import ExplainRun, explain
from interpkit.meme import read_meme, write_meme
from interpkit.motifs import Motif
from interpkit.params import BATCH_SIZE, RANDOM_STATE, TARGET, TARGETS, VERBOSE, Param, resolve_targets
from interpkit.plugins import get_plugin_manager, get_registry, hookimpl
from interpkit.predictor import LAYOUTS, Capability, InputSpec, Predictor, TorchFunction, capabilities_of
from interpkit.probe import Geometry, LayerInfo, LayerProbe, layer_table, receptive_fields
from interpkit.results import AttributionResult, Result
from interpkit.sequences import (
    dinucleotide_shuffle,
    one_hot_decode,
    one_hot_encode,
    read_bed_windows,
    read_fasta,
    read_sequences,
    reverse_complement,
    shuffle,
)
from interpkit.specs import BackendSpec, MethodSpec, ModelSpec
from interpkit.tables import Table
from interpkit.training import TrainingResult, train

__all__ = [  # noqa: RUF022 - grouped by role, not sorted
    "__version__",
    # verbs
    "load", "run", "run_chunked", "train", "explain", "describe_model",
    # interfaces
    "Predictor", "LayerProbe", "InputSpec", "LayerInfo", "Geometry", "Capability", "LAYOUTS", "TorchFunction",
    "capabilities_of", "receptive_fields", "layer_table",
    # sequences and motifs
    "one_hot_encode", "one_hot_decode", "reverse_complement", "read_fasta", "read_sequences", "read_bed_windows",
    "shuffle", "dinucleotide_shuffle", "Motif", "read_meme", "write_meme",
    # training data
    "LabelledSequences", "read_labelled",
    # results
    "Result", "AttributionResult", "TrainingResult", "ExplainRun", "Table",
    # plugins
    "hookimpl", "get_plugin_manager", "get_registry", "MethodSpec", "BackendSpec", "ModelSpec",
    "Param", "BATCH_SIZE", "TARGET", "TARGETS", "RANDOM_STATE", "VERBOSE", "resolve_targets",
    # errors
    "InterpkitError", "InputError", "InputTypeError", "MissingFileError", "CapabilityError", "PluginError",
    "OutOfSpaceError", "InterpkitWarning",
]
