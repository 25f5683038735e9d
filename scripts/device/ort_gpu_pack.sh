#!/usr/bin/env bash
# Here (no GPU): cut onnxruntime-gpu's wheel into pieces a device call can carry (64 MiB a call,
# the working tree included). The wheel is ~255 MB, nearly all of it the CUDA provider library;
# that library goes xz-compressed, the rest as a tar.gz, both in one tar split into 52 MiB pieces
# under .gpucarry/ (ignored: .git/info/exclude). scripts/device/ort_gpu_unpack.sh puts them
# together on the GPU machine, which keeps files under /tmp between calls while it stays warm.
#   bash scripts/device/ort_gpu_pack.sh path/to/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
set -euo pipefail
wheel=$(realpath "$1"); repo=$(dirname "$0")/../..
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir "$work/site" "$work/pack"
(cd "$work/site" && python3 -m zipfile -e "$wheel" .)
cuda=onnxruntime/capi/libonnxruntime_providers_cuda.so
xz -9 -T"$(nproc)" -c "$work/site/$cuda" > "$work/pack/providers_cuda.so.xz"
rm "$work/site/$cuda"
tar czf "$work/pack/rest.tgz" -C "$work/site" .
mkdir -p "$repo/.gpucarry"; rm -f "$repo"/.gpucarry/ort.part*
tar cf - -C "$work/pack" . | split -b 52M -d - "$repo/.gpucarry/ort.part"
ls -l "$repo"/.gpucarry/ort.part*
