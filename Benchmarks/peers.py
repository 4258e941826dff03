#!/usr/bin/env python3
"""The peers of `kiln bench --peers`: the same files and images through the TFLite interpreter
(ai_edge_litert) and onnxruntime, each with a Pillow + numpy pipeline, timed phase by phase the
way Kiln's harness times itself.

`kiln bench` writes a request (JSON: models with their .tflite and .onnx files, input size,
resize mode, mean/std, input type; images; warm-up, runs, threads) and runs

    .venv/bin/python Benchmarks/peers.py --request REQUEST.json

which prints one JSON object: per model and engine, the per-image seconds of each phase, the
model-only invoke times, and the top class per head per image (Kiln reports agreement).

    .venv/bin/python Benchmarks/peers.py --make-photo runs/bench/photo-1024x768.jpg [--size 1024x768]

writes the photo-like test image the benchmark figures use (gradients, discs, noise; baseline
JPEG, quality 90, 4:2:0), the same bytes on every machine with the same Pillow and numpy.

What each phase times, per image, batch 1, `time.perf_counter_ns` around each step:
  read_decode  Image.open + draft (DCT-scaled decoding when the input is small, as Kiln does;
               not with --full-decode) + EXIF orientation + decode (+ convert when not RGB/L)
  transforms   resize (BILINEAR, Pillow's antialiased filter; shorter side + centre crop when
               the model says so) + numpy float32 normalisation, in place (+ quantization to
               int8 for int8 inputs; + NCHW transpose for onnxruntime)
  invoke       TFLite: set_tensor + invoke + get_tensor of each output;
               onnxruntime: session.run (input copy and output allocation included)
  softmax      numpy softmax/sigmoid per head (after dequantizing int8 outputs)
Model-only: back-to-back interpreter.invoke() (TFLite) or session.run (onnxruntime) with the
input already set. The Python call overhead is part of every figure: it is what a Python
service pays.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
from PIL import Image, ImageOps


def make_photo(path, width=1024, height=768):
    """A photo-like scene: gradients, 40 discs and noise (sigma 6), baseline JPEG quality 90."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([x / width * 200 + 30, y / height * 180 + 40, 120 + 60 * np.sin(x / 37) * np.cos(y / 53)], -1)
    for _ in range(40):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(10, 120)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 6, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)


def request_from(path):
    with open(path) as f:
        return json.load(f)


class Pipeline:
    """Pillow + numpy preprocessing for one model input."""

    def __init__(self, m, full_decode, layout, int8=None):
        self.h, self.w, self.c = m["height"], m["width"], m["channels"]
        self.resize = m["resize"]
        self.shorter = m.get("shorter_side") or max(self.h, self.w)
        mean = np.asarray(m["mean"], np.float32)
        std = np.asarray(m["std"], np.float32)
        self.scale = (1.0 / (255.0 * std)).astype(np.float32)
        self.shift = (-mean / std).astype(np.float32)
        self.mode = "RGB" if self.c == 3 else "L"
        self.full_decode = full_decode
        self.layout = layout
        # int8 inputs: (scale, zero point) of the engine's input tensor, quantized here.
        self.int8 = int8 is not None
        if self.int8:
            self.qscale = np.float32(int8[0])
            self.qzero = np.float32(int8[1])

    def resized_size(self, w, h):
        if self.resize == "stretch":
            return self.w, self.h
        n = self.shorter
        if w <= h:
            return n, max(1, int(n * h / w))
        return max(1, int(n * w / h)), n

    def decode(self, path):
        im = Image.open(path)
        if not self.full_decode and im.format == "JPEG":
            w, h = im.size
            im.draft(self.mode, self.resized_size(w, h))
        ImageOps.exif_transpose(im, in_place=True)
        if im.mode != self.mode:
            im = im.convert(self.mode)
        im.load()
        return im

    def transform(self, im):
        rw, rh = self.resized_size(*im.size)
        im = im.resize((rw, rh), Image.BILINEAR)
        if (rw, rh) != (self.w, self.h):
            left, top = int(round((rw - self.w) / 2.0)), int(round((rh - self.h) / 2.0))
            im = im.crop((left, top, left + self.w, top + self.h))
        x = np.asarray(im, dtype=np.float32)
        if self.c == 1:
            x = x[:, :, None]
        x *= self.scale
        x += self.shift
        if self.int8:
            x /= self.qscale
            np.round(x, out=x)
            x += self.qzero
            np.clip(x, -128, 127, out=x)
            x = x.astype(np.int8)
        if self.layout == "NCHW":
            return np.ascontiguousarray(x.transpose(2, 0, 1))[None]
        return x[None]


