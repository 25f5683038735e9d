"""Benchmark: greedy generation through built artifacts vs the eager model's ``generate()``.

Not a test. Builds manifests/tiny-llama-gen.yaml (its random-weight model is written first when
missing) or, with ``--shape qwen2-0.5b``, a random-weight Qwen2-0.5B-shaped model (fp16 weights,
built in float32) written with its manifest under bench/out/ (git-ignored; no network). In one
process it interleaves rounds (variant order shuffled per round) of: time to first token (the
prefill step) and decode tokens/s (the remaining steps) at each batch size, for

- every artifact through ``buildsys_hf.generate`` (the numpy loop; CPU only),
- the torch.exported (and ``--aoti``: AOTInductor) step through ``buildsys_hf.static`` (the
  static KV window; on CUDA one captured CUDA graph replayed per token),
- eager ``generate()`` of transformers (default attention, dynamic cache), and its static-cache
  compiled ``generate()`` as transformers documents it (``cache_implementation = "static"``,
  ``forward = torch.compile(forward, mode="reduce-overhead", fullgraph=True)``; default mode on
  the CPU, where CUDA graphs do not apply).

Every variant is checked to produce the eager tokens. Prints a markdown table and writes it with
a JSON of every timing to bench/results/generation_<device>[_<shape>].md / .json.

    .venv/bin/python bench/generation.py                        # CPU, tiny model
    .venv/bin/python bench/generation.py --aoti --rounds 7 --new-tokens 32
    python bench/generation.py --device cuda --shape qwen2-0.5b --aoti --new-tokens 128   # GPU machine
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
QWEN_DIR = REPO / "bench" / "out" / "qwen2-0.5b-shape"  # git-ignored
QWEN = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
            intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True, max_position_embeddings=32768,
            rope_theta=1000000.0, rms_norm_eps=1e-6)  # Qwen2-0.5B's config.json shape
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "manifests" / "models"))


def build(targets: list[str], manifest: Path, name: str) -> tuple[Path, list[str]]:
    """Build ``targets`` (on with the rest when one fails); the folder and the targets built. The
    first target is the one every variant needs."""
    args = [sys.executable, "-m", "buildsys", "build", str(manifest), "-q", "-k"] + [a for t in targets for a in ("-t", t)]
    out = REPO / "artifacts"  # whichever folder the manifest is in
    subprocess.run(args, cwd=REPO, env=dict(os.environ, HF_HUB_OFFLINE="1", BUILDSYS_OUT=str(out)))
    root = out / name / "1.0.0"
    built = [t for t in targets if (root / t / "artifact.json").is_file()]
    if targets[0] not in built:
        raise SystemExit(f"{targets[0]} did not build (the build's messages are above)")
    return root, built


def tiny_model() -> tuple[Path, Path, str]:
    if not (MODEL / "config.json").is_file():
        subprocess.run([sys.executable, str(MODEL.parent / "tiny_llama_gen.py")], check=True)
    return MANIFEST, MODEL, "tiny-llama-gen"


def qwen_model(context: int, aoti_hardware: str | None, precision: str) -> tuple[Path, Path, str]:
    """Qwen2-0.5B's shape with random weights (seeded, saved fp16: ~1 GB), the word-level tokenizer
    of the tiny example, and a manifest building its step in ``precision`` (torch.exported, lowered
    by torch.fp16 for fp16; AOTInductor for ``aoti_hardware``). Written once under bench/out/."""
    import torch
    import transformers
    from tiny_llama_gen import save_tokenizer

    folder = QWEN_DIR / "model"
    if not (folder / "config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        save_tokenizer(folder)
        config = transformers.Qwen2Config(**QWEN, bos_token_id=2, eos_token_id=3, pad_token_id=0)
        torch.manual_seed(0)
        transformers.Qwen2ForCausalLM(config).half().eval().save_pretrained(folder)
    lowered = "" if precision == "fp32" else f", precision: {precision}"
    aoti = f"\n  aoti: {{format: aoti, hardware: {aoti_hardware}{lowered}}}" if aoti_hardware else ""
    manifest = QWEN_DIR / "qwen2-0.5b-shape.yaml"
    # random weights give near-tied logits: validation's token agreement is reported, not required
    manifest.write_text("schema: 1\nname: qwen2-0.5b-shape\nversion: 1.0.0\nmodel:\n  framework: huggingface\n"
                        "  id: model\n  task: text-generation\n"
                        f"  generation: {{max_context: {context}, new_tokens: 8, min_token_agreement: {{{precision}: 0.0}}}}\n"
                        f"targets:\n  exported: {{format: torch.exported{lowered}}}{aoti}\n")
    return manifest, folder, "qwen2-0.5b-shape"


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


def static_variant(step, ids, mask, new_tokens):
    """The static-window loop of ``generate_static``, timed inside one call: the prefill (its first
    token chosen, the device synchronised) and the remaining decode steps (synchronised at the end)."""
    import torch

    from buildsys_hf.static import Window

    sync = torch.cuda.synchronize if step.device == "cuda" else (lambda: None)

    def once():
        window = step.windows.get(ids.shape[0]) or step.windows.setdefault(ids.shape[0], Window(step, ids.shape[0]))
        with torch.no_grad():
            start = time.perf_counter()
            window.prefill(torch.from_numpy(ids), torch.from_numpy(mask), None, 0)
            sync()
            first = time.perf_counter()
            for _ in range(1, new_tokens):
                window.decode()
            tokens = window.tokens()  # to the host: the device has finished
            end = time.perf_counter()
        return first - start, max(end - first, 1e-9), tokens
    return once


def artifact_variant(run, layout, ids, mask, new_tokens):
    from buildsys_hf.generate import generate

    def once():
        timed = Timed(run)
        tokens = generate(timed, layout, ids, new_tokens, None, attention_mask=mask, pad_token_id=0)
        return timed.times[0], sum(timed.times[1:]), tokens
    return once


def hf_variant(model, ids, mask, new_tokens):
    """transformers' generate(): the first call of a logits processor marks the first token (the
    GPU synchronised there), the rest of the call is the decode."""
    import torch

    device = model.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    class FirstToken:
        def __init__(self):
            self.at = None

        def __call__(self, input_ids, scores):
            if self.at is None:
                sync()
                self.at = time.perf_counter()
            return scores

    def once():
        marker = FirstToken()
        with torch.no_grad():
            start = time.perf_counter()
            out = model.generate(input_ids=torch.from_numpy(ids).to(device), attention_mask=torch.from_numpy(mask).to(device),
                                 max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
                                 logits_processor=[marker])
            tokens = out[:, ids.shape[1]:].cpu().numpy()
            end = time.perf_counter()
        return marker.at - start, max(end - marker.at, 1e-9), tokens
    return once


def hf_models(folder: Path, device: str, precision: str, wanted, compile_mode: str | None) -> dict:
    """Eager generate() and the static-cache compiled generate() transformers documents, in
    ``precision`` (the artifacts' own); eager always (the table's baseline), the compiled one when
    ``wanted``."""
    import torch
    import transformers

    dtype = {"fp32": torch.float32, "fp16": torch.float16}[precision]

    def model():
        loaded = transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype).to(device).eval()
        loaded.generation_config.eos_token_id = None  # always new_tokens tokens, no end-of-sequence masking
        return loaded

    models = {"eager generate()": model()}
    if wanted("compiled static-cache generate()"):
        compiled = model()
        compiled.generation_config.cache_implementation = "static"
        compiled.generation_config.disable_compile = True  # generate() would compile the call again on CUDA
        compiled.forward = torch.compile(compiled.forward, fullgraph=True, mode=compile_mode)
        models["compiled static-cache generate()"] = compiled
    return models


def prompts(folder: Path, batch: int):
    from buildsys_hf.generate import left_pad
    from buildsys_hf.prompts import tokenizer_for
    from buildsys_hf.samples import SENTENCES

    tokenizer = tokenizer_for(folder)
    return left_pad([tokenizer(t)["input_ids"] for t in (SENTENCES * 4)[:batch]], 0)


def measure(variants: dict, rounds: int, batch: int, new_tokens: int, failed: dict) -> dict:
    """Interleaved rounds; a variant whose warm-up raises is left out, its error kept in ``failed``."""
    results = {name: {"ttft": [], "decode": []} for name in variants}
    for name, once in list(variants.items()):  # warm-up, and the tokens every variant must agree on
        try:
            first, _, tokens = once()
            results[name]["tokens"], results[name]["first_call_ttft"] = tokens.tolist(), first
        except Exception as exc:  # one variant that cannot run on this machine must not end the run
            failed[f"{name} (batch {batch})"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            print(f"left out {name} at batch {batch}: {failed[f'{name} (batch {batch})']}", file=sys.stderr)
            del variants[name], results[name]
    for _ in range(rounds):
        order = list(variants)
        random.shuffle(order)
        for name in order:
            first, rest, _ = variants[name]()
            results[name]["ttft"].append(first)
            results[name]["decode"].append(batch * (new_tokens - 1) / rest)
    return results


def agreement(tokens: list, eager: list) -> str:
    """``yes``, or where the tokens first part from eager's: the step and the rows that part there."""
    if tokens == eager:
        return "yes"
    steps = [next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), None)
             for mine, theirs in zip(tokens, eager)]
    first = min(s for s in steps if s is not None)
    return f"NO: from step {first} (rows {', '.join(str(r) for r, s in enumerate(steps) if s == first)})"


