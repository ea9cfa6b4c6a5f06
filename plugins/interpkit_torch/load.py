"""Loading PyTorch models: nn.Module objects, TorchScript files and (with ``trust=True``) pickled modules.

What a file holds is decided by its content, not its suffix: a zip archive with ``code/``
and ``constants.pkl`` entries is TorchScript (``torch.jit.load``); anything else is read
with ``torch.load(weights_only=True)``, which refuses pickled Python objects unless
``trust=True``. A file holding only a state_dict needs its architecture: ``arch=`` with a
model plugin (``interpkit.load(path, arch="basset")``), whose loader builds the module,
loads the weights (e.g. with :func:`interpkit_torch.checkpoint.load_weights`) and hands the module to :func:`load`.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import pickle
import pickletools
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from interpkit._io import file_digest
from interpkit.adapt import OutputReduction, read_output_names, resolve_alphabet
from interpkit.errors import InputError, InputTypeError, MissingFileError, first_line
from interpkit.predictor import LAYOUTS
from interpkit.validation import check_choice, check_scalar
from interpkit_torch.checkpoint import STATE_DICT_WRAPPERS
from interpkit_torch.layers import infer_layout, infer_length, torch_class
from interpkit_torch.model import TorchModel

__all__ = ["is_torchscript", "load", "pickle_globals", "read_checkpoint"]



def is_torchscript(path: str | os.PathLike) -> bool:
    """Whether a file is a TorchScript archive (a zip with ``code/`` and ``constants.pkl`` entries)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)



def _existing(path: Any) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"model file {path} does not exist.")
    if not path.is_file():
        raise InputError(f"model file {path} is a directory; pass the checkpoint file itself.")
    return path


#: Pickle opcodes that push a string (the module and name STACK_GLOBAL imports come from them).
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
                         "SHORT_BINSTRING"})
#: What every torch.save file refers to (tensor rebuilding); not worth naming in a message.
_ROUTINE = ("torch._utils.", "collections.OrderedDict", "torch.storage.")
#: Opcodes :func:`pickle_globals` reads per pickle at most.
_SCANNED_OPS = 1_000_000


def pickle_globals(path: str | os.PathLike) -> list[str] | None:
    """The Python objects (``module.name``) that a pickle or ``torch.save`` file imports when loaded.

    Read with :mod:`pickletools`, which parses opcodes and runs nothing: the pickles of a
    legacy ``torch.save`` file in turn, or ``data.pkl`` of a zip one, up to
    :data:`_SCANNED_OPS` opcodes (enough for the names of any model). Routine
    tensor-rebuilding names (``torch._utils.*``, ``collections.OrderedDict``) are left out.

    Parameters
    ----------
    path : path-like
        A file that exists.

    Returns
    -------
    list of str or None
        Names in order of first use; None when the file does not start with a complete pickle.
    """
    found: list[str] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                if member is None:
                    return None
                handle: Any = io.BytesIO(archive.read(member))
        else:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return None
    complete = 0  # pickles read to their STOP opcode
    with handle:
        strings: list[str] = []
        memo: dict[Any, str | None] = {}
        for _ in range(4):  # a legacy torch.save file is four pickles in a row
            top, count = None, 0  # the string the last opcode pushed, if it pushed one
            try:
                for count, (op, arg, _pos) in enumerate(pickletools.genops(handle)):
                    if count == _SCANNED_OPS:
                        raise EOFError  # long enough: stop reading
                    if op.name in _STRING_OPS or op.name in ("BINGET", "LONG_BINGET", "GET"):
                        top = str(arg) if op.name in _STRING_OPS else memo.get(arg)
                        strings.append(top or "")
                        continue
                    if op.name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):  # the stack is unchanged
                        memo[len(memo) if op.name == "MEMOIZE" else arg] = top
                        continue
                    if op.name in ("GLOBAL", "INST"):
                        found.append(str(arg).replace(" ", "."))
                    elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    top = None
            except (ValueError, EOFError):  # the end of the pickles, not a pickle at all, or long enough
                if count >= _SCANNED_OPS:
                    complete += 1
                break
            complete += 1
    if not complete:
        return None
    return [n for n in dict.fromkeys(found)
            if not n.startswith(_ROUTINE) and not (n.startswith("torch.") and n.endswith("Storage"))]


