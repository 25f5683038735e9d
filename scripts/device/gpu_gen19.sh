#!/usr/bin/env bash
# Issue 19's GPU figures on the lent machine: bench/generation.py on a random-weight
# Qwen2-0.5B-shaped model, in consecutive device calls (the machine keeps /tmp while it stays
# warm, ~30 s between calls). The bench runs in the background (setsid: it outlives the call).
#   start    install buildsys from .whl (the core's pure dependencies for Python 3.12) and this
#            tree; start the bench runs (GEN_RUNS, default: the Qwen shape, fp16 artifacts and
#            references, AOTInductor too, 128 new tokens, 5 rounds); wait up to WAIT_S s (default 520)
#   wait     wait up to WAIT_S more seconds; both phases copy what is there to $OUT
set -uo pipefail
export PYTHONPATH=/tmp/site BUILDSYS_OUT=/tmp/art PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/inductor PYTHONFAULTHANDLER=1
jobs=/tmp/jobs; mkdir -p $jobs
case "$1" in
start)
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    cp -r . /tmp/repo; cd /tmp/repo  # run from a copy: the next call replaces this tree
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    # GEN_RUNS: bench argument sets separated by ';', run one after another (a crash in one
    # leaves the others' figures); each writes bench/results/generation_cuda_<i>.md
    IFS=';' read -ra runs <<< "${GEN_RUNS:---shape qwen2-0.5b --precision fp16 --aoti --new-tokens 128 --rounds 5}"
    script=""
    for i in "${!runs[@]}"; do
        script+="echo '### run $i: ${runs[$i]}'; python3 bench/generation.py --device cuda ${runs[$i]} \
                 --out bench/results/generation_cuda_$i.md; echo rc=\$?; "
    done
    setsid bash -c "( $script ) > $jobs/gen.log 2>&1; touch $jobs/gen.done" < /dev/null > /dev/null 2>&1 & ;;
wait) ;;
*) echo "usage: $0 start|wait"; exit 2 ;;
esac
for _ in $(seq 1 "${WAIT_S:-520}"); do [ -e $jobs/gen.done ] && break; sleep 1; done
tail -n 40 $jobs/gen.log
cp $jobs/gen.log $OUT/ 2>/dev/null; cp /tmp/repo/bench/results/generation_cuda* $OUT/ 2>/dev/null
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
ls $jobs
