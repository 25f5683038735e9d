"""Benchmark: what the integrity checks cost, side by side with the code before them, in one run.

Not a test. Two source trees — this checkout ("after") and a git revision before the integrity
work ("before", default 07f7abc), checked out into a temporary worktree and run with PYTHONPATH
pointing at it — each build the same two projects once:

- ``small``: the 7-target text manifest of ``bench/noop.py`` (the no-op rebuild figure);
- ``large``: one text target whose artifact is a ~200 MB file (``--size-mb``).

Then, interleaved (before, after, before, after ...) so drift hits both alike, each side times
``buildsys build`` (no-op) on both, ``verify`` on the large one, ``publish`` of the large target
to a fresh ``file:`` registry and ``pull`` back from it. Prints medians, the after/before ratio
and writes ``bench/results/integrity.md``.

    python bench/integrity.py                      # 5 rounds, 200 MB
    python bench/integrity.py --runs 3 --size-mb 50
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from noop import MANIFEST as SMALL_MANIFEST, MODEL_TEXT  # noqa: E402

LARGE_MANIFEST = """\
schema: 1
name: large
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  normalized: {format: text}
"""
CASES = ("no-op rebuild, 7 small targets", "no-op rebuild, 200 MB target", "verify, 200 MB target",
         "publish, 200 MB target", "pull, 200 MB target")


def cli(tree: Path, project: Path, *args: str) -> float:
    """Seconds one ``python -m buildsys ARGS`` took in ``project`` with ``tree`` on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{tree / 'plugins'}",
               BUILDSYS_OUT=str(project / "artifacts"), BUILDSYS_CACHE_DIR=str(project / "artifacts" / ".cache"))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "buildsys", *args], cwd=project, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{tree.name}: buildsys {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def make_projects(root: Path, size_mb: int) -> tuple[Path, Path]:
    small, large = root / "small", root / "large"
    for folder, manifest in ((small, SMALL_MANIFEST), (large, LARGE_MANIFEST)):
        folder.mkdir(parents=True)
        (folder / "manifest.yaml").write_text(manifest)
    (small / "model.txt").write_text(MODEL_TEXT)
    line = "The quick brown fox jumps over the lazy dog, again and again.\n"
    with open(large / "model.txt", "w") as f:
        f.write(line * (size_mb * (1 << 20) // len(line)))
    return small, large


def rounds(trees: dict[str, Path], projects: dict[str, tuple[Path, Path]], runs: int) -> dict:
    times = {(case, side): [] for case in CASES for side in trees}
    for n in range(runs):
        for side, tree in trees.items():
            small, large = projects[side]
            times[(CASES[0], side)].append(cli(tree, small, "build", "manifest.yaml"))
            times[(CASES[1], side)].append(cli(tree, large, "build", "manifest.yaml"))
            times[(CASES[2], side)].append(cli(tree, large, "verify", "manifest.yaml"))
            registry = large / f"registry-{n}"
            times[(CASES[3], side)].append(cli(tree, large, "publish", "manifest.yaml", "--to", f"file:{registry}"))
            times[(CASES[4], side)].append(cli(tree, large, "pull", "large", "1.0.0", "normalized", "--from",
                                                f"file:{registry}", "--to", str(large / f"pulled-{n}")))
            shutil.rmtree(registry)
            shutil.rmtree(large / f"pulled-{n}")
    return times


def table(times: dict, runs: int, size_mb: int, before: str) -> str:
    lines = [f"# Integrity checks: cost side by side ({platform.node() or 'host'}, {os.cpu_count()} CPUs, "
             f"python {platform.python_version()})", "",
             f"`python bench/integrity.py --runs {runs} --size-mb {size_mb}`: before = `{before}` (main before the "
             "integrity work), after = this checkout; every case run interleaved, medians of "
             f"{runs} rounds (the first build of each project is not timed).", "",
             "| case | before (s) | after (s) | after / before |", "|---|---:|---:|---:|"]
    for case in CASES:
        b, a = statistics.median(times[(case, "before")]), statistics.median(times[(case, "after")])
        lines.append(f"| {case.replace('200 MB', f'{size_mb} MB')} | {b:.3f} | {a:.3f} | {a / b:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="07f7abc", help="git revision before the integrity work")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "integrity.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="buildsys-integrity-") as tmp:
        tmp = Path(tmp)
        before_tree = tmp / "before-tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before_tree), args.before],
                       check=True, capture_output=True)
        try:
            trees = {"before": before_tree, "after": REPO}
            projects = {side: make_projects(tmp / side, args.size_mb) for side in trees}
            for side, tree in trees.items():  # first builds, not timed; then one no-op to settle
                for project in projects[side]:
                    cli(tree, project, "build", "manifest.yaml")
                    cli(tree, project, "build", "manifest.yaml")
            text = table(rounds(trees, projects, args.runs), args.runs, args.size_mb, args.before)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before_tree)],
                           capture_output=True)
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
