#!/usr/bin/env bash
# `make demo`: Kiln's main job end to end, as far as it exists today:
# build every recipe in Models/ from the zoo, save it as .kiln, read it back, run the
# deployment passes, and print the size table; then export the three document/screen variants
# (float32 and int8) and bench them with `kiln bench` (scripts/bench-documents.sh), beside the
# peers when the venv exists. Everything lands under runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${1:-.build/release/kiln}
OUT=runs/demo
mkdir -p "$OUT"

step() { printf '\n== %s\n' "$*"; }

step "The zoo at 224x224 with torchvision's 1000-class head (parameter counts equal torchvision's)"
for arch in shufflenet_v2_x0_5 shufflenet_v2_x1_0 mobilenet_v2 efficientnet_b0 resnet18 resnet50; do
    printf '%-20s %s\n' "$arch" "$("$KILN" inspect --arch "$arch" --summary)"
done

step "The recipes in Models/: built, saved to $OUT/<recipe>.kiln, read back, folded for deployment"
printf '| %-36s | %10s | %13s | %12s | %14s |\n' "recipe" "parameters" "MACs" ".kiln bytes" "nodes (folded)"
printf '|%s|%s|%s|%s|%s|\n' "--------------------------------------" "------------" "---------------" "--------------" "----------------"
for recipe in Models/*.yaml; do
    name=$(basename "$recipe" .yaml)
    "$KILN" inspect "$recipe" --save "$OUT/$name.kiln" 2>/dev/null > "$OUT/$name.txt"
    "$KILN" inspect "$OUT/$name.kiln" --json > "$OUT/$name.json"
    "$KILN" inspect "$OUT/$name.kiln" --passes inference > "$OUT/$name.folded.txt"
    # The totals line: "total: N nodes, P parameters (..), M MACs (..), B bytes of constants"
    read -r nodes params macs <<< "$(tail -1 "$OUT/$name.txt" | awk '{print $2, $4, $8}')"
    folded=$(tail -1 "$OUT/$name.folded.txt" | awk '{print $2}')
    bytes=$(stat -c %s "$OUT/$name.kiln")
    printf '| %-36s | %10s | %13s | %12s | %14s |\n' "$name" "$params" "$macs" "$bytes" "$nodes ($folded)"
done

step "Every recipe exported to TFLite ($OUT/<recipe>.tflite): file size and its split"
for recipe in Models/*.yaml; do
    name=$(basename "$recipe" .yaml)
    "$KILN" export "$OUT/$name.kiln" --format tflite -o "$OUT/$name.tflite" | sed -n 1,4p
done

step "The two-headed document/screen model (Models/documents-two-heads-256.yaml), last lines of its dump"
tail -4 "$OUT/documents-two-heads-256.txt"

step "The three document/screen variants, float32 and int8, per image from file to probabilities (kiln bench)"
scripts/bench-documents.sh --kiln "$KILN" --out "$OUT/bench-documents" --limit 50 --runs 3 --photo-runs 100
echo
echo "Full dumps, JSON, .kiln and .tflite files are in $OUT/."
