"""Benchmark: the CNN served by a local Triton (python backend, loopback HTTP) vs ``buildsys.load`` in-process.

Not a test. Builds ``manifests/cnn.yaml``'s ``onnx`` and ``triton-py`` targets (cached after the
first run), starts the ``nvidia-pytriton`` tritonserver on 127.0.0.1 with the ``triton-py``
repository (its ``model.py`` runs the same ONNX artifact through ``buildsys.load``, so both sides
run the same graph in the same ONNX Runtime), then times one request at a time — closed loop,
one client, keep-alive — against ``buildsys.load(...).run`` on the same inputs. The two variants
alternate in short rounds in one run (order shuffled per round) so machine noise hits both.
Prints requests/s and p50/p95 latency per variant and batch, and the serving overhead: Triton's
p50 over in-process p50, and in-process requests/s over Triton's.

    .venv/bin/python bench/serve.py                          # batch 1 and 8, 20 rounds of 25 calls
    .venv/bin/python bench/serve.py --rounds 40 --calls 50 --out bench/results/serve.md
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "manifests" / "cnn.yaml"
MODEL = "cnn_py"


def build() -> tuple[Path, Path]:
    import buildsys

    report = buildsys.build(MANIFEST, targets=["onnx", "triton-py"], jobs=2)
    return report["onnx"].directory, report["triton-py"].directory


def in_process(directory: Path):
    import buildsys

    session = buildsys.load(directory, device="cpu")
    return lambda x: session.run({"images": x})["output"]


def through_triton(url: str):
    import tritonclient.http as http

    client = http.InferenceServerClient(url)
    wanted = [http.InferRequestedOutput("output")]

    def call(x):
        request = http.InferInput("images", list(x.shape), "FP32")
        request.set_data_from_numpy(x)
        return client.infer(MODEL, [request], outputs=wanted).as_numpy("output")

    call.close = client.close
    return call


def timed(call, x, calls: int) -> list[float]:
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        call(x)
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(variants: dict, batches: list[int], rounds: int, calls: int, warmup: int = 10) -> dict:
    """{(variant, batch): [seconds per call]}, the variants interleaved round by round."""
    import numpy as np

    inputs = {b: np.random.default_rng(b).standard_normal((b, 3, 32, 32)).astype(np.float32) for b in batches}
    for b, x in inputs.items():  # same answers, and warm both sides up
        outputs = [call(x) for call in variants.values() for _ in range(warmup)]
        assert all(np.allclose(o, outputs[0], rtol=1e-4, atol=1e-5) for o in outputs), "variants disagree"
    samples = {(name, b): [] for name in variants for b in batches}
    order = [(name, b) for name in variants for b in batches]
    rng = random.Random(0)
    for r in range(rounds):
        rng.shuffle(order)
        for name, b in order:
            samples[(name, b)] += timed(variants[name], inputs[b], calls)
        print(f"  round {r + 1}/{rounds}", file=sys.stderr, end="\r", flush=True)
    print(file=sys.stderr)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(samples: dict, batches: list[int]) -> list[str]:
    lines = ["| batch | variant | requests/s | items/s | p50 ms | p95 ms | overhead: p50 ratio | p50 added ms |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for b in batches:
        base = statistics.median(samples[("in-process", b)])
        for name in ("in-process", "triton"):
            s = samples[(name, b)]
            rps = len(s) / sum(s)
            ratio = statistics.median(s) / base
            lines.append(f"| {b} | {name} | {rps:,.0f} | {rps * b:,.0f} | {statistics.median(s) * 1e3:.3f} | "
                         f"{percentile(s, 0.95) * 1e3:.3f} | {ratio:.2f}x | {(statistics.median(s) - base) * 1e3:+.3f} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default 1,8)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=25, help="calls per variant and batch in each round")
    parser.add_argument("--out", type=Path, help="also write the table as Markdown to this file")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batch.split(",")]

    from buildsys_triton import server

    onnx_dir, repository = build()
    load_before = os.getloadavg()[0]
    with server.start(repository) as running:
        running.wait_ready([MODEL])
        triton = through_triton(running.url)
        try:
            samples = measure({"in-process": in_process(onnx_dir), "triton": triton}, batches, args.rounds, args.calls)
        finally:
            triton.close()
    lines = table(samples, batches)
    note = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
            f"{load_before:.2f} before / {os.getloadavg()[0]:.2f} after; {args.rounds} rounds x {args.calls} "
            f"calls per variant and batch, one request at a time (closed loop, keep-alive HTTP on 127.0.0.1)")
    print("\n".join(lines))
    print(note)
    if args.out:
        command = "$ .venv/bin/python bench/serve.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.out.write_text(_markdown(command, lines, note))
    return 0


def _markdown(command: str, lines: list[str], note: str) -> str:
    return "\n".join([
        "# Serving overhead: Triton (python backend, loopback HTTP) vs buildsys.load in-process", "",
        "The CNN of `manifests/cnn.yaml` (ONNX, fp32, CPU). Both sides run the same ONNX artifact in ONNX "
        "Runtime's CPU provider: in-process through `buildsys.load(...).run`, served through the `triton-py` "
        "repository, whose `model.py` calls `buildsys.load` inside the python backend's stub process. "
        "The difference is Triton's cost: HTTP on 127.0.0.1 (tritonclient, binary tensors), the server's "
        "scheduler and the shared-memory hop to the stub. Measured on a 2-core machine shared with other "
        "jobs (the load average below): read the ratios, not the absolute figures, and see the notes.", "",
        "```console", command, "```", "", *lines, "", note, "", *NOTES, ""])


NOTES = [
    "Notes:", "",
    "- Batch 1 is the serving overhead proper: the model's own work is under a millisecond, so the "
    "added p50 is what one request costs to go through Triton on loopback (HTTP, scheduling, the stub hop).",
    "- Both sides run ONNX Runtime's default 2-thread pool on a 2-core machine that other jobs share; "
    "under their load that pool's speed swings by 3x (a plain ONNX Runtime session on this graph at "
    "batch 8: 11.2 ms with 2 threads vs 5.6 ms with 1 at one moment; later 3.1 vs 6.1 ms inside the stub "
    "and 3.6 vs 7.5 ms outside it). A run under heavy load can then show the served model *faster* than "
    "the in-process one at batch 8; compare runs with a low load average.",
]


if __name__ == "__main__":
    sys.exit(main())
