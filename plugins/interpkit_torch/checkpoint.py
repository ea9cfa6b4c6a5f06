"""Weights-only PyTorch checkpoints for architecture plugins: read, match strictly, fingerprint.

Used by the torch architecture plugins (Basset, DeepSEA, ExplaiNN) and open to third-party ones. Files are read with
``torch.load(..., weights_only=True, map_location="cpu")``, so no code in a checkpoint runs,
and a state_dict loads only when its key names and tensor shapes match the architecture
exactly; otherwise the error lists the missing keys, the unexpected keys and the shape
mismatches (the first few of each).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from interpkit._io import file_digest
from interpkit.errors import InputError, InputTypeError, InterpkitWarning

__all__ = ["STATE_DICT_WRAPPERS", "check_keys", "checkpoint_info", "load_strict", "load_weights", "read_state_dict"]

#: Keys under which training scripts commonly nest the state_dict.
STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model")
#: How many offending keys an error message lists per kind.
_SHOW = 4


def read_state_dict(source: Any, *, arch: str) -> tuple[dict[str, Any], str]:
    """Read a state_dict from a file, a mapping of tensors or an ``nn.Module``.

    Parameters
    ----------
    source : path-like, mapping of str to Tensor, or nn.Module
        A ``torch.save(model.state_dict(), path)`` file (zip or legacy format; CUDA tensors
        are mapped to the CPU), a state_dict in memory, or a module whose state_dict is taken.
        A file holding ``{"state_dict": ...}``, ``{"model_state_dict": ...}`` or ``{"model": ...}`` is unwrapped, and a
        ``module.`` prefix on every key (``nn.DataParallel``) is removed.
    arch : str
        Architecture name, for messages.

    Returns
    -------
    state : dict of str to Tensor
        A plain dict (PyTorch's ``_metadata`` dropped, so BatchNorm layers of files saved
        before PyTorch 0.4.1 get ``num_batches_tracked`` filled in).
    label : str
        The file name, or a description of the in-memory source, for messages.

    Raises
    ------
    MissingFileError
        If ``source`` is a path to no file.
    InputError
        If the file cannot be read by ``torch.load(weights_only=True)`` (corrupt, not PyTorch,
        or holding pickled Python objects) or does not hold a mapping of names to tensors.
    InputTypeError
        If ``source`` is none of the accepted types.
    """
    import torch

    if isinstance(source, (str, os.PathLike)):
        from interpkit_torch.load import read_checkpoint  # one reader: weights only, one set of messages

        label = Path(source).name
        obj = read_checkpoint(source, arch=arch)  # weights only, whatever trust= says elsewhere
    elif isinstance(source, Mapping):
        obj, label = source, "the state_dict given"
    elif callable(getattr(source, "state_dict", None)):
        obj, label = source.state_dict(), f"the {type(source).__name__} given"
    else:
        raise InputTypeError(f"source is a {type(source).__name__}; arch={arch!r} takes a checkpoint path, "
                             "a state_dict or a torch module.")
    if isinstance(obj, Mapping):
        obj = next((obj[k] for k in STATE_DICT_WRAPPERS if isinstance(obj.get(k), Mapping)), obj)
    if not isinstance(obj, Mapping) or not obj or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise InputError(f"{label}: holds a {type(obj).__name__}, not a state_dict (a non-empty mapping of "
                         f"parameter names to tensors) as arch={arch!r} expects.")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state, label


def _first(items: Iterable[str]) -> str:
    items = list(items)
    more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return ", ".join(items[:_SHOW]) + more


def check_keys(expected: Mapping[str, tuple[int, ...]], state: Mapping[str, Any], *, label: str, arch: str) -> None:
    """Raise unless ``state`` has exactly the expected keys and shapes.

    Parameters
    ----------
    expected : mapping of str to tuple of int
        Key -> tensor shape of the architecture's state_dict. Keys ending in
        ``num_batches_tracked`` may be absent (files saved before PyTorch 0.4.1 lack them).
    state : mapping of str to Tensor
    label, arch : str
        For the message.

    Raises
    ------
    InputError
        Naming the missing keys, the unexpected keys and the shape mismatches (first few of each).
    """
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(shape)})"
             for k, shape in expected.items() if k in state and tuple(state[k].shape) != tuple(shape)]
    problems = [f"{what}: {_first(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)) if keys]
    if problems:
        article = "an" if arch[:1].lower() in "aeiou" else "a"
        raise InputError(f"{label} is not {article} {arch} state_dict: {'; '.join(problems)}. The {arch} layout has "
                         f"keys {_first(expected)}; pass the architecture the file was saved from (arch=, --arch).")


def load_strict(module: Any, state: Mapping[str, Any], *, label: str, arch: str) -> Any:
    """Load ``state`` into ``module`` after :func:`check_keys`, then put it in eval mode.

    Returns
    -------
    nn.Module
        ``module`` itself, in eval mode.

    Raises
    ------
    InputError
        From :func:`check_keys`.
    """
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    check_keys(expected, state, label=label, arch=arch)
    module.load_state_dict(dict(state), strict=True)
    return module.eval()


def checkpoint_info(source: Any, known: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """Fingerprint a checkpoint file and compare it with the published files of its architecture.

    Parameters
    ----------
    source : path-like or object
        The checkpoint; anything but a path gives ``md5`` None.
    known : mapping of str to (str, str)
        Published file name -> (md5 hex digest, where it is published).

    Returns
    -------
    dict
        ``file`` (name or None), ``md5`` (hex or None), ``verified`` (True when the md5 equals a
        published file's) and ``reference`` (that file's description, or None); with no
        ``known`` files, only ``file`` and ``md5`` (or {} for an in-memory source).

    Warns
    -----
    InterpkitWarning
        When the file has a published file's name but a different md5 (a retrained, edited
        or damaged copy: its predictions will not match the published model's).
    """
    if not isinstance(source, (str, os.PathLike)):
        return {"file": None, "md5": None, "verified": False, "reference": None} if known else {}
    path = Path(source)
    md5 = file_digest(path, "md5")
    if not known:  # no published files to compare with: just the fingerprint
        return {"file": path.name, "md5": md5}
    reference = next((f"{name}, {where}" for name, (digest, where) in known.items() if digest == md5), None)
    if reference is None and path.name in known:
        digest, where = known[path.name]
        warnings.warn(f"{path}: md5 {md5} differs from the published {path.name} ({where}, md5 {digest}); "
                      "this is another file under that name, so results may differ from the published model's.",
                      InterpkitWarning, stacklevel=2)
    return {"file": path.name, "md5": md5, "verified": reference is not None, "reference": reference}


def load_weights(module: Any, source: Any, *, arch: str | None = None) -> Any:
    """Read a state_dict (file, mapping or module) and load it strictly into ``module``, in eval mode.

    Returns
    -------
    nn.Module
        ``module`` itself.

    Raises
    ------
    MissingFileError, InputError, InputTypeError
        As :func:`read_state_dict` and :func:`check_keys`.
    """
    arch = arch or type(module).__name__
    state, label = read_state_dict(source, arch=arch)
    return load_strict(module, state, label=label, arch=arch)
