"""Predict throughput through interpkit divided by the raw framework call, per backend, in one run.

Goal (issue 3): overhead <= 5%, i.e. ratio >= 0.95. Both sides run the same batches of the
same one-hot sequences on the same model; the raw side does only the layout conversion the
framework needs. Run: python bench/predict_overhead.py [--n 4096] [--batch 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import twins

import interpkit
from interpkit.testing import random_one_hot


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (graph building, allocation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="sequences per measurement")
    parser.add_argument("--batch", type=int, default=256, help="batch size for both sides")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import torch

    X = random_one_hot(args.n, twins.LENGTH)
    batches = [slice(i, i + args.batch) for i in range(0, args.n, args.batch)]
    module = twins.torch_twin()
    keras_model = twins.keras_twin(module)
    onnx_path = twins.onnx_twin(module, Path(tempfile.mkdtemp()) / "twin.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def raw_torch():
        with torch.inference_mode():
            return np.concatenate([module(torch.from_numpy(X[b])).numpy() for b in batches])

    def raw_keras():
        return np.concatenate([np.asarray(keras_model(X[b].transpose(0, 2, 1), training=False)) for b in batches])

    def raw_onnx():
        return np.concatenate([session.run(None, {"x": X[b]})[0] for b in batches])

    cases = {
        "torch": (raw_torch, interpkit.load(module)),
        "keras": (raw_keras, interpkit.load(keras_model)),
        "onnx": (raw_onnx, interpkit.load(onnx_path, device="cpu")),
    }
    print(f"{args.n} sequences of {twins.LENGTH} bp, batch {args.batch}, best of {args.repeats}")
    print(f"{'backend':8} {'raw seq/s':>10} {'interpkit seq/s':>16} {'ratio':>6}")
    for name, (raw, model) in cases.items():
        np.testing.assert_allclose(model.predict(X, batch_size=args.batch), raw(), rtol=1e-5, atol=1e-5)
        t_raw = best_time(raw, args.repeats)
        t_ipk = best_time(lambda m=model: m.predict(X, batch_size=args.batch), args.repeats)
        print(f"{name:8} {args.n / t_raw:10.0f} {args.n / t_ipk:16.0f} {t_raw / t_ipk:6.3f}")


if __name__ == "__main__":
    main()
