#!/usr/bin/env bash
# Issue 22's GPU benchmark on the lent machine, in consecutive device calls (the machine keeps
# /tmp while it stays warm, ~30 s between calls). Each call carries one piece of onnxruntime-gpu
# (.gpucarry/ort.partNN, made here by ort_gpu_pack.sh); the first also carries .whl.
#   start      install buildsys; in the background (setsid: it outlives the call) build
#              manifests/resnet50.yaml and bert-base.yaml (every target) and warm Inductor's caches
#              for the bench's torch.compile references, one process per (model, batch)
#   piece      keep the carried piece; show how far the background work is
#   wait       wait for the background work (every phase keeps the carried piece; with
#              ORT_PIECES=N it unpacks onnxruntime-gpu once N pieces are here)
#   bench M    buildsys bench M's fp16 torch targets against every torch.compile mode (cache hits),
#              then its ONNX targets on ONNX Runtime's CUDA provider (CUDA graphs) against eager,
#              and validate those on the GPU (ort_gpu_check.py); results -> $OUT
set -uo pipefail
export PYTHONPATH=/tmp/site BUILDSYS_OUT=/tmp/art PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/inductor
jobs=/tmp/jobs; mkdir -p $jobs
bash scripts/device/ort_gpu_unpack.sh "${ORT_PIECES:-}"
progress() { for f in $jobs/*.log; do echo "-- $f"; tail -n 3 "$f"; done; ls $jobs/*.done 2>/dev/null | wc -l; }
case "$1" in
start)
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    cp -r . /tmp/repo  # installed and run from a copy: the next call replaces this tree
    cd /tmp/repo
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
    python3 -m buildsys host
    for m in resnet50 bert-base; do
        setsid bash -c "python3 -m buildsys build manifests/$m.yaml -k -j 3 -q > $jobs/build-$m.log 2>&1; \
                        echo rc=\$? >> $jobs/build-$m.log; touch $jobs/build-$m.done" < /dev/null &
        for b in 1 8 32; do
            setsid bash -c "python3 scripts/device/prewarm_references.py manifests/$m.yaml $b fp16 > $jobs/warm-$m-$b.log 2>&1; \
                            echo rc=\$? >> $jobs/warm-$m-$b.log; touch $jobs/warm-$m-$b.done" < /dev/null &
        done
    done
    sleep 45; progress ;;
piece)
    progress ;;
wait)
    for _ in $(seq 1 ${WAIT_S:-540}); do [ "$(ls $jobs/*.done 2>/dev/null | wc -l)" -ge 8 ] && break; sleep 1; done
    progress; grep -h "compiled in" $jobs/warm-*.log ;;
bench)
    cd /tmp/repo; m=$2; stage=$OUT
    export PYTHONPATH=/tmp/ortsite:/tmp/site
    python3 -m buildsys inspect manifests/$m.yaml > $stage/inspect_$m.txt 2>&1
    python3 -m buildsys bench manifests/$m.yaml -t exported -t aoti --batch 1,8,32 --memory shared \
        --seconds ${SECONDS_TIMED:-3} > $stage/bench_h200_$m.md; echo "== bench $m rc=$?"; cat $stage/bench_h200_$m.md
    python3 scripts/device/ort_gpu_check.py manifests/$m.yaml onnx onnx-ort onnx-fp16 onnx-int8 > $stage/ort_check_$m.md 2>&1
    cat $stage/ort_check_$m.md
    python3 -m buildsys bench manifests/$m.yaml -t onnx -t onnx-ort -t onnx-fp16 -t onnx-int8 -t exported \
        --reference eager --batch 1,8,32 --memory shared --seconds ${SECONDS_TIMED:-3} > $stage/bench_h200_${m}_ort.md
    echo "== bench ort $m rc=$?"; cat $stage/bench_h200_${m}_ort.md ;;
esac
