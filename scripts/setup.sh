#!/usr/bin/env bash
# Create .venv (if missing) and install buildsys with the extras the examples and tests use.
# Idempotent. torch is pinned and installed first: this machine keeps the 2.13.0 CPU build on
# local disk, while an unpinned 'torch' would resolve to a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
# The OCI registry tests start Debian's docker-registry on 127.0.0.1 (installed, never started
# as a service: this image's policy-rc.d keeps services from starting at install).
if ! command -v docker-registry >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip
"${pip[@]}" torch==2.13.0
"${pip[@]}" -e '.[dev,torch,huggingface,onnx,precision,tensorrt,jax,ray,examples,mlflow,oci,sign,triton]' 'mlflow[auth]>=3,<4'
# The OpenVINO backend is a separate, third-party-style distribution: installed on its own.
"${pip[@]}" --no-build-isolation -e plugins/examples/buildsys_openvino
# The Triton tests serve repositories with the tritonserver binary and python backend that the
# nvidia-pytriton wheel ships; --no-deps, because its requirements pin numpy<2 (buildsys does not
# use pytriton's Python API, only its server; buildsys_triton.server starts it).
"${pip[@]}" --no-deps nvidia-pytriton==0.7.0
# manifests/onet.yaml's trained weights: the facenet-pytorch wheel ships MTCNN's ONet state dict;
# --no-deps, because it pins an old torch and torchvision (manifests/models/onet.py never imports it).
"${pip[@]}" --no-deps facenet-pytorch==2.6.0
