#!/usr/bin/env bash
# On the lent GPU machine (see the device tool): install buildsys over the image's JAX (CUDA),
# build the JAX example with an extra cuda target (the StableHLO's cuda lowering compiled and
# validated on the GPU), and time jax.jit vs the deserialized export vs the deserialized
# executable at batch 1 and 32 (bench/jax_variants.py). Results -> $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1  # build workers and the bench share the GPU
python3 -c "import jax, jaxlib; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())"
python3 -m buildsys host
python3 bench/jax_variants.py --workdir /tmp/jaxbench --out "$OUT/jax_variants_h100.md"; echo "bench rc=$?"
for t in stablehlo xla-host xla-cuda; do
    cp /tmp/jaxbench/out/jax-mlp/1.0.0/$t/artifact.json "$OUT/$t.artifact.json" 2>/dev/null
done
