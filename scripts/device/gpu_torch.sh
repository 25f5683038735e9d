#!/usr/bin/env bash
# On the lent GPU machine (see the device tool): install buildsys over the image's torch, build
# and validate the examples' AOTI CUDA targets, and probe AOTI package loading. Results -> $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
export BUILDSYS_OUT=/tmp/art PYTHONUNBUFFERED=1
python3 -m buildsys host
for m in cnn-h100 encoder-h100; do
    python3 -m buildsys build manifests/$m.yaml --json > "$OUT/$m.json"; echo "build $m rc=$?"
    cp /tmp/art/${m%-h100}/1.0.0/aoti-h100/artifact.json "$OUT/$m.artifact.json" 2>/dev/null
done
python3 scripts/device/aoti_probe.py "$OUT/aoti_probe.json"