def _named(items: Sequence[str], show: int = 3) -> str:
    more = f" and {len(items) - show} more" if len(items) > show else ""
    return ", ".join(items[:show]) + more


def _short(exc: BaseException) -> str:
    """A framework error's first sentence (torch appends paragraphs of advice to one line)."""
    line = first_line(exc)
    return line.split(". ")[0].rstrip(".") if len(line) > 120 else line.rstrip(".")


def read_checkpoint(path: str | os.PathLike, *, trust: bool = False, arch: str | None = None) -> Any:
    """What a ``torch.save`` file holds, loaded on the CPU.

    Parameters
    ----------
    path : path-like
    trust : bool
        Allow pickled Python objects (``torch.load(weights_only=False)``; a plain pickle is
        then also accepted). Loading a pickle runs code from the file. Default is False.
    arch : str or None
        The architecture the weights are for, when an architecture loader reads them: such
        loaders never unpickle objects, so the message for a pickle of objects says how to
        re-save the weights instead of offering ``trust``. Default is None.

    Returns
    -------
    object
        A state_dict, a checkpoint dict, or (trusted) a pickled module.

    Raises
    ------
    MissingFileError
        If the file does not exist.
    InputError
        If the file holds pickled Python objects and ``trust`` is False (the message names
        them and says how to allow it), or cannot be read (corrupt, truncated, not a checkpoint).
    """
    path = _existing(path)
    trust = trust and arch is None
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it reads anyway
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        error: Exception = exc
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, ImportError, KeyError) as exc:
        error = exc
    if trust:  # a plain pickle (not torch.save); if it fails too, torch's error below names the format
        with contextlib.suppress(Exception), open(path, "rb") as handle:
            return pickle.load(handle)
    refused = "Weights only load failed" in str(error)  # torch's safe unpickler stopped
    names = pickle_globals(path) if refused else None
    if names is not None:  # a readable pickle that refers to more than tensors
        what = f"Python objects ({_named(names)})" if names else "Python objects"
        if arch is not None:
            raise InputError(
                f"model file {path} holds a pickle of {what}, not only tensors; arch={arch!r} (--arch) reads "
                "weights only and never runs code from a file. Re-save the weights alone with "
                "torch.save(model.state_dict(), path) (or, for a file you trust, "
                "torch.load(path, weights_only=False)[\"state_dict\"])."
            ) from None
        raise InputError(
            f"model file {path} holds a pickle of {what}; unpickling runs code from the file, so interpkit loads "
            "weights only by default. If you trust the file, pass trust=True (--trust); otherwise save the "
            "state_dict and load it with arch= (--arch)."
        ) from None
    if refused:  # ... at the first bytes
        reason = "it is neither a zip archive nor a pickle"
    else:
        reason = f"{type(error).__name__}: {_short(error)}" if str(error).strip() else f"{type(error).__name__}"
    raise InputError(f"model file {path} could not be read as a PyTorch checkpoint ({reason}); it may be truncated "
                     "or corrupt, or not a torch.save/TorchScript file: check the download or save it again."
                     ) from None


def _state_dict(obj: Any) -> Mapping[str, torch.Tensor] | None:
    """The state_dict inside ``obj`` (itself, or under "state_dict"/"model_state_dict"/"model"), else None."""
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, Mapping):
        for key in STATE_DICT_WRAPPERS:
            if key in obj and _state_dict(obj[key]) is not None:
                return obj[key]
    return None


def _json_ready(info: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): v if isinstance(v, (str, int, float, bool, type(None))) else str(v) for k, v in info.items()}


def _torch_architectures() -> list[str]:
    from interpkit.plugins import get_registry

    return sorted(name for name, spec in get_registry().models.items() if spec.backend == "torch")


