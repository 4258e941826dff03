#!/usr/bin/env bash
# The three document/screen variants (Models/documents-three-outputs-256.yaml,
# documents-three-outputs-320.yaml, documents-two-heads-256.yaml), exported to TFLite float32
# and int8 (and to ONNX for onnxruntime), benched per image from file to probabilities with
# `kiln bench`, beside the peers when the venv exists. `make demo` calls it; it also runs alone:
#
#   scripts/bench-documents.sh [--kiln .build/release/kiln] [--out runs/bench-documents]
#       [--data runs/data/documents] [--models DIR] [--limit 100] [--runs 3] [--photo-runs 300]
#       [--threads 1] [--no-peers] [--no-int8]
#
# --models DIR takes trained checkpoints DIR/<recipe>.kiln (kiln train's best); without them the
# recipes' initial weights are exported: latencies are real, precision and recall are not.
# Writes into --out: the .tflite/.onnx files, labelled.md/.json (the test split, with precision
# and recall) and, with the venv, photo.md/.json (one 1024x768 JPEG, the headline figures).
set -euo pipefail
cd "$(dirname "$0")/.."

KILN=.build/release/kiln
OUT=runs/bench-documents
DATA=runs/data/documents
MODELS=
LIMIT=100
RUNS=3
PHOTO_RUNS=300
THREADS=1
PEERS=1
INT8=1
while [ $# -gt 0 ]; do
    case "$1" in
        --kiln) KILN=$2; shift ;;
        --out) OUT=$2; shift ;;
        --data) DATA=$2; shift ;;
        --models) MODELS=$2; shift ;;
        --limit) LIMIT=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --photo-runs) PHOTO_RUNS=$2; shift ;;
        --threads) THREADS=$2; shift ;;
        --no-peers) PEERS=0 ;;
        --no-int8) INT8=0 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -x "$KILN" ] || { echo "error: $KILN is missing: swift build -c release --product kiln" >&2; exit 1; }
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }

if [ ! -f "$DATA/test.csv" ]; then
    step "Synthetic document/screen images in $DATA (kiln data synthetic-documents)"
    "$KILN" data synthetic-documents --out "$DATA" --count 1000 --size 320
fi
PYTHON=.venv/bin/python
if [ "$PEERS" = 1 ] && [ ! -x "$PYTHON" ]; then
    echo "note: no venv (.venv, made by make venv): benching Kiln alone, without the peers"
    PEERS=0
fi
if [ "$INT8" = 1 ] && ! "$KILN" export --help | grep -- '--int8' >/dev/null; then
    echo "note: this kiln has no int8 export yet: float32 only"
    INT8=0
fi

RECIPES=(documents-three-outputs-256 documents-three-outputs-320 documents-two-heads-256)
FILES=()
for r in "${RECIPES[@]}"; do
    src=Models/$r.yaml
    [ -n "$MODELS" ] && [ -f "$MODELS/$r.kiln" ] && src=$MODELS/$r.kiln
    step "$r: from $src"
    "$KILN" export "$src" --format tflite -o "$OUT/$r.tflite" | sed -n 1p
    "$KILN" export "$src" --format onnx -o "$OUT/$r.onnx" | sed -n 1p
    FILES+=("$OUT/$r.tflite")
done
if [ "$INT8" = 1 ]; then
    for r in "${RECIPES[@]}"; do
        src=Models/$r.yaml
        [ -n "$MODELS" ] && [ -f "$MODELS/$r.kiln" ] && src=$MODELS/$r.kiln
        step "$r: int8 (calibrated on 64 images of $DATA/train.csv; int8 input, quantized in preprocessing)"
        # One quantized graph, written as TFLite (Kiln's runtime and the TFLite interpreter) and as
        # ONNX QDQ (onnxruntime): the same int8 parameters everywhere.
        "$KILN" quantize "$src" --int8-input --calibration "$DATA/train.csv" --samples 64 -o "$OUT/$r.int8.kiln" >/dev/null
        "$KILN" export "$OUT/$r.int8.kiln" --format tflite -o "$OUT/$r.int8.tflite" | sed -n 1p
        "$KILN" export "$OUT/$r.int8.kiln" --format onnx -o "$OUT/$r.int8.onnx" | sed -n 1p
        FILES+=("$OUT/$r.int8.tflite")
    done
fi

PEER_ARGS=()
[ "$PEERS" = 1 ] && PEER_ARGS=(--peers --python "$PYTHON")
MAPS=(--map "screen: class==2" --map "not_document: class==1")

step "Per image from file to probabilities, the first $LIMIT images of $DATA/test.csv, $RUNS passes"
[ -z "$MODELS" ] && echo "note: untrained models (the recipes' initial weights): precision and recall are not meaningful"
"$KILN" bench "${FILES[@]}" --images "$DATA/test.csv" --limit "$LIMIT" --runs "$RUNS" --threads "$THREADS" \
    "${MAPS[@]}" "${PEER_ARGS[@]}" --markdown --save "$OUT/labelled.json" | tee "$OUT/labelled.md"

if [ "$PEERS" = 1 ]; then
    "$PYTHON" Benchmarks/peers.py --make-photo "$OUT/photo-1024x768.jpg"
    step "One 1024x768 JPEG, $PHOTO_RUNS passes, $THREADS thread(s): Kiln beside the TFLite interpreter and onnxruntime"
    "$KILN" bench "${FILES[@]}" --images "$OUT/photo-1024x768.jpg" --runs "$PHOTO_RUNS" --threads "$THREADS" \
        "${PEER_ARGS[@]}" --markdown --save "$OUT/photo.json" | tee "$OUT/photo.md"
fi
echo
echo "Files, tables (.md) and reports (.json) are in $OUT/."
