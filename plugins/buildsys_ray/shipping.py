"""The driver's side of moving files through the shared store.

A Ray task cannot read the driver's work folder: before a node is submitted, its inputs (blobs
of the driver's cache) and the model's source files are uploaded to the shared store (once per
build, and only when missing there), and the job the task receives names them by sha256. After
the task, its outputs are downloaded into the job's ``out/`` folder, each verified against the
sha256 and size the task reported, so the driver commits exactly what it checked.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path, PurePosixPath

from buildsys import FileRecord, Job, JobInput, JobSpec, SharedStore, VerifyError


def remote_job(driver, job: Job, shipped: set[str]) -> dict:
    """The job a Ray task runs (``JobSpec`` as JSON): every local path replaced by blobs."""
    spec = JobSpec.read(job.job_file)
    store: SharedStore = driver.shared
    inputs = tuple(_ship_input(store, item, shipped) for item in spec.inputs)
    files, root = driver.source_files()
    for _, path, sha, size in files:
        _ship(store, path, sha, size, shipped)
    source = replace(spec.source, root=root, files=tuple(FileRecord(name, sha, size) for name, _, sha, size in files))
    return replace(spec, inputs=inputs, source=source, out_dir=None).to_json()  # out_dir: chosen on the node


def _ship_input(store: SharedStore, item: JobInput, shipped: set[str]) -> JobInput:
    if item.is_source:
        return item  # the model source: nothing stored
    for f in item.files:
        _ship(store, Path(item.directory) / f.name, f.sha256, f.size, shipped)
    return replace(item, directory=None)


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
