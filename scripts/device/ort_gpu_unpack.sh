#!/usr/bin/env bash
# On the GPU machine: keep the carried piece of onnxruntime-gpu (.gpucarry/ort.partNN, see
# ort_gpu_pack.sh) under /tmp/ortparts; once every piece is there (pass their count), unpack them
# into /tmp/ortsite, a site directory to put FIRST on PYTHONPATH: the image's CPU-only onnxruntime
# stays installed and untouched. The CUDA provider then loads the CUDA and cuDNN libraries that
# the image's torch ships (onnxruntime.preload_dlls(), called by buildsys's ONNX runner).
#   bash scripts/device/ort_gpu_unpack.sh 4
set -euo pipefail
mkdir -p /tmp/ortparts
cp .gpucarry/ort.part* /tmp/ortparts/ 2>/dev/null || true
have=$(ls /tmp/ortparts | wc -l)
echo "onnxruntime-gpu pieces here: $have of ${1:-?}"
if [ -n "${1:-}" ] && [ "$have" -ge "$1" ] && [ ! -d /tmp/ortsite/onnxruntime ]; then
    mkdir -p /tmp/ortsite /tmp/ortpack
    cat /tmp/ortparts/ort.part* | tar xf - -C /tmp/ortpack
    tar xzf /tmp/ortpack/rest.tgz -C /tmp/ortsite
    python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
        /tmp/ortpack/providers_cuda.so.xz /tmp/ortsite/onnxruntime/capi/libonnxruntime_providers_cuda.so
    rm -rf /tmp/ortpack
    PYTHONPATH=/tmp/ortsite python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
fi
