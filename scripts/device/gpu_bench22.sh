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
#   start-gen  (second session) in the background: issue 19's generation bench on a Qwen2-0.5B-shaped
#              model (bench/generation.py) and resnet50's onnx targets; then piece x3 and
#   ort        (ORT_PIECES=4) the ONNX targets on ONNX Runtime's CUDA provider; collect: the generation table
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
                        echo rc=\$? >> $jobs/build-$m.log; touch $jobs/build-$m.done" < /dev/null > /dev/null 2>&1 &
        for b in 1 8 32; do
            setsid bash -c "python3 scripts/device/prewarm_references.py manifests/$m.yaml $b fp16 > $jobs/warm-$m-$b.log 2>&1; \
                            echo rc=\$? >> $jobs/warm-$m-$b.log; touch $jobs/warm-$m-$b.done" < /dev/null > /dev/null 2>&1 &
        done
    done
    sleep 45; progress ;;
start-gen)
    # issue 19's GPU figures and the ONNX targets for the CUDA provider, in the background
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    cp -r . /tmp/repo; cd /tmp/repo
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
    setsid bash -c "python3 -m buildsys build manifests/resnet50.yaml -t onnx -t onnx-ort -q > $jobs/build-onnx.log 2>&1; \
                    echo rc=\$? >> $jobs/build-onnx.log; touch $jobs/build-onnx.done" < /dev/null > /dev/null 2>&1 &
    setsid bash -c "python3 bench/generation.py --device cuda --shape qwen2-0.5b ${GEN_ARGS:---aoti --new-tokens 128 --rounds 5} \
                    > $jobs/gen.log 2>&1; echo rc=\$? >> $jobs/gen.log; touch $jobs/gen.done" < /dev/null > /dev/null 2>&1 &
    sleep 20; progress ;;
ort)
    # ONNX Runtime's CUDA provider (CUDA graphs) on resnet50's onnx targets (built by start-gen) and on
    # the small CNN's onnx/ort/fp16/int8 built ahead on a CPU machine and carried in .gpucarry/art
    # (the GPU image has no nvidia-modelopt, which the fp16/int8 stages need)
    export PYTHONPATH=/tmp/ortsite:/tmp/site; tree=$PWD
    for _ in $(seq 1 240); do [ -e $jobs/build-onnx.done ] && break; sleep 1; done
    (cd /tmp/repo && python3 scripts/device/ort_gpu_check.py manifests/resnet50.yaml onnx onnx-ort) > $OUT/ort_check_resnet50.md 2>&1
    (cd /tmp/repo && python3 -m buildsys bench manifests/resnet50.yaml -t onnx -t onnx-ort -t exported --reference eager \
        --batch 1,8,32 --memory shared --seconds 3) > $OUT/bench_h200_resnet50_ort.md 2>$OUT/bench_err_ort.txt
    BUILDSYS_OUT=$tree/.gpucarry/art python3 scripts/device/ort_gpu_check.py manifests/cnn.yaml onnx onnx-ort fp16 int8 \
        > $OUT/ort_check_cnn.md 2>&1
    BUILDSYS_OUT=$tree/.gpucarry/art python3 -m buildsys bench manifests/cnn.yaml -t onnx -t onnx-ort -t fp16 -t int8 \
        --batch 1,8,32 --memory shared --seconds 3 > $OUT/bench_h200_cnn_ort.md 2>>$OUT/bench_err_ort.txt
    tail -n 20 $OUT/*.md; tail -n 5 $OUT/bench_err_ort.txt; progress ;;
collect)
    for _ in $(seq 1 ${WAIT_S:-500}); do [ -e $jobs/gen.done ] && break; sleep 1; done
    tail -n 30 $jobs/gen.log; cp /tmp/repo/bench/results/generation_cuda* $OUT/ 2>/dev/null; cp $jobs/gen.log $OUT/ ;;
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
