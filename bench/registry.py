"""Benchmark: publish and pull throughput of a 200 MB artifact to each registry on loopback,
and what checksum verification costs.

Not a test. Starts a file registry (a temp folder), Debian's ``docker-registry`` and an
``mlflow server`` (sqlite, no auth) on 127.0.0.1, publishes one 200 MB target to each and
pulls it back, once, in this process (client imports and connections warmed up first). The
verification columns time the same passes in isolation: re-hashing the local tree before a
publish (``local_tree``) and re-hashing the pulled tree before it is swapped in (``check_files``);
the OCI client also hashes each blob as it streams in, which is inside its pull time.

    python bench/registry.py                    # prints a table, writes bench/results/registry.md
    python bench/registry.py --size-mb 50 --out -
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from buildsys import ArtifactRef, local_tree  # noqa: E402
from buildsys import plugins as plugin_manager  # noqa: E402
from buildsys.artifacts import check_files, read_record  # noqa: E402
from buildsys.registry import open_registry  # noqa: E402


def make_target(root: Path, size: int) -> Path:
    directory = root / "big" / "1.0.0" / "blob"
    directory.mkdir(parents=True)
    name = "big-1.0.0-blob-fp32-any.bin"
    block, digest, left = os.urandom(1 << 20), hashlib.sha256(), size
    with open(directory / name, "wb") as f:
        while left:
            chunk = block[:min(left, len(block))]
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    record = {"name": "big", "version": "1.0.0", "target": "blob", "kind": "blob", "format": "blob",
              "precision": "fp32", "hardware": "any", "buildsys": "0.1.0", "chain": [],
              "files": [{"name": name, "sha256": digest.hexdigest(), "size": size, "role": "primary"}]}
    (directory / "artifact.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return directory


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(name: str, url: str, directory: Path, work: Path, size: int) -> dict:
    registry = open_registry(plugin_manager.Catalog.collect(plugin_manager.load()), url)
    registry.list("big")  # import the client, open a connection
    publish = timed(lambda: registry.publish(directory))
    dest = work / f"pulled-{name}"
    pull = timed(lambda: registry.pull(ArtifactRef("big", "1.0.0", "blob"), dest))
    hash_local = timed(lambda: local_tree(directory))
    pulled = dest / "blob"
    verify_pulled = timed(lambda: check_files(pulled, read_record(pulled)["files"]))
    mb = size / 1e6
    return {"registry": name, "publish_s": publish, "publish_mb_s": mb / publish, "pull_s": pull,
            "pull_mb_s": mb / pull, "hash_before_publish_s": hash_local, "verify_after_pull_s": verify_pulled,
            "verify_share_publish": hash_local / publish, "verify_share_pull": verify_pulled / pull}


def table(rows: list[dict]) -> str:
    lines = ["| registry | publish s | publish MB/s | pull s | pull MB/s | re-hash before publish s (share) "
             "| verify after pull s (share) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['registry']} | {r['publish_s']:.2f} | {r['publish_mb_s']:.0f} | {r['pull_s']:.2f} | "
                     f"{r['pull_mb_s']:.0f} | {r['hash_before_publish_s']:.2f} ({r['verify_share_publish']:.0%}) | "
                     f"{r['verify_after_pull_s']:.2f} ({r['verify_share_pull']:.0%}) |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "registry.md"),
                        help="markdown report ('-' for none)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from buildsys_mlflow.testing import LocalMlflowServer
    from buildsys_oci.testing import LocalOciRegistry

    size = args.size_mb * 1000 * 1000
    with tempfile.TemporaryDirectory(prefix="buildsys-bench-registry-") as tmp:
        work = Path(tmp)
        directory = make_target(work / "build", size)
        sha = timed(lambda: hashlib.sha256(open(directory / read_record(directory)["files"][0]["name"], "rb").read()))
        with LocalOciRegistry(work / "oci") as oci, LocalMlflowServer(work / "mlflow") as mlflow:
            rows = [measure("file", f"file:{work / 'file-registry'}", directory, work, size),
                    measure("oci (docker-registry 2.8, oras)", f"oci://{oci.address}/bench/big", directory, work, size),
                    measure("mlflow (server 3, sqlite)", mlflow.url, directory, work, size)]
    report = table(rows)
    print(report)
    print(f"\nreading and hashing the {args.size_mb} MB file once: {sha:.2f} s ({size / 1e6 / sha:.0f} MB/s)")
    if args.out != "-":
        Path(args.out).write_text(_markdown(report, rows, args.size_mb, sha, size))
        print(f"written to {args.out}")
    return 0


def _markdown(report: str, rows: list[dict], size_mb: int, sha: float, size: int) -> str:
    return f"""# Registry publish/pull throughput (issue 7)

`bench/registry.py`, one run, {date.today()}, this {os.cpu_count()}-core CPU machine, Python
{platform.python_version()}, one {size_mb} MB target (one file + artifact.json), every server on
127.0.0.1 started by the script; the client runs in the benchmark process, imports warmed up.

{report}

"re-hash before publish" is `local_tree` (every file hashed against artifact.json before any
upload, on every registry); "verify after pull" is the re-hash of the pulled tree before it is
swapped into place. Shares are of the publish or pull time they are part of. Reading and hashing
the file once takes {sha:.2f} s here ({size / 1e6 / sha:.0f} MB/s, page cache warm), so a verification
pass costs about that whatever the transport. The OCI pull also hashes each blob while it streams in
(inside its pull time), so it reads the bytes twice; the file registry copies with sendfile.
One run on a shared machine: expect repeated runs to differ by tens of percent.
"""


if __name__ == "__main__":
    sys.exit(main())
