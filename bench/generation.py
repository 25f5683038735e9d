"""Benchmark: greedy generation through built artifacts vs the eager model's ``generate()`` (CPU).

Not a test. Builds manifests/tiny-llama-gen.yaml (its random-weight model is written first when
missing), loads each built target's runner and, in one process, interleaves rounds (variant
order shuffled per round) of: time to first token (the prefill step) and decode tokens/s (the
remaining steps) at batch 1 and 8, for every artifact through ``buildsys_hf.generate`` and for
eager ``generate()`` of transformers (default attention, dynamic cache). Every variant is also
checked to produce the eager tokens. Prints a table and writes bench/results/generation_cpu.md.

    .venv/bin/python bench/generation.py                        # exported, onnx, onnx-ort
    .venv/bin/python bench/generation.py --aoti --rounds 7 --new-tokens 32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "manifests" / "tiny-llama-gen.yaml"
MODEL = REPO / "manifests" / "models" / "tiny-llama-gen"
sys.path.insert(0, str(REPO / "plugins"))


def build(targets: list[str]) -> Path:
    if not (MODEL / "config.json").is_file():
        subprocess.run([sys.executable, str(MODEL.parent / "tiny_llama_gen.py")], check=True)
    args = [sys.executable, "-m", "buildsys", "build", str(MANIFEST), "-q"] + [a for t in targets for a in ("-t", t)]
    subprocess.run(args, check=True, cwd=REPO, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    return REPO / "artifacts" / "tiny-llama-gen" / "1.0.0"


def artifact(directory: Path):
    from buildsys import InputArtifact

    rec = json.loads((directory / "artifact.json").read_text())
    files = {f["name"]: directory / f["name"] for f in rec["files"]}
    [primary] = [f["name"] for f in rec["files"] if f["role"] == "primary"]
    return InputArtifact(rec["kind"], rec["precision"], rec["hardware"], directory, files,
                         dict(rec["meta"], primary=primary))


def runner(kind: str):
    from buildsys_onnx.runtime import load_runner
    from buildsys_torch.runtime import load_aoti, load_exported

    return {"torch.exported": load_exported, "torch.aoti": load_aoti, "onnx": load_runner, "onnx.ort": load_runner}[kind]


class Timed:
    """A runner callable that records each call's duration (the first is the prefill)."""

    def __init__(self, run):
        self.run, self.times = run, []

    def __call__(self, arrays):
        start = time.perf_counter()
        out = self.run(arrays)
        self.times.append(time.perf_counter() - start)
        return out


def artifact_variant(run, layout, ids, mask, new_tokens):
    from buildsys_hf.generate import generate

    def once():
        timed = Timed(run)
        tokens = generate(timed, layout, ids, new_tokens, None, attention_mask=mask, pad_token_id=0)
        return timed.times[0], sum(timed.times[1:]), tokens
    return once


def eager_variant(model, ids, mask, new_tokens):
    import torch

    def generate(count):
        with torch.no_grad():
            start = time.perf_counter()
            out = model.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                 max_new_tokens=count, do_sample=False, pad_token_id=0)
            return time.perf_counter() - start, out[:, ids.shape[1]:].numpy()

    def once():
        first, _ = generate(1)
        whole, tokens = generate(new_tokens)
        return first, max(whole - first, 1e-9), tokens
    return once


def prompts(batch: int):
    from buildsys_hf.generate import left_pad
    from buildsys_hf.prompts import tokenizer_for
    from buildsys_hf.samples import SENTENCES

    tokenizer = tokenizer_for(MODEL)
    return left_pad([tokenizer(t)["input_ids"] for t in (SENTENCES * 4)[:batch]], 0)


def measure(variants: dict, rounds: int, batch: int, new_tokens: int) -> dict:
    results = {name: {"ttft": [], "decode": []} for name in variants}
    for name, once in variants.items():  # warm-up, and the tokens every variant must agree on
        results[name]["tokens"] = once()[2].tolist()
    for _ in range(rounds):
        order = list(variants)
        random.shuffle(order)
        for name in order:
            first, rest, _ = variants[name]()
            results[name]["ttft"].append(first)
            results[name]["decode"].append(batch * (new_tokens - 1) / rest)
    return results


def table(all_results: dict, new_tokens: int) -> list[str]:
    lines = ["| variant | batch | time to first token (ms, median) | decode tokens/s (median) | decode vs eager | "
             "tokens = eager's |", "|---|---|---|---|---|---|"]
    for batch, results in all_results.items():
        eager = statistics.median(results["eager generate()"]["decode"])
        for name, r in results.items():
            decode = statistics.median(r["decode"])
            same = "yes" if r["tokens"] == results["eager generate()"]["tokens"] else "NO"
            lines.append(f"| {name} | {batch} | {1000 * statistics.median(r['ttft']):.2f} | {decode:,.0f} | "
                         f"{decode / eager:.2f}x | {same} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--aoti", action="store_true", help="also build and time the AOTInductor package (~1 min)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "generation_cpu.md")
    args = parser.parse_args()
    targets = ["exported", "onnx", "onnx-ort"] + (["aoti-cpu"] if args.aoti else [])
    root = build(targets)

    import torch
    import transformers

    from buildsys_hf.generate import StepLayout

    layout = StepLayout.from_artifact(root / "exported")
    runs = {}
    for target in targets:
        loaded = artifact(root / target)
        runs[f"{target} ({loaded.kind})"] = runner(loaded.kind)(loaded, "cpu")
    eager = transformers.AutoModelForCausalLM.from_pretrained(str(MODEL)).eval()
    eager.generation_config.eos_token_id = None  # always new_tokens tokens, no end-of-sequence masking
    all_results = {}
    for batch in [int(b) for b in args.batches.split(",")]:
        ids, mask = prompts(batch)
        variants = {"eager generate()": eager_variant(eager, ids, mask, args.new_tokens)}
        variants.update({name: artifact_variant(run, layout, ids, mask, args.new_tokens) for name, run in runs.items()})
        print(f"batch {batch}: {len(variants)} variants x {args.rounds} rounds", file=sys.stderr)
        all_results[batch] = measure(variants, args.rounds, batch, args.new_tokens)
    load = os.getloadavg()
    command = "python bench/generation.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# Generation on the CPU: artifacts vs eager generate()", "",
        f"`{command.strip()}` — manifests/tiny-llama-gen.yaml (Llama, 2 layers, hidden 64, 4 query / 2 key-value "
        f"heads, random weights), {args.new_tokens} new tokens greedy, prompts of the HF source's sentences "
        f"(left-padded), {args.rounds} interleaved rounds after a warm-up, medians.",
        f"Host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), transformers {transformers.__version__}; load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} (1 / 5 min: the machine is shared, so expect noise). Artifacts run through "
        "`buildsys_hf.generate` (numpy loop, cache fed back each step); eager is transformers' `generate()` "
        "with its default attention. Time to first token = the prefill step (eager: generate(max_new_tokens=1)); "
        "decode tokens/s = batch x (new tokens - 1) / time of the remaining steps.", "",
        *table(all_results, args.new_tokens), "",
        "A tiny model measures per-step overhead (Python, dispatch, the runtime's call cost), not arithmetic: "
        "what these numbers say is how much each runtime costs per decode step. No GPU figures here.", ""])
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
