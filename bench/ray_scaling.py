"""N independent slow targets: the local executor (-j 1, -j 2) against Ray on 1 and 2 nodes.

Each target is a ``sim.work`` node (``tests/fixture_plugins/sim_gpu.py``) that sleeps a fixed
time after a shared ``text.normalize`` node, so the ideal wall time is set by how many run at
once: ``-j K`` locally, the logical CPUs (``--cpus`` per node) on Ray. Every build is the real
CLI in a fresh project, cache and shared store, one run each (as the issue asks; the machine is
shared, so read the ratios, not the last digit). A second pass with zero-second targets gives
the scheduling overhead per node: wall time over the number of built nodes.

Ray runs as a loopback cluster (``tests/integration/ray_cluster.py``) started before and
stopped after its builds; its start-up is not in the figures. Usage::

    .venv/bin/python bench/ray_scaling.py [-n 8] [--seconds 1.0] [--cpus 2]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from ray_cluster import LoopbackRayCluster  # noqa: E402

PLUGIN = ["-p", "fixture_plugins.sim_gpu"]


def manifest(n: int, seconds: float) -> str:
    targets = "".join(f"  t{i}: {{format: sim.work, options: {{sim.work: {{seconds: {seconds}, label: t{i}}}}}}}\n"
                      for i in range(n))
    return ("schema: 1\nname: scaling\nversion: 1.0.0\nmodel: {framework: text, entrypoint: model.txt}\n"
            f"targets:\n{targets}")


def run_build(n: int, seconds: float, args: list[str], env: dict) -> float:
    """Wall seconds of one cold ``buildsys build`` in a fresh project (fails loudly)."""
    root = Path(tempfile.mkdtemp(prefix="bs-scaling-"))
    try:
        (root / "model.txt").write_text("Hello, world.\n")
        (root / "manifest.yaml").write_text(manifest(n, seconds))
        env = {**os.environ, **env, "BUILDSYS_OUT": str(root / "out"), "BUILDSYS_CACHE_DIR": str(root / "cache"),
               "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
        argv = [sys.executable, "-m", "buildsys", *PLUGIN, "build", "manifest.yaml", "-q",
                *[a.replace("{store}", f"file://{root}/shared") for a in args]]
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
        return wall
    finally:
        shutil.rmtree(root, ignore_errors=True)


def ray_runs(nodes: int, cpus: int, n: int, seconds: float) -> tuple[float, float]:
    with LoopbackRayCluster([{} for _ in range(nodes)], num_cpus=cpus, num_gpus=0) as cluster:
        args = ["--executor", "ray", "--address", cluster.address, "--store", "{store}"]
        return run_build(n, seconds, args, cluster.env), run_build(n, 0.0, args, cluster.env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=8, help="independent slow targets")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long each target's stage takes")
    parser.add_argument("--cpus", type=int, default=2, help="logical CPUs per Ray node (tasks at once)")
    opts = parser.parse_args()
    n, s = opts.n, opts.seconds
    rows = []
    for jobs in (1, 2):
        rows.append((f"local -j {jobs}", jobs, run_build(n, s, ["-j", str(jobs)], {}),
                     run_build(n, 0.0, ["-j", str(jobs)], {})))
    for nodes in (1, 2):
        rows.append((f"ray, {nodes} node{'s' * (nodes > 1)}", nodes * opts.cpus, *ray_runs(nodes, opts.cpus, n, s)))
    base = rows[0][2]
    print(f"{n} independent targets of {s:g} s each (+1 shared normalize node); one cold run per row\n")
    print("| executor | at once | wall (s) | ideal (s) | speed-up vs local -j 1 | overhead / node (s) | zero-work wall (s) | per node, zero work (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, slots, wall, zero in rows:
        ideal = math.ceil(n / slots) * s
        print(f"| {name} | {slots} | {wall:.2f} | {ideal:.2f} | {base / wall:.2f}x | {(wall - ideal) / (n + 1):.2f} "
              f"| {zero:.2f} | {zero / (n + 1):.2f} |")


if __name__ == "__main__":
    main()