def activate(kind, o):
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-o))
    if kind == "none":
        return o
    e = np.exp(o - o.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class TFLiteEngine:
    name = "tflite"

    def __init__(self, m, threads, full_decode):
        from ai_edge_litert.interpreter import Interpreter
        self.file = m["tflite"]
        self.it = Interpreter(model_path=self.file, num_threads=threads)
        self.it.allocate_tensors()
        self.input = self.it.get_input_details()[0]
        self.outputs = self.it.get_output_details()
        self.activations = m["activations"]
        quant = None
        if self.input["dtype"] == np.int8:
            quant = self.input["quantization"]
        self.pipeline = Pipeline(m, full_decode, "NHWC", quant)
        self.dequantize = []
        for d in self.outputs:
            s, z = d["quantization"]
            self.dequantize.append((np.float32(s), np.float32(z)) if d["dtype"] != np.float32 else None)

    def invoke(self, x):
        self.it.set_tensor(self.input["index"], x)
        self.it.invoke()
        return [self.it.get_tensor(d["index"]) for d in self.outputs]

    def probabilities(self, outs):
        result = []
        for o, q, kind in zip(outs, self.dequantize, self.activations):
            if q is not None:
                o = (o.astype(np.float32) - q[1]) * q[0]
            result.append(activate(kind, o))
        return result

    def model_only(self, x, runs):
        self.it.set_tensor(self.input["index"], x)
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            self.it.invoke()
            samples.append((time.perf_counter_ns() - t0) * 1e-9)
        return samples


class ONNXEngine:
    name = "onnxruntime"

    def __init__(self, m, threads, full_decode):
        import onnxruntime as ort
        self.file = m["onnx"]
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(self.file, o, providers=["CPUExecutionProvider"])
        info = self.session.get_inputs()[0]
        self.input = info.name
        self.activations = m["activations"]
        quant = None
        if info.type == "tensor(int8)":
            quant = (m["input_scale"], m["input_zero_point"])
        self.pipeline = Pipeline(m, full_decode, "NCHW", quant)

    def invoke(self, x):
        return self.session.run(None, {self.input: x})

    def probabilities(self, outs):
        return [activate(kind, o) for o, kind in zip(outs, self.activations)]

    def model_only(self, x, runs):
        feeds = {self.input: x}
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            self.session.run(None, feeds)
            samples.append((time.perf_counter_ns() - t0) * 1e-9)
        return samples


def once(engine, path):
    """One image through one engine: four phase times in seconds, and the probabilities."""
    t0 = time.perf_counter_ns()
    im = engine.pipeline.decode(path)
    t1 = time.perf_counter_ns()
    x = engine.pipeline.transform(im)
    t2 = time.perf_counter_ns()
    outs = engine.invoke(x)
    t3 = time.perf_counter_ns()
    probs = engine.probabilities(outs)
    t4 = time.perf_counter_ns()
    return ((t1 - t0) * 1e-9, (t2 - t1) * 1e-9, (t3 - t2) * 1e-9, (t4 - t3) * 1e-9), probs


def versions():
    v = {"python": sys.version.split()[0], "numpy": np.__version__, "pillow": Image.__version__}
    try:
        from importlib.metadata import version
        v["ai_edge_litert"] = version("ai-edge-litert")
    except Exception:
        pass
    try:
        import onnxruntime
        v["onnxruntime"] = onnxruntime.__version__
    except Exception:
        pass
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--request", help="the JSON request written by kiln bench")
    ap.add_argument("--make-photo", metavar="PATH", help="write the photo-like test JPEG and exit")
    ap.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT of --make-photo")
    args = ap.parse_args()
    if args.make_photo:
        w, h = (int(v) for v in args.size.lower().split("x"))
        make_photo(args.make_photo, w, h)
        return
    if not args.request:
        ap.error("give --request FILE (written by kiln bench) or --make-photo PATH")
    req = request_from(args.request)
    images = req["images"]
    threads, full = req["threads"], req["full_decode"]
    engines, skipped = [], []
    for m in req["models"]:
        for kind, key in ((TFLiteEngine, "tflite"), (ONNXEngine, "onnx")):
            if not m.get(key):
                if key == "onnx":
                    skipped.append(f"{m['name']} on onnxruntime: no .onnx file beside the .tflite")
                continue
            try:
                engines.append((m["name"], kind(m, threads, full)))
            except Exception as e:  # an engine that cannot load the file is reported, not fatal
                skipped.append(f"{m['name']} on {kind.name}: {type(e).__name__}: {e}")
    results = []
    for name, e in engines:
        results.append({"name": name, "engine": e.name, "file": e.file, "read_decode": [], "transforms": [], "invoke": [],
                        "softmax": [], "model_only": [], "predictions": [[] for _ in e.activations]})
    # Every engine once on every image (errors surface here), then the warm-up. The first
    # image's probabilities (and, for tests, its input tensor) show what each pipeline computes.
    dump = req.get("dump_inputs")
    for k, (name, e) in enumerate(engines):
        for i, path in enumerate(images):
            _, probs = once(e, path)
            if i == 0:
                results[k]["first_probabilities"] = [p.reshape(-1).astype(float).tolist() for p in probs]
                if dump:
                    np.save(f"{dump}/{name}.{e.name}.npy", e.pipeline.transform(e.pipeline.decode(path)))
    for k in range(req["warmup"]):
        for _, e in engines:
            once(e, images[k % len(images)])
    n = len(engines)
    for r in range(req["runs"]):
        for i, path in enumerate(images):
            first = (r + i) % max(n, 1)
            for j in range(n):
                k = (first + j) % n
                times, probs = once(engines[k][1], path)
                res = results[k]
                for key, t in zip(("read_decode", "transforms", "invoke", "softmax"), times):
                    res[key].append(t)
                if r == 0:
                    for h, p in enumerate(probs):
                        res["predictions"][h].append(int(np.argmax(p.reshape(-1))))
    # Model-only: back-to-back invokes on the first image's input, engines interleaved in blocks.
    done, total = 0, req["model_only_runs"]
    inputs = [e.pipeline.transform(e.pipeline.decode(images[0])) for _, e in engines]
    while done < total:
        block = min(10, total - done)
        for k, (_, e) in enumerate(engines):
            results[k]["model_only"] += e.model_only(inputs[k], block)
        done += block
    json.dump({"versions": versions(), "runs": results, "skipped": skipped}, sys.stdout)


if __name__ == "__main__":
    main()