def table(all_results: dict, new_tokens: int) -> list[str]:
    lines = ["| variant | batch | time to first token (ms, median) | first call's (ms) | decode tokens/s (median) | "
             "decode vs eager | tokens = eager's |", "|---|---|---|---|---|---|---|"]
    for batch, results in all_results.items():
        eager = results.get("eager generate()")
        for name, r in results.items():
            decode = statistics.median(r["decode"])
            ratio = f"{decode / statistics.median(eager['decode']):.2f}x" if eager else "-"
            same = "-" if eager is None else agreement(r["tokens"], eager["tokens"])
            lines.append(f"| {name} | {batch} | {1000 * statistics.median(r['ttft']):.2f} | "
                         f"{1000 * r['first_call_ttft']:.0f} | {decode:,.0f} | {ratio} | {same} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--shape", choices=("tiny", "qwen2-0.5b"), default="tiny")
    parser.add_argument("--context", type=int, default=256, help="qwen2-0.5b: max_context (the window is one less)")
    parser.add_argument("--aoti", action="store_true", help="also build and time the AOTInductor package")
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                        help="qwen2-0.5b: the artifacts' precision (fp16: the torch.fp16 stage) and the references'")
    parser.add_argument("--no-static-launcher", action="store_true",
                        help="CUDA: Inductor's own Triton launcher for the compiled reference (torch 2.11's static "
                             "launcher segfaulted in its CUDA-graph replay on the H200)")
    parser.add_argument("--compile-mode", help="torch.compile mode of the compiled reference (default: "
                        "reduce-overhead on CUDA, as transformers documents; the default mode on the CPU)")
    parser.add_argument("--variants", help="comma-separated parts of variant names to time (default: all); "
                        "eager generate() is always timed, as the baseline")
    parser.add_argument("--out", type=Path, help="default: bench/results/generation_<device>[_<shape>].md")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    if args.shape == "tiny":
        if args.precision != "fp32":
            raise SystemExit("--precision fp16 needs --shape qwen2-0.5b (tiny-llama-gen's torch targets are fp32)")
        (manifest, folder, name), aoti_target = tiny_model(), "aoti-cpu"
        if cuda and args.aoti:
            raise SystemExit("--aoti on CUDA needs --shape qwen2-0.5b (tiny-llama-gen's AOTI target is for the CPU)")
    else:
        (manifest, folder, name), aoti_target = qwen_model(args.context, "h200" if cuda and args.aoti else None,
                                                       args.precision), "aoti"
    targets = ["exported"] + ([aoti_target] if args.aoti else []) + ([] if cuda or args.shape != "tiny" else
                                                                       ["onnx", "onnx-ort"])
    root, built = build(targets, manifest, name)
    failed = {f"{t} (build)": "did not build (the build's messages are above)" for t in targets if t not in built}
    targets = built
    out = args.out or REPO / "bench" / "results" / (
        f"generation_{args.device}{'' if args.shape == 'tiny' else '_' + args.shape}"
        f"{'' if args.precision == 'fp32' else '_' + args.precision}.md")

    import torch
    import transformers

    import buildsys

    compile_mode = args.compile_mode or ("reduce-overhead" if cuda else None)
    if args.no_static_launcher:
        torch._inductor.config.use_static_cuda_launcher = False
    from buildsys_hf.generate import StepLayout
    from buildsys_hf.static import load_step

    layout = StepLayout.from_artifact(root / "exported")
    runs, steps = {}, {}
    for target in targets:
        loaded = artifact(root / target)
        if loaded.kind in ("torch.exported", "torch.aoti"):
            session = buildsys.load(root / target, device=args.device)
            if cuda:  # the same loop without the captured graph: what the graph itself gains
                steps[f"{target} static window, no CUDA graph ({loaded.kind})"] = load_step(session, cuda_graph=False)
            steps[f"{target} static window ({loaded.kind})"] = load_step(session)
        if not cuda:  # the numpy loop: a new cache shape every step (on CUDA: a graph captured per step)
            runs[f"{target} ({loaded.kind})"] = runner(loaded.kind)(loaded, "cpu")
    chosen = [v.strip() for v in args.variants.split(",")] if args.variants else None

    def wanted(label: str) -> bool:
        return chosen is None or any(part in label for part in chosen)

    references = hf_models(folder, args.device, args.precision, wanted, compile_mode)
    compiled = any(label.startswith("compiled") for label in references)
    all_results = {}

    def report() -> str:
        """Write what is measured so far (after each batch: a run cut short keeps its figures)."""
        load = os.getloadavg()
        command = "python bench/generation.py " + " ".join(sys.argv[1:])
        host = (torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine())
        model_text = ("manifests/tiny-llama-gen.yaml (Llama, 2 layers, hidden 64, 4 query / 2 key-value heads, random "
                      "weights)" if args.shape == "tiny" else
                      f"a random-weight Qwen2-0.5B-shaped model ({QWEN_DIR.relative_to(REPO)}: 24 layers, hidden 896, "
                      f"14 query / 2 key-value heads, vocab 151,936; weights saved fp16, built and run in "
                      f"{'float32' if args.precision == 'fp32' else 'fp16 (torch.fp16; eager and compiled in fp16 too)'}), "
                      f"max_context {args.context}")
        text = "\n".join([
            f"# Generation on {args.device}: artifacts vs eager generate()", "",
            f"`{command.strip()}` — {model_text}, {args.new_tokens} new tokens greedy, prompts of the HF source's "
            f"sentences (left-padded), {args.rounds} interleaved rounds after a warm-up, medians.",
            f"Host: {host}, {os.cpu_count()} CPUs, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), transformers {transformers.__version__}; load average at the end "
            f"{load[0]:.1f} / {load[1]:.1f} (1 / 5 min). Artifacts run through `buildsys_hf.generate` (numpy loop, "
            "cache fed back each step) or `buildsys_hf.static` (static KV window of max_context - 1 slots"
            f"{'; the prefill one CUDA graph per 32-token padded prompt length, the decode one per token' if cuda else ''}"
            "); eager is transformers' `generate()` with its default attention"
            + (f"; compiled is its static-cache generate() with the forward under torch.compile ({compile_mode or 'default mode'}, "
               f"fullgraph{'; Inductor static CUDA launcher off' if args.no_static_launcher else ''})" if compiled else "")
            + ". Time to first token = the prefill step "
            "(HF: until the first logits processor call; static: the prefill until its first token is chosen, device synchronised); decode tokens/s "
            "= batch x (new tokens - 1) / time of the remaining steps. First call's: the warm-up call's time to "
            "first token (CUDA graph captures, Inductor compilation). Tokens: greedy tokens equal to eager's, or the "
            "first step where they part.", "",
            *table(all_results, args.new_tokens), "",
            *[f"Left out: {name}: {why}" for name, why in failed.items()], ""])
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps({"command": command.strip(), "results": all_results, "failed": failed}, indent=1))
        return text

    batches = [int(b) for b in args.batches.split(",")]
    for batch in batches:
        ids, mask = prompts(folder, batch)
        # warm-up order: eager, the artifacts, the compiled reference last (a variant that kills the
        # process leaves the figures of those before it in the log)
        variants = {label: hf_variant(model, ids, mask, args.new_tokens) for label, model in references.items()
                    if label.startswith("eager")}
        variants.update({label: artifact_variant(run, layout, ids, mask, args.new_tokens) for label, run in runs.items()
                         if wanted(label)})
        variants.update({label: static_variant(step, ids, mask, args.new_tokens) for label, step in steps.items()
                         if wanted(label)})
        variants.update({label: hf_variant(model, ids, mask, args.new_tokens) for label, model in references.items()
                         if not label.startswith("eager")})
        print(f"batch {batch}: {len(variants)} variants x {args.rounds} rounds", file=sys.stderr)
        all_results[batch] = measure(variants, args.rounds, batch, args.new_tokens, failed)
        if batch != batches[-1]:
            report()
    print(report())


if __name__ == "__main__":
    main()
