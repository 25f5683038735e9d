"""On the GPU machine: validate a manifest's built ONNX targets on ONNX Runtime's CUDA provider.

Each target is loaded through ``buildsys.load(..., device="cuda")`` (the ONNX runner: the CUDA
provider, one CUDA graph per input signature), run on the manifest's validation samples, and
judged like validation judges it (``buildsys.judge_outputs``, the manifest's tolerance for the
target's precision) against the source module in fp32 on the GPU. Prints a markdown table.
    python3 scripts/device/ort_gpu_check.py manifests/resnet50.yaml onnx onnx-ort onnx-fp16 onnx-int8
"""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import torch

import buildsys

DEVICE = os.environ.get("DEVICE", "cuda")  # cpu: try the script here


def _function(root: Path, ref: str):
    path, name = ref.split(":")
    spec = importlib.util.spec_from_file_location(Path(path).stem, root / path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str((root / path).parent))
    spec.loader.exec_module(module)
    return getattr(module, name)


def main(manifest_path: str, targets: list[str]) -> None:
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # an fp32 reference
    manifest = buildsys.load_manifest(manifest_path)
    root = Path(manifest_path).resolve().parent
    model = _function(root, manifest.model.entrypoint)().float().to(DEVICE).eval()
    names = [i.name for i in manifest.model.inputs]
    if manifest.model.samples:
        samples = [[t.numpy() if hasattr(t, "numpy") else np.asarray(t) for t in (s.values() if isinstance(s, dict) else s)]
                   for s in _function(root, manifest.model.samples)()]
    else:  # no samples entrypoint: the bench's seeded inputs at batch 1 and 3
        from buildsys.benchmark.measure import make_inputs

        samples = [make_inputs(manifest.model, batch) for batch in (1, 3)]
    expected = []
    with torch.no_grad():
        for sample in samples:
            out = model(*[torch.from_numpy(a).to(DEVICE) for a in sample])
            out = list(out.values()) if isinstance(out, dict) else [out] if torch.is_tensor(out) else list(out)
            expected.append([o.float().cpu().numpy() for o in out])
    print("| target | precision | providers | passed | max abs | cosine | top1 | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for target in targets:
        try:
            session = buildsys.load(manifest_path, target=target, device=DEVICE)
            def run(sample):
                return [np.asarray(v, np.float32) for v in session.run(dict(zip(names, sample))).values()]

            got = [(run(s), run(s))[1] for s in samples]  # the second call replays the captured graph
            precision = session.artifact["precision"]
            verdict = buildsys.judge_outputs(got, expected, manifest.tolerance(precision).model_dump(exclude_none=True))
            providers = ",".join(p.replace("ExecutionProvider", "") for p in getattr(session._call, "providers", []))
            print(f"| {target} | {precision} | {providers} | {verdict['passed']} | {verdict.get('max_abs', '')} | "
                  f"{verdict.get('cosine', '')} | {verdict.get('top1', '')} | {'; '.join(session.notes)[:200]} |")
        except Exception as exc:
            print(f"| {target} | | | FAILED | | | | {type(exc).__name__}: {' '.join(str(exc).split())[:200]} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
