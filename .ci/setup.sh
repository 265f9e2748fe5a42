#!/usr/bin/env bash
# One-command set-up for a fresh Debian/Ubuntu machine; `make setup` runs it.
#
#   1. Offscreen OpenGL libraries (EGL / OSMesa) so MuJoCo can render videos on
#      headless machines. Optional: without root they are only reported.
#   2. A virtualenv in .venv with the project installed editable, plus the
#      `dev` extra (pytest, ruff).
#
# Safe to run any number of times: each step checks before it acts, and the
# pip install is skipped while pyproject.toml is unchanged since the last one.
#
# Environment knobs:
#   PYTHON=python3.11   interpreter for the venv (default: python3)
#   VENV=.venv          virtualenv location
#   SETUP_FORCE=1       reinstall the project even if pyproject.toml is unchanged
#   SETUP_SKIP_APT=1    never touch system packages
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
cd "$(dirname "$SCRIPT_PATH")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
MIN_PYTHON="3.10"  # keep in step with requires-python in pyproject.toml
STAMP="$VENV/.skillstack-setup-stamp"

# libopengl0 is in the list because PyOpenGL's EGL platform loads libOpenGL.so.0
# (or libGL.so.1), which no EGL package pulls in. No ffmpeg: the imageio-ffmpeg
# wheel ships its own binary.
# xvfb and xauth: a virtual display for the interactive viewer's tests (xvfb-run).
GL_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libosmesa6 xvfb xauth)

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { printf '[setup] %s\n' "$*"; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[setup] ERROR: %s\n' "$*" >&2
    exit 1
}

LOG_FILE="$(mktemp "${TMPDIR:-/tmp}/skillstack-setup.XXXXXX")"
trap 'rm -f "$LOG_FILE"' EXIT

# Run a noisy command quietly; on failure show its output, which is the part
# a person debugging CI needs.
quietly() {
    if ! "$@" >"$LOG_FILE" 2>&1; then
        printf '[setup] command failed: %s\n' "$*" >&2
        tail -n 60 "$LOG_FILE" >&2
        return 1
    fi
}

# Prints the command prefix that gives root ("" when already root), or fails.
root_prefix() {
    if [ "$(id -u)" -eq 0 ]; then
        printf ''
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        printf 'sudo -n'
    else
        return 1
    fi
}

missing_debian_packages() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$pkg"
        fi
    done
}

apt_install() {
    local sudo
    sudo="$(root_prefix)" || return 1
    # shellcheck disable=SC2086  # $sudo is empty or a two-word prefix
    quietly $sudo apt-get update -qq && quietly $sudo apt-get install -y -qq --no-install-recommends "$@"
}

install_gl_libraries() {
    if [ "${SETUP_SKIP_APT:-0}" = 1 ]; then
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        if ! ldconfig -p 2>/dev/null | grep -qE 'libEGL\.so\.1|libOSMesa\.so'; then
            log "not a Debian system: install EGL or OSMesa yourself to record videos (rendering is optional)"
        fi
        return 0
    fi
    local missing
    mapfile -t missing < <(missing_debian_packages "${GL_PACKAGES[@]}")
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if ! root_prefix >/dev/null; then
        log "not root, skipping: to record videos offscreen run: sudo apt-get install -y ${missing[*]}"
        return 0
    fi
    log "installing offscreen OpenGL libraries: ${missing[*]}"
    if ! apt_install "${missing[@]}"; then
        warn "could not install ${missing[*]}; continuing without offscreen rendering"
    fi
}

check_python() {
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install python3 (>= $MIN_PYTHON) or set PYTHON=..."
    "$PYTHON" - "$MIN_PYTHON" <<'EOF' || die "$PYTHON is too old; need >= $MIN_PYTHON (set PYTHON=python3.11)"
import sys
required = tuple(int(part) for part in sys.argv[1].split("."))
sys.exit(0 if sys.version_info[:2] >= required else 1)
EOF
    # Debian splits venv/ensurepip into python3-venv; without it `-m venv` fails.
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        local pkg="python3-venv"
        if [ "$(command -v "$PYTHON")" != "/usr/bin/python3" ]; then
            pkg="python$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
        fi
        if command -v apt-get >/dev/null 2>&1 && root_prefix >/dev/null && apt_install "$pkg"; then
            log "installed $pkg"
        else
            die "$PYTHON cannot create virtualenvs; install it with: sudo apt-get install -y $pkg"
        fi
    fi
}

create_venv() {
    # A venv whose interpreter no longer starts (python upgraded or moved) is
    # useless; rebuild it rather than fail later with an odd error.
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        return 0
    fi
    check_python
    log "creating virtualenv $VENV with $("$PYTHON" --version 2>&1)"
    rm -rf "$VENV"
    quietly "$PYTHON" -m venv "$VENV" || die "could not create $VENV"
    quietly "$VENV/bin/python" -m pip install --upgrade pip || die "could not upgrade pip in $VENV"
}

# torch is a lower bound in pyproject.toml (a library must install beside CUDA builds,
# lerobot, robomimic); here the CPU wheel (~200 MB) goes in first, so pip does not pull the
# default CUDA build (several GB). A torch that is already installed is kept.
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
install_cpu_torch() {
    if "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
        return 0
    fi
    log "installing the CPU build of torch $TORCH_VERSION into $VENV"
    quietly "$VENV/bin/python" -m pip install "torch==$TORCH_VERSION+cpu" \
        || quietly "$VENV/bin/python" -m pip install "torch==$TORCH_VERSION" \
            --index-url https://download.pytorch.org/whl/cpu \
        || die "could not install torch $TORCH_VERSION (CPU build); install torch, then re-run"
}

install_project() {
    local want
    want="$(cat pyproject.toml "$SCRIPT_PATH" | sha256sum | cut -d' ' -f1) $("$VENV/bin/python" -VV | tr -d '\n')"
    if [ "${SETUP_FORCE:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        return 0
    fi
    log "installing skillstack (editable, with dev extras) into $VENV"
    quietly "$VENV/bin/python" -m pip install -e '.[dev]' || die "pip install -e '.[dev]' failed (output above)"
    printf '%s' "$want" >"$STAMP"
    log "ready: $VENV ($("$VENV/bin/python" --version 2>&1))"
}

[ -f pyproject.toml ] || die "pyproject.toml not found in $(pwd)"
install_gl_libraries
create_venv
install_cpu_torch
install_project
