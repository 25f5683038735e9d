"""The driver's side of moving files through the shared store.

A Ray task cannot read the driver's work folder: before a node is submitted, its inputs (blobs
of the driver's cache) and the model's source files are uploaded to the shared store (once per
build, and only when missing there), and the job the task receives names them by sha256. After
the task, its outputs are downloaded into the job's ``out/`` folder, each verified against the
sha256 and size the task reported, so the driver commits exactly what it checked.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from buildsys import Job, SharedStore, VerifyError


def remote_job(driver, job: Job, shipped: set[str]) -> dict:
    """The job record a Ray task runs: ``job.json`` with every local path replaced by blobs."""
    record = json.loads(job.job_file.read_text())
    store: SharedStore = driver.shared
    record["inputs"] = [_ship_input(store, item, shipped) for item in record["inputs"]]
    files, root = driver.source_files()
    for _, path, sha, size in files:
        _ship(store, path, sha, size, shipped)
    record["source"] = dict(record["source"], root=root,
                            files=[{"name": name, "sha256": sha, "size": size} for name, _, sha, size in files])
    record["out_dir"] = None  # chosen on the node
    return record


def _ship_input(store: SharedStore, item: dict, shipped: set[str]) -> dict:
    if not item.get("directory"):
        return item  # the model source: nothing stored
    directory = Path(item["directory"])
    for f in item["records"]:
        _ship(store, directory / f["name"], f["sha256"], f["size"], shipped)
    return dict(item, directory=None)


def _ship(store: SharedStore, path: Path, sha: str, size: int, shipped: set[str]) -> None:
    if sha not in shipped:
        store.upload(path, sha, size)  # a no-op when the shared store has it already
        shipped.add(sha)


def fetch_outputs(store: SharedStore, files: list[dict], out_dir: Path) -> None:
    """Download a task's outputs into ``out_dir``, verifying each; raise ``VerifyError``."""
    for f in files:
        name = PurePosixPath(f["name"])
        if name.is_absolute() or ".." in name.parts or not name.parts:
            raise VerifyError(f"the Ray task reported an unsafe output name {f['name']!r}")
        if f["uri"] != store.blob_uri(f["sha256"]):
            raise VerifyError(f"output {f['name']} was reported at {f['uri']}, outside the shared store "
                              f"{store.url}", hint="every node must use the build's --store")
        if not store.download(f["sha256"], f["size"], out_dir / name):
            raise VerifyError(f"output {f['name']} is missing from the shared store at {f['uri']}",
                              hint="the store must be one place every node and the driver reach "
                                   "(a shared mount or an object store), not a local folder on each machine")
