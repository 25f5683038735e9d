"""Benchmark: ``exclude: auto`` on the examples' reduced-precision ONNX targets.

Not a test. For each example manifest with ``int8`` / ``fp16`` ONNX targets it copies the
manifest's folder into a temporary project and builds two variants with the real CLI:

- ``before``: no exclusions (``calibration.exclude: []``, fp16 ``exclude: []``), the int8 and
  fp16 tolerances opened so the damaged artifact is built and its accuracy reported;
- ``auto``: ``exclude: auto`` for both, the manifest's own tolerances (what the search aims at).

Accuracy is the validation record from ``artifact.json`` (worst cosine over outputs and samples,
and top-1 agreement for classifier outputs, vs the fp32 source model on the held-out samples);
for a search that met no tolerance, the best it got, from its record in the stage's log line.
"kept" is how many layers auto left in higher precision; "search s" the precision stage's
seconds with auto minus without (the extra build time of the search, cold cache).

    python bench/accuracy_debug.py                       # every example, auto_rounds 6
    python bench/accuracy_debug.py --manifests manifests/cnn.yaml

Results go to bench/results/accuracy_debug.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_variants as cv  # noqa: E402  (shared build helpers)

REPO = cv.REPO
DEFAULT_MANIFESTS = ("manifests/cnn.yaml", "manifests/encoder.yaml", "manifests/minilm.yaml",
                     "manifests/tiny-cnn-onnx.yaml")
STAGES = {"int8": "onnx.int8", "fp16": "onnx.fp16"}
OPEN = {"int8": {"min_cosine": -1.0}, "fp16": {"atol": 1.0e9}}  # build the damaged artifact, report it


def variant(manifest: Path, work: Path, kind: str, rounds: int) -> Path:
    """The manifest with only its int8/fp16 ONNX targets, without exclusions or with auto."""
    copy = cv.copy_project(manifest, work / kind)
    data = yaml.safe_load(copy.read_text())
    targets = {t: dict(spec) for t, spec in data["targets"].items()
               if spec.get("format") == "onnx" and spec.get("precision") in STAGES}
    exclude = "auto" if kind == "auto" else []
    for spec in targets.values():
        if spec["precision"] == "fp16":
            options = spec.setdefault("options", {})
            options["onnx.fp16"] = dict(options.get("onnx.fp16", {}), exclude=exclude,
                                        **({"auto_rounds": rounds} if kind == "auto" else {}))
    data["targets"] = targets
    if "calibration" in data:
        data["calibration"]["exclude"] = exclude
        if kind == "auto":
            data["calibration"]["auto_rounds"] = rounds
    if kind == "before":
        data["validation"] = dict(data.get("validation") or {}, **OPEN)
    path = copy.parent / f"{data['name']}-{kind}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def measured(built: dict, target: str, precision: str) -> dict:
    """Accuracy, layers kept and the precision stage's seconds of one built target."""
    directory = built["targets"].get(target)
    if directory is None:
        error = next((e for n, e in built["failed"].items() if n.startswith("validate#") or n.startswith(STAGES[precision])),
                     "not built")
        best = next((line.strip() for line in str(error).splitlines() if "exclude: auto met no" in line), None)
        return {"failed": best or str(error).splitlines()[0][:160]}
    record = json.loads((Path(directory) / "artifact.json").read_text())
    outputs = record.get("validation", {}).get("outputs", [])
    step = next(s for s in record["chain"] if s["stage"] == STAGES[precision])
    auto = record["meta"].get("exclude_auto")
    return {"cosine": min(o["cosine"] for o in outputs),
            "top1": min((o["top1"] for o in outputs if "top1" in o), default=None),
            "seconds": step["seconds"], "kept": len(auto["kept_nodes"]) if auto else None,
            "rounds": len(auto["history"]) - 1 if auto else None}


def bench_manifest(manifest: Path, work: Path, rounds: int) -> list[dict]:
    runs = {kind: variant(manifest, work, kind, rounds) for kind in ("before", "auto")}
    built = {kind: cv.build(path, work / f"build-{kind}") for kind, path in runs.items()}
    targets = yaml.safe_load(runs["auto"].read_text())["targets"]
    return [{"manifest": manifest.name, "target": t, "precision": spec["precision"],
             **{kind: measured(built[kind], t, spec["precision"]) for kind in built}}
            for t, spec in targets.items()]


def table(rows: list[dict]) -> list[str]:
    lines = ["| manifest | target | before: worst cosine (top-1) | auto: worst cosine (top-1) | layers kept "
             "(rounds) | search s (stage s before -> auto) |", "|---|---|---|---|---|---|"]
    for r in rows:
        before, auto = r["before"], r["auto"]
        extra = (f"{auto['seconds'] - before['seconds']:+.1f} ({before['seconds']:.1f} -> {auto['seconds']:.1f})"
                 if "seconds" in auto and "seconds" in before else "-")
        kept = f"{auto['kept']} ({auto['rounds']})" if auto.get("kept") is not None else "-"
        lines.append(f"| {r['manifest']} | {r['target']} | {_accuracy(before)} | {_accuracy(auto)} | {kept} | {extra} |")
    return lines


def _accuracy(m: dict) -> str:
    if "failed" in m:
        return f"failed: {m['failed']}"
    return f"{m['cosine']:.6f}" + (f" ({m['top1']:.3f})" if m.get("top1") is not None else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", nargs="+", default=list(DEFAULT_MANIFESTS))
    parser.add_argument("--auto-rounds", type=int, default=6, help="auto_rounds of every auto target")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "accuracy_debug.md"))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="buildsys-accuracy-") as tmp:
        for i, manifest in enumerate(args.manifests):
            rows += bench_manifest((REPO / manifest).resolve(), Path(tmp) / str(i), args.auto_rounds)
            print("\n".join(table(rows)), flush=True)
    text = ["# exclude: auto on the examples' reduced-precision ONNX targets", "",
            "`python bench/accuracy_debug.py` (see its docstring). Before: no exclusions, tolerance opened; "
            f"auto: `exclude: auto` (auto_rounds {args.auto_rounds}: 1, 2, 4 ... more layers a round) against the manifest's tolerance (int8 default cosine >= 0.99; fp16 default "
            "element-wise 1e-2 scaled to the output). Cosine: worst over outputs and held-out samples vs the "
            "fp32 source model. Search s: the precision stage's seconds with auto minus without (2 shared cores).",
            "", *table(rows), ""]
    Path(args.out).write_text("\n".join(text))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
