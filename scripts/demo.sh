#!/usr/bin/env bash
# `make demo`: Kiln's main job end to end on a fresh Debian machine with Swift.
#   1. setup: Debian packages (dataset-fashion-mnist included; apt-get when root) and the Python
#      venv holding the peers (TFLite interpreter, onnxruntime); without PyPI the demo still runs,
#      without the peers;
#   2. a release build of kiln;
#   3. `kiln demo` (train one- and two-head Fashion-MNIST models, export ONNX / TFLite float32 /
#      TFLite int8, verify, size table, float vs int8 accuracy, latency), everything under runs/demo/.
# Extra arguments go to `kiln demo` (e.g. scripts/demo.sh --quick --no-peers; make demo DEMO_ARGS=--quick).
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
start=$(date +%s)
step() { printf '\n== [setup %s] %s (elapsed %ds)\n' "$1" "$2" "$(( $(date +%s) - start ))"; }

step 1/3 "system packages (scripts/setup.sh deps)"
scripts/setup.sh deps
peers=()
step 2/3 "Python venv with the peers (scripts/setup.sh venv)"
if ! scripts/setup.sh venv; then
    echo "warning: no venv: the demo runs without the TFLite interpreter and onnxruntime beside Kiln" >&2
    peers=(--no-peers)
fi
step 3/3 "release build of kiln"
"$SWIFT" build -c release --product kiln
exec .build/release/kiln demo "${peers[@]}" "$@"
