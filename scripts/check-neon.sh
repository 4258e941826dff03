#!/usr/bin/env bash
# Builds CKilnKernels for aarch64 with clang and runs Tests/NEONCheck/neon_check.c under
# qemu-aarch64: the NEON kernels against naive C and the portable build.
# Needs: apt-get install qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross
set -euo pipefail
cd "$(dirname "$0")/.."
out="${TMPDIR:-/tmp}/kiln-neon-check"
src=Sources/CKilnKernels
clang --target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu --gcc-toolchain=/usr -static -O2 \
    -I"$src/include" "$src"/*.c Tests/NEONCheck/neon_check.c -lpthread -lm -o "$out"
qemu-aarch64-static "$out"
