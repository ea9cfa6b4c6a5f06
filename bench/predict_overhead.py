"""Predict throughput through interpkit divided by the raw framework call, per backend, in one run.

Goal (issue 3): overhead <= 5%, i.e. median ratio >= 0.95 on realistic models. The ratio is
raw time / interpkit time per round, raw and interpkit timed alternately; its median and range
over the rounds are printed. Both sides run the
same batches of the same one-hot sequences on the same model; the raw side does only the
layout conversion the framework needs, with the framework's fastest plain call
(torch.inference_mode, a compiled tf.function, an onnxruntime session). interpkit adds input
validation and batching, a fixed cost per sequence that shows on the tiny twin (about 1 us of
compute per sequence) and vanishes on real models.

Run: python bench/predict_overhead.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import twins

import interpkit
from interpkit.testing import random_one_hot

SHARED = ROOT.parent / "shared" / "checkpoints"


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_ratios(raw, ours, repeats: int) -> tuple[float, float, list[float]]:
    """Raw and interpkit timed alternately (so load on the machine hits both alike).

    Returns the best raw and interpkit times and the per-round ratios raw / interpkit.
    """
    raw(), ours()  # warm-up (graph building, allocation)
    pairs = [(_seconds(raw), _seconds(ours)) for _ in range(repeats)]
    return min(r for r, _ in pairs), min(o for _, o in pairs), [r / o for r, o in pairs]


def raw_torch(module, X, batches):
    import torch

    def run():
        with torch.inference_mode():
            return np.concatenate([module(torch.from_numpy(X[b])).numpy() for b in batches])
    return run


def raw_onnx(path, X, batches):
    from interpkit_onnx.session import default_threads, make_session

    # The same session options as interpkit's (threads, log level): only the call path differs.
    session = make_session(Path(path).read_bytes(), device="cpu", threads=default_threads())
    name = session.get_inputs()[0].name
    return lambda: np.concatenate([session.run(None, {name: X[b]})[0] for b in batches])


def raw_keras(model, X, batches):
    import tensorflow as tf

    compiled = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda: np.concatenate([compiled(np.ascontiguousarray(X[b].transpose(0, 2, 1))).numpy() for b in batches])


def export(module, length: int, path: Path) -> Path:
    import torch

    torch.onnx.export(module, (torch.zeros(2, 4, length),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17, dynamo=False)
    return path


def cases(tmp: Path):
    """(label, backend, n, length, batch, raw factory, interpkit model)."""
    from torch import nn

    twin = twins.torch_twin()
    yield "twin 100 bp (tiny)", "torch", 4096, twins.LENGTH, 256, lambda X, b: raw_torch(twin, X, b), interpkit.load(twin)
    keras_twin = twins.keras_twin(twin)
    yield "twin 100 bp (tiny)", "keras", 4096, twins.LENGTH, 256, lambda X, b: raw_keras(keras_twin, X, b), \
        interpkit.load(keras_twin)
    onnx_twin = twins.onnx_twin(twin, tmp / "twin.onnx")
    yield "twin 100 bp (tiny)", "onnx", 4096, twins.LENGTH, 256, lambda X, b: raw_onnx(onnx_twin, X, b), \
        interpkit.load(onnx_twin, device="cpu")

    from interpkit_basset.architecture import Basset

    basset = Basset().eval()  # Kipoi Basset layout, random weights, input (N, 4, 600, 1)
    flat = nn.Sequential(nn.Unflatten(2, (600, 1)), basset).eval()  # raw side takes (N, 4, 600) like interpkit
    yield "Basset 600 bp", "torch", 512, 600, 128, lambda X, b: raw_torch(flat, X, b), \
        interpkit.load(basset, layout="NCL1", length=600)
    basset_onnx = export(flat, 600, tmp / "basset.onnx")
    yield "Basset 600 bp", "onnx", 512, 600, 128, lambda X, b: raw_onnx(basset_onnx, X, b), \
        interpkit.load(basset_onnx, device="cpu")

    tal = SHARED / "tal_gata_simulated" / "keras2_conv1d_record_5_model_PQzyq_modelJson.json"
    if tal.exists():
        model = interpkit.load(tal)
        yield "TAL/GATA 200 bp (real)", "keras", 8000, 200, 256, \
            lambda X, b: raw_keras(model.keras_model, X, b), model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"{'model':24} {'backend':7} {'seqs':>5} {'raw seq/s':>10} {'interpkit seq/s':>16} {'ratio':>6} "
          f"{'(min-max)':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, backend, n, length, batch, raw_factory, model in cases(Path(tmp)):
            X = random_one_hot(n, length)
            batches = [slice(i, i + batch) for i in range(0, n, batch)]
            raw = raw_factory(X, batches)
            np.testing.assert_allclose(model.predict(X, batch_size=batch), raw(), rtol=1e-4, atol=1e-5)
            t_raw, t_ipk, ratios = interleaved_ratios(
                raw, lambda m=model, X=X, size=batch: m.predict(X, batch_size=size), args.repeats)
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
            print(f"{label:24} {backend:7} {n:5d} {n / t_raw:10.0f} {n / t_ipk:16.0f} "
                  f"{statistics.median(ratios):6.3f} {spread:>12}")


if __name__ == "__main__":
    main()
