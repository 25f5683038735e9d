"""A 200 MB artifact through each registry: streamed (peak RSS far below its size), a publish
killed midway leaves no version, and the pulled bytes match."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

SIZE = 200 * 1000 * 1000
MAX_GROWTH_MB = 48  # a streamed transfer holds a few MiB of buffers; a buffered one, the whole 200 MB

TRANSFER = """
import json, resource, sys, time
from pathlib import Path
from buildsys import plugins
from buildsys.registry import ArtifactRef, open_registry

url, op, directory, dest = sys.argv[1:]
registry = open_registry(plugins.Catalog.collect(plugins.load()), url)
registry.list("big")  # imports the client and connects, before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("started", flush=True)
start = time.perf_counter()
if op == "publish":
    registry.publish(Path(directory))
else:
    registry.pull(ArtifactRef("big", "1.0.0", "blob"), Path(dest))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": time.perf_counter() - start, "growth_mb": (peak - before) / 1024}), flush=True)
"""


def make_big_target(root: Path, size: int = SIZE) -> tuple[Path, str]:
    """A built-looking target directory holding one ``size``-byte file; returns it and the file's sha256."""
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
    return directory, digest.hexdigest()


@pytest.fixture(scope="module")
def big_target(tmp_path_factory):
    return make_big_target(tmp_path_factory.mktemp("big"))


def transfer(url: str, op: str, directory: Path, dest: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", TRANSFER, url, op, str(directory), str(dest)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def kill_midway(url: str, directory: Path) -> None:
    """Start a publish and SIGKILL it once it has read a quarter of the file for the upload
    (after reading all of it once to check its checksum)."""
    proc = subprocess.Popen([sys.executable, "-c", TRANSFER, url, "publish", str(directory), "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and _bytes_read(proc.pid) < SIZE * 1.25:
            time.sleep(0.01)
        assert proc.poll() is None, "the publish finished before it could be interrupted"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _bytes_read(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


@pytest.fixture(params=["file", "oci", "mlflow"])
def big_registry(request, tmp_path):
    if request.param == "file":
        yield f"file:{tmp_path / 'registry'}"
        return
    if request.param == "oci":
        server = request.getfixturevalue("oci_server")
        yield f"oci://{server.address}/big/t{uuid.uuid4().hex[:8]}"
        return
    server = request.getfixturevalue("mlflow_server")
    yield server.url + "?experiment=big"
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=f"http://{server.address}").delete_registered_model("big")


def test_200mb_artifact_is_streamed_and_an_interrupted_publish_leaves_no_version(big_registry, big_target, tmp_path):
    from buildsys import plugins
    from buildsys.registry import ArtifactRef, open_registry

    directory, sha256 = big_target
    registry = open_registry(plugins.Catalog.collect(plugins.load()), big_registry)
    ref = ArtifactRef("big", "1.0.0", "blob")
    if not big_registry.startswith("file:"):  # a local copy is one sendfile: nothing to interrupt midway
        kill_midway(big_registry, directory)
        assert not registry.exists(ref) and registry.list("big") == [], "a killed publish left a version"

    published = transfer(big_registry, "publish", directory, tmp_path / "unused")
    assert registry.exists(ref)
    pulled = transfer(big_registry, "pull", directory, tmp_path / "pulled")
    got = tmp_path / "pulled" / "blob" / "big-1.0.0-blob-fp32-any.bin"
    assert got.stat().st_size == SIZE and _sha256(got) == sha256
    print(f"{big_registry}: publish {published}, pull {pulled}")
    for what, result in (("publish", published), ("pull", pulled)):
        assert result["growth_mb"] < MAX_GROWTH_MB, f"{what} grew RSS by {result['growth_mb']:.0f} MB for 200 MB"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
