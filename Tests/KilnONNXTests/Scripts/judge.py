"""Judges ONNX files with the reference tools: onnx.checker (full check) and onnxruntime.

Usage: judge.py MANIFEST.json
The manifest is a list of cases: {"model": path, "inputs": {name: tensor.pb}, "outputs": {name: tensor.pb}}.
Prints one JSON object per case: checker error (or null), per output the largest absolute
difference between onnxruntime and the expected tensor (written by Kiln), or an error.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def load(path):
    return numpy_helper.to_array(onnx.load_tensor(path))


def judge(case):
    result = {"model": case["model"], "checker": None, "diffs": {}, "error": None}
    try:
        onnx.checker.check_model(case["model"], full_check=True)
    except Exception as e:  # noqa: BLE001 - report whatever the checker says
        result["checker"] = str(e)
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(case["model"], options, providers=["CPUExecutionProvider"])
        feeds = {name: load(path) for name, path in case["inputs"].items()}
        names = list(case["outputs"])
        got = session.run(names, feeds)
        for name, value in zip(names, got):
            expected = load(case["outputs"][name])
            if value.shape != expected.shape or value.dtype != expected.dtype:
                result["diffs"][name] = f"onnxruntime gives {value.dtype}{list(value.shape)}, Kiln {expected.dtype}{list(expected.shape)}"
            else:
                result["diffs"][name] = float(np.max(np.abs(value.astype(np.float64) - expected.astype(np.float64)))) if value.size else 0.0
    except Exception as e:  # noqa: BLE001
        result["error"] = str(e)
    return result


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    print(json.dumps([judge(c) for c in cases]))


if __name__ == "__main__":
    main()
