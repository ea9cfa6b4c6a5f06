"""onnxruntime sessions: execution provider, threads, custom-op libraries, quiet CUDA probing.

onnxruntime-gpu lists ``CUDAExecutionProvider`` as available even on machines without
a GPU or without the CUDA/cuDNN libraries it links against; asking for it there prints
a red error and a warning to stderr before falling back to the CPU. :func:`cuda_status`
finds out once, without that noise: it looks for an NVIDIA driver with at least one
device (``libcuda``) and then opens a one-node session with the CUDA provider while
onnxruntime's default logger is silenced.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Sequence

import onnx
import onnxruntime as ort

from interpkit.errors import CapabilityError, InputError

__all__ = ["cuda_status", "default_threads", "make_session", "resolve_device"]

_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
#: onnxruntime's documented default severity of its default logger (warnings and above).
_DEFAULT_LOG_SEVERITY = 2


def _gpu_count() -> int:
    """Number of CUDA devices the NVIDIA driver reports; 0 without a driver."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1" if os.name != "nt" else "nvcuda.dll")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def _identity_model() -> onnx.ModelProto:
    """A one-node model in versions every onnxruntime >= 1.17 reads (IR 8, opset 13)."""
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    return onnx.helper.make_model(graph, ir_version=8, opset_imports=[onnx.helper.make_opsetid("", 13)])


@functools.cache
def cuda_status() -> tuple[bool, str]:
    """Whether onnxruntime can run on CUDA here, and why not.

    Returns
    -------
    (usable, reason)
        reason is "" when usable.
    """
    if _CUDA not in ort.get_available_providers():
        return False, "this onnxruntime build has no CUDA provider (pip install onnxruntime-gpu)"
    if _gpu_count() == 0:
        return False, "no NVIDIA driver or GPU was found"
    probe = _identity_model()
    ort.set_default_logger_severity(4)  # the provider's load failure is logged, not raised
    try:
        providers = ort.InferenceSession(probe.SerializeToString(), providers=[_CUDA, _CPU]).get_providers()
    except Exception as exc:  # noqa: BLE001 - any failure means "no CUDA"
        return False, f"the CUDA provider failed to start ({type(exc).__name__})"
    finally:
        ort.set_default_logger_severity(_DEFAULT_LOG_SEVERITY)
    if _CUDA not in providers:
        return False, "the CUDA and cuDNN libraries onnxruntime-gpu needs could not be loaded"
    return True, ""


def resolve_device(device: str | None) -> str:
    """``"cuda"`` or ``"cpu"``: None means CUDA when usable, else CPU.

    Raises
    ------
    InputError
        For a device other than None, "cpu" and "cuda".
    CapabilityError
        For ``device="cuda"`` where onnxruntime cannot use CUDA.
    """
    if device not in (None, "cpu", "cuda"):
        raise InputError(f"device == {device!r}, must be 'cpu', 'cuda' or None (CUDA when available).")
    usable, reason = cuda_status() if device != "cpu" else (False, "")
    if device == "cuda" and not usable:
        raise CapabilityError(f"device='cuda' but onnxruntime cannot use CUDA here: {reason}; use device='cpu'.")
    return "cuda" if usable else "cpu"


def default_threads() -> int:
    """Intra-op threads: the CPU cores this process may use (its affinity mask), at most 16."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 16))


def make_session(model: bytes, *, device: str, threads: int, custom_op_libraries: Sequence[str] = ()
                 ) -> ort.InferenceSession:
    """An inference session on ``device`` ("cuda" or "cpu", from :func:`resolve_device`).

    Sessions log errors only (onnxruntime's warnings about unused initializers and the
    like would reach the user on every load). Custom-op libraries are native code and
    are registered only when the caller passes them (the loader requires ``trust=True``).

    Raises
    ------
    onnxruntime exceptions
        Callers wrap them into InputError naming the file.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    for library in custom_op_libraries:
        options.register_custom_ops_library(os.fspath(library))
    providers = [_CUDA, _CPU] if device == "cuda" else [_CPU]
    return ort.InferenceSession(model, options, providers=providers)
