"""On the GPU machine: fill Inductor's caches for ``buildsys bench``'s torch.compile references
at one batch size, so that the bench itself finds every graph compiled and autotuned.

``torch.compile(mode="max-autotune")`` of ResNet-50 takes ~4 minutes per input shape on the lent
machines (it autotunes every convolution and matmul), so one 10-minute device command cannot
compile three batch sizes in turn. Run one of these per (manifest, batch) side by side, with the
same TORCHINDUCTOR_CACHE_DIR as the bench: the references are built exactly as the bench builds
them (``buildsys_bench_references`` with the timed targets' precisions, each batch its own static
graph) and called once on the bench's inputs, so the bench's compiles are cache hits.
    python3 scripts/device/prewarm_references.py manifests/resnet50.yaml 32 fp16
"""

import sys
import time

from buildsys import manifest as manifest_mod
from buildsys import plugins
from buildsys.benchmark import child, measure


def main(path: str, batch: int, precisions: tuple[str, ...]) -> None:
    manifest = manifest_mod.load(path)
    pm = plugins.load(plugins.PluginConfig.from_options(()))
    variants, _, _ = child.references(pm, manifest.model, manifest.root, "cuda", None, precisions)
    inputs = measure.make_inputs(manifest.model, batch)
    for variant in variants:
        if variant.name.startswith("torch.compile"):
            started = time.perf_counter()
            variant.run(inputs)
            print(f"{manifest.name} batch {batch} {variant.name}: compiled in {time.perf_counter() - started:.0f} s",
                  flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), tuple(sys.argv[3].split(",")))
