#!/usr/bin/env python3
"""Time ONNX Runtime's Python API on an ONNX file: the yardstick for our own forward pass.

`deepoffload bench detect --python` runs this (embedded in the binary) on the very .onnx it
exports, once per round in a fresh process, interleaved with its own measurements, and prints
both side by side. Run by hand:

    pip install onnxruntime==1.31.1 numpy
    deepoffload models export -m yolov3-tiny --size 416 --onnx /tmp/y3t.onnx
    python3 scripts/ort_python_forward.py /tmp/y3t.onnx --threads 2 --warmup 5 --runs 10

Prints one JSON object: {"onnxruntime": VERSION, "times_ms": [...]}.
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = default)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    if args.threads > 0:
        options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    meta = session.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in meta.shape]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    feed = {meta.name: x}
    for _ in range(args.warmup):
        session.run(None, feed)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    print(json.dumps({"onnxruntime": ort.__version__, "times_ms": times}))


if __name__ == "__main__":
    main()
