#!/usr/bin/env bash
# Installs what Kiln's build, tests and demo need on a Debian machine with the Swift toolchain.
#   scripts/setup.sh deps   system packages (installed with apt-get when root)
#   scripts/setup.sh venv   the Python venv (.venv) holding the engines that judge Kiln's files
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages Kiln builds against or reads data from. Grows with each component.
APT_PACKAGES=(libprotobuf-c-dev protobuf-c-compiler libflatbuffers-dev flatbuffers-compiler libturbojpeg0-dev libpng-dev zlib1g-dev dataset-fashion-mnist libopenblas-dev)
# Optional packages: installed when root and apt can get them, never a reason for `deps` to fail.
# The aarch64 cross tools run the NEON kernels under qemu (scripts/check-neon.sh; NEONTests skips
# without them).
OPTIONAL_APT_PACKAGES=(qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross)

fail() { echo "error: $*" >&2; exit 1; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

deps() {
    command -v swift >/dev/null || fail "the Swift toolchain is not on PATH (https://www.swift.org/install/linux/)"
    required
    optional
}

required() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
    done
    # `python3 -m venv` needs ensurepip, which Debian ships separately (python3-venv).
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then missing+=(python3 python3-venv); fi
    if [ ${#missing[@]} -eq 0 ]; then return 0; fi
    if [ "$(id -u)" = 0 ]; then
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}"; }
    else
        fail "missing Debian packages; run:  sudo apt-get install -y ${missing[*]}"
    fi
}

optional() {
    local missing=()
    for p in "${OPTIONAL_APT_PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then return 0; fi
    local skipped="the NEON kernel check (scripts/check-neon.sh) is skipped without them"
    if [ "$(id -u)" != 0 ]; then
        echo "note: optional packages missing; $skipped:  sudo apt-get install -y ${missing[*]}"
        return 0
    fi
    echo "installing (optional): ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then return 0; fi
    apt-get update -q >/dev/null 2>&1 || true
    # One at a time: a package this machine's apt cannot get leaves the others installed.
    local failed=()
    for p in "${missing[@]}"; do
        apt-get install -y -q "$p" >/dev/null 2>&1 || failed+=("$p")
    done
    if [ ${#failed[@]} -gt 0 ]; then echo "note: could not install ${failed[*]}; $skipped"; fi
    return 0
}

venv() {
    local stamp=.venv/.kiln-requirements
    if [ -x .venv/bin/python ] && cmp -s Tests/requirements.txt "$stamp"; then return 0; fi
    echo "creating the Python venv .venv (test-time judges: $(grep -v '^#' Tests/requirements.txt | tr '\n' ' '))"
    python3 -m venv .venv || fail "python3 -m venv failed; install python3-venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r Tests/requirements.txt \
        || fail "pip could not install Tests/requirements.txt (is PyPI reachable?)"
    cp Tests/requirements.txt "$stamp"
}

case "${1:-}" in
    deps) deps ;;
    venv) venv ;;
    *) fail "usage: scripts/setup.sh deps|venv" ;;
esac
