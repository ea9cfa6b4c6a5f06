"""Export a PyTorch model to ONNX, so that it runs in onnxruntime (and through interpkit's onnx backend)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from interpkit._io import atomic_write
from interpkit.errors import InputError

__all__ = ["to_onnx"]


def to_onnx(model: Any, path: str | os.PathLike, *, opset: int = 17, overwrite: bool = False) -> Path:
    """Write a torch-backend model, or a single-input ``nn.Module`` on (N, 4, L) one-hot, as an ONNX file.

    Uses ``torch.onnx.export`` with the TorchScript exporter (the dynamo exporter needs
    onnxscript), a dynamic batch axis and the module in eval mode with its BatchNorm layers kept
    as nodes (``TrainingMode.PRESERVE``), so ``interpkit.load(path)`` lists the same layers. The
    file is written atomically, with the output names and the input alphabet in its metadata
    (``interpkit.output_names``, ``interpkit.alphabet``), which the onnx backend reads back.

    Parameters
    ----------
    model : TorchModel or nn.Module
        From ``interpkit.load`` (e.g. a checkpoint written by ``interpkit train``), or a module
        whose forward takes one tensor in the model's own layout.
    path : path-like
        The ``.onnx`` file to write.
    opset : int
        ONNX opset. Default is 17.
    overwrite : bool
        Replace an existing file. Default is False.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        If ``path`` exists and ``overwrite`` is False, the model takes extra inputs, or its
        input length is not fixed (pass a model loaded with ``length=``).
    """
    import torch
    from torch import nn

    from interpkit_torch.model import TorchModel

    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another name or pass overwrite=True.")
    if isinstance(model, TorchModel):
        spec = model.input_spec
        if spec.extra_inputs:
            raise InputError(f"model {model.name} takes extra inputs ({', '.join(spec.extra_inputs)}); to_onnx "
                             "exports single-input models only.")
        if spec.length is None:
            raise InputError(f"model {model.name} has no fixed input length; load it with length=... first.")
        names, alphabet = model.output_names, spec.model_alphabet or spec.alphabet
        module, shape = model.module, {"NCL": (2, 4, spec.length), "NLC": (2, spec.length, 4),
                                       "NC1L": (2, 4, 1, spec.length), "NCL1": (2, 4, spec.length, 1)}[spec.layout]
    elif isinstance(model, nn.Module):
        length = getattr(model, "input_length", None) or getattr(model, "options", {}).get("input_length")
        if not length:
            raise InputError("to_onnx needs the module's input length: load it with interpkit.load(..., length=...) "
                             "and pass the result.")
        module, shape = model, (2, 4, int(length))
        names, alphabet = getattr(model, "output_names", None), "ACGT"
    else:
        raise InputError(f"to_onnx takes a torch-backend model or an nn.Module, not {type(model).__name__}.")
    import io

    import onnx

    training = module.training
    device = next((t.device for t in [*module.parameters(), *module.buffers()]), torch.device("cpu"))
    module.eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (torch.zeros(shape, device=device),), buffer, dynamo=False,
                              opset_version=opset, input_names=["seq"], output_names=["out"],
                              dynamic_axes={"seq": {0: "N"}, "out": {0: "N"}},
                              training=torch.onnx.TrainingMode.PRESERVE)
    finally:
        module.train(training)
    proto = onnx.load_from_string(buffer.getvalue())
    props = {"interpkit.alphabet": alphabet}
    if names:
        props["interpkit.output_names"] = json.dumps(list(names))
    onnx.helper.set_model_props(proto, props)
    with atomic_write(path, mode="wb", overwrite=overwrite) as handle:
        handle.write(proto.SerializeToString())
    return path
