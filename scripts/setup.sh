#!/usr/bin/env bash
# Create .venv (if missing) and install buildsys with the extras the examples and tests use.
# Idempotent. torch is pinned and installed first: this machine keeps the 2.13.0 CPU build on
# local disk, while an unpinned 'torch' would resolve to a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip
"${pip[@]}" torch==2.13.0
"${pip[@]}" -e '.[dev,torch,onnx,examples]'