def _read_file(path: Path, *, trust: bool, device: torch.device) -> nn.Module:
    if is_torchscript(path):
        try:
            with warnings.catch_warnings():  # torch 2.x deprecates TorchScript; the user's file is what it is
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(str(path), map_location=device)
        except (RuntimeError, ValueError, OSError) as exc:
            raise InputError(f"model file {path} could not be read as TorchScript ({first_line(exc)}); is it "
                             "complete?") from None
    obj = read_checkpoint(path, trust=trust)
    if isinstance(obj, nn.Module):
        return obj.to(device)
    state = _state_dict(obj)
    if state is not None:
        archs = ", ".join(_torch_architectures()) or "none installed"
        raise InputError(
            f"model file {path} holds a state_dict ({len(state)} weight tensors, e.g. {next(iter(state))!r}) but "
            f"no architecture; pass arch= one of: {archs} (--arch), or build the nn.Module yourself, load the "
            "weights into it (module.load_state_dict(torch.load(path, weights_only=True))) and pass the module "
            "to interpkit.load()."
        )
    raise InputError(f"model file {path} holds {type(obj).__name__}, not an nn.Module or a state_dict.")


def _device(device: Any) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device == {device!r}, must be 'cpu', 'cuda', 'cuda:N' or None (CUDA if available)."
                         ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device == {device!r} but CUDA is not available here; use device='cpu' or None.")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device == {device!r}, must be 'cpu', 'cuda', 'cuda:N' or None.")
    return dev




def _output(output: Any) -> OutputReduction | None:
    if output is None or isinstance(output, OutputReduction):
        return output
    if isinstance(output, str):
        return OutputReduction.parse(output)
    raise InputTypeError(f"output must be an OutputReduction or a str such as 'max:4000:6000@1,2', got "
                         f"{type(output).__name__}.")


