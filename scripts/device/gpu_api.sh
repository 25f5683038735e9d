#!/usr/bin/env bash
# On the lent GPU machine: install buildsys over the image's torch from the carried wheels
# (.whl: the core's pure dependencies for Python 3.12), build the CNN's AOTInductor CUDA target
# and its portable torch.export target, and run both through buildsys.load on the GPU against
# eager (issue 22's AOTI load fix, issue 20's API on CUDA). Results -> $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
export BUILDSYS_OUT=/tmp/art PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/inductor
exec > >(tee -a "$OUT/log.txt") 2>&1
start=$(date +%s)
python3 -m buildsys build manifests/cnn-h100.yaml -q; echo "== build cnn-h100 rc=$? $(( $(date +%s) - start ))s"
BUILDSYS_OUT=/tmp/art2 python3 -m buildsys build manifests/cnn.yaml -t exported -q; echo "== build cnn exported rc=$?"
start=$(date +%s)
python3 -m buildsys build manifests/encoder-h100.yaml -q; echo "== build encoder-h100 rc=$? $(( $(date +%s) - start ))s"
cp /tmp/art/cnn/1.0.0/aoti-h100/artifact.json "$OUT/cnn-aoti-h100.artifact.json" 2>/dev/null
cp /tmp/art/encoder/1.0.0/aoti-h100/artifact.json "$OUT/encoder-aoti-h100.artifact.json" 2>/dev/null
python3 - <<'PY'
import time, numpy as np, torch, buildsys
import importlib.util, sys
spec = importlib.util.spec_from_file_location("cnn", "manifests/models/cnn.py"); cnn = importlib.util.module_from_spec(spec); spec.loader.exec_module(cnn)
model = cnn.build().cuda().eval()
x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
with torch.no_grad():
    want = model(torch.from_numpy(x).cuda()).cpu().numpy()
for target, manifest, out in (("aoti-h100", "manifests/cnn-h100.yaml", "/tmp/art"), ("exported", "manifests/cnn.yaml", "/tmp/art2")):
    try:
        session = buildsys.load(manifest, target=target, out=out)
        got = session.run({"images": x})["output"]
        t0 = time.perf_counter()
        for _ in range(100):
            session.run({"images": x})
        ms = (time.perf_counter() - t0) * 10
        print(f"API {target}: device={session.device} runner={session.runner} maxdiff={np.abs(got - want).max():.3g} "
              f"{ms:.3f} ms/call (numpy in/out) notes={session.notes}")
    except Exception as exc:
        print(f"API {target}: FAILED {type(exc).__name__}: {exc}")
PY
echo "== done $(( $(date +%s) - start ))s"
