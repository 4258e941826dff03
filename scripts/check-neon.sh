#!/usr/bin/env bash
# Builds CKilnKernels for aarch64 with clang (-O3, as Package.swift builds it) and runs
# Tests/NEONCheck/neon_check.c under qemu-aarch64: the float NEON kernels against naive C and the
# portable build, the int8 kernels of the NEON and portable ISAs against naive C, exactly.
# Two CPUs: one with the dot product (-cpu max: the int8 kernels run `sdot`) and a Cortex-A53
# without it (the int8 kernels fall back to portable C); each run checks which path it got.
# Needs: apt-get install qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross
set -euo pipefail
cd "$(dirname "$0")/.."
# A binary of its own: concurrent runs (two worktrees, make test) must not share one.
out=$(mktemp "${TMPDIR:-/tmp}/kiln-neon-check.XXXXXX")
trap 'rm -f "$out"' EXIT
src=Sources/CKilnKernels
clang --target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu --gcc-toolchain=/usr -static -O3 \
    -I"$src/include" "$src"/*.c Tests/NEONCheck/neon_check.c -lpthread -lm -o "$out"
echo "== qemu-aarch64 -cpu max (dot product)"
qemu-aarch64-static -cpu max "$out" neon-dot
echo "== qemu-aarch64 -cpu cortex-a53 (no dot product)"
qemu-aarch64-static -cpu cortex-a53 "$out" portable