def _extra_inputs(module: nn.Module, name: str, extra: Any) -> dict[str, np.ndarray]:
    """Check extra inputs against forward()'s signature; values as float32 arrays (one per sequence)."""
    extra = dict(extra or {})
    try:
        params = list(inspect.signature(module.forward).parameters.values())[1:]
    except (TypeError, ValueError):  # TorchScript methods may have no Python signature
        params = []
    any_name = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    required = [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [n for n in required if n not in extra]
    if missing:
        raise InputError(f"model {name}'s forward() takes extra input(s) {', '.join(missing)}; pass extra_inputs="
                         "{name: array} with one value per sequence (broadcast to the batch).")
    unknown = sorted(set(extra) - named) if not any_name else []
    if unknown:
        raise InputError(f"extra_inputs names {unknown} are not arguments of model {name}'s forward() "
                         f"({', '.join(sorted(named)) or 'none'}).")
    out = {}
    for key, value in extra.items():
        try:
            out[key] = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputTypeError(f"extra_inputs[{key!r}] must be a numeric array.") from None
    return out


def load(
    source: Any,
    *,
    layout: str | None = None,
    length: int | None = None,
    alphabet: str | None = None,
    output: OutputReduction | str | None = None,
    output_names: Sequence[str] | None = None,
    labels: str | os.PathLike | None = None,
    extra_inputs: Mapping[str, Any] | None = None,
    trust: bool = False,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
) -> TorchModel:
    """Wrap a PyTorch model for interpkit: an nn.Module, a TorchScript file, or (trusted) a pickled module.

    Parameters
    ----------
    source : nn.Module or path-like
        An ``nn.Module`` (or TorchScript module) object, or a file: TorchScript (any of
        .pt/.pth/.ts), or a ``torch.save`` pickle of a whole module (needs ``trust``). A
        file holding only a state_dict needs ``arch=`` in :func:`interpkit.load`.
    layout : {"NCL", "NLC", "NC1L", "NCL1"} or None
        Layout of the model's input. Default is None: from the first convolution (Conv1d
        on 4 channels: "NCL"; Conv2d kernel (k, 1): "NCL1", (1, k): "NC1L").
    length : int or None
        Input length in bp. Default is None: solved from the first nn.Linear after the
        convolution stack when exactly one length fits, else any length (a failure on the
        wrong length is then reported as an InputError naming it).
    alphabet : str or None
        The model's own channel order, e.g. "AGCT" (a permutation of ACGT, or of ACGU for
        RNA). Default is None ("ACGT").
    output : OutputReduction, str or None
        Rule reducing per-position outputs (N, C, P) to (N, T), or its CLI form
        ``REDUCE[:START:END][@C1,C2]``. Default is None: ``OutputReduction()`` (mean over all
        positions of every channel) with an InterpkitWarning when the output is per-position.
    output_names : sequence of str or None
        Output names. Default is None (the module's ``output_names`` attribute, else "out0", ...).
    labels : path-like or None
        Text file with one output name per line (instead of ``output_names``). Default is None.
    extra_inputs : mapping of str to array-like or None
        Extra ``forward()`` arguments by keyword, one value broadcast to every sequence.
        Default is None (required when forward() takes more than the sequences).
    trust : bool
        Allow pickled modules (``torch.load(weights_only=False)``); loading a pickle runs code
        from the file. Default is False.
    device : {"cpu", "cuda", "cuda:N"} or None
        Where the model runs. Default is None (CUDA if available, else CPU).
    batch_size : int or None
        Default batch size of every call. Default is None (from available memory).

    Returns
    -------
    TorchModel

    Raises
    ------
    MissingFileError
        If the file does not exist.
    InputError
        For a corrupt file, a pickle without ``trust``, a bare state_dict (pass ``arch=``),
        an undecidable layout (pass ``layout=``), invalid options, or a model that fails on
        its own declared input length.
    InputTypeError
        For a source that is neither a module nor a path, or options of the wrong type.
    """
    dev = _device(device)
    check_scalar(trust, "trust", bool)  # never truthiness: trust="false" must not run a pickle
    if isinstance(source, nn.Module):
        module, name = source, torch_class(source) if isinstance(source, torch.jit.ScriptModule) else \
            type(source).__name__
        checkpoint = _json_ready(getattr(source, "checkpoint_info", None) or {})
    elif isinstance(source, (str, os.PathLike)):
        path = _existing(source)
        module, name = _read_file(path, trust=trust, device=dev), path.name
        checkpoint = {"file": str(path), "format": "TorchScript" if isinstance(module, torch.jit.ScriptModule)
                      else "pickled nn.Module (trust=True)", "sha256": file_digest(path)}
    else:
        raise InputTypeError(f"the torch backend loads an nn.Module or a model file, not {type(source).__name__}.")
    canonical, model_alphabet = resolve_alphabet(alphabet)
    given = layout
    layout = check_choice(layout, "layout", LAYOUTS) if layout is not None else infer_layout(module, name)
    length_range = None
    if length is not None:
        length = check_scalar(length, "length", int, min_val=1)
    else:
        length_range = infer_length(module, layout)
        if length_range is not None and length_range[0] == length_range[1]:
            length, length_range = length_range[0], None
    if batch_size is not None:
        batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    model = TorchModel(
        module, name=name, layout=layout, length=length, alphabet=canonical, model_alphabet=model_alphabet,
        output=_output(output), output_names=read_output_names(output_names, labels),
        extra_inputs=_extra_inputs(module, name, extra_inputs), device=dev, batch_size=batch_size,
        length_range=length_range, checkpoint=checkpoint,
    )
    try:
        model.output_names  # noqa: B018 - the dry run: checks the model runs and decides the output rule
    except InputError:
        own = _own_layout(module, name) if given is not None else None
        if own is not None and own != layout:  # the layout given contradicts the first convolution
            raise InputError(f"layout == {layout!r} does not fit model {name}: its first convolution reads layout "
                             f"{own} and the model fails on {layout} input; drop layout= (--layout) to use {own}, "
                             "or pass the layout the model was built for.") from None
        if length is not None:
            raise  # the model fails on its own length: say so now
    return model


def _own_layout(module: nn.Module, name: str) -> str | None:
    """The layout the first convolution implies, or None when it does not tell."""
    try:
        return infer_layout(module, name)
    except InputError:
        return None
