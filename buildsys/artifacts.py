"""Artifact directories: ``<out>/<name>/<version>/<target>/`` with files and ``artifact.json``.

File names carry their tags, wheel-style::

    <name>-<version>-<format>-<precision>[-<tooltag>]-<hardware>.<ext>
    resnet18-1.2.0-tensorrt-fp16-trtrtx1.7-cuda_sm86.sm89.plan

Only the stage's primary file is renamed; companions (ONNX external data) keep their names so
references between files stay valid. A directory is staged beside its final place and swapped
in whole, so a reader never sees half of one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .cache import Entry, Store
from .errors import VerifyError
from .fsutil import atomic_write, check_safe_name, replace_dir, staging_dir
from .hashing import sha256_file
from .records import BUILT_ON, FileRecord
from .specs import InputArtifact

ARTIFACT_JSON = "artifact.json"
ARTIFACT_SCHEMA = 1


def target_dir(out_root: Path, name: str, version: str, target: str) -> Path:
    for value, what in ((name, "name"), (version, "version"), (target, "target")):
        check_safe_name(value, what)
    return Path(out_root) / name / version / target


def wheel_name(name: str, version: str, fmt: str, precision: str, hardware: str,
               suffix: str, tool_tag: str | None = None) -> str:
    parts = [name, version, fmt, precision, tool_tag, hardware]
    return "-".join(p.replace("-", "_") for p in parts if p) + suffix


def primary_name(entry: Entry) -> str | None:
    name = entry.meta.get("primary")
    if name is None and len(entry.files) == 1:
        name = entry.files[0].name
    return name


def _suffix(filename: str) -> str:
    name = Path(filename).name
    return name[name.index("."):] if "." in name else ""


def file_names(manifest, target: str, entry: Entry, hardware: str) -> dict[str, str]:
    """Store name -> artifact name for ``target``'s final entry: the primary file gets its
    wheel-style name; companions keep theirs (references between files stay valid)."""
    primary = primary_name(entry)
    if primary is None:
        return {}
    spec = manifest.targets[target]
    return {primary: wheel_name(manifest.name, manifest.version, spec.format, spec.precision,
                                hardware, _suffix(primary), entry.meta.get("tool_tag"))}


def final_files(entry: Entry, names: dict[str, str]) -> list[FileRecord]:
    """The entry's files as the artifact directory holds them (renamed per ``names``)."""
    return [FileRecord(names.get(f.name, f.name), f.sha256, f.size) for f in entry.files]


def target_record(manifest, graph, target: str, settled, *, runtime: dict, host: dict, version: str) -> dict:
    """The artifact.json content for ``target`` (its ``files`` are added when written).

    ``settled`` is the build's ``Settled`` record; ``runtime`` the final stage's tool versions,
    ``host`` the build host's description, ``version`` buildsys's."""
    spec = manifest.targets[target]
    final = graph.nodes[graph.targets[target]]
    entry = settled.entries[final.id]
    meta = {k: v for k, v in entry.meta.items() if k not in ("primary", BUILT_ON)}
    if entry.meta.get(BUILT_ON):  # the machine an executor built the final node on, if elsewhere
        host = dict(host, facts=dict(host.get("facts", {}), **{BUILT_ON: entry.meta[BUILT_ON]}))
    return {
        "schema": ARTIFACT_SCHEMA, "name": manifest.name, "version": manifest.version, "target": target,
        "kind": final.kind, "format": spec.format, "precision": final.precision,
        "hardware": final.hardware, "deterministic": final.deterministic,
        "signature": {"inputs": [i.model_dump(mode="json") for i in manifest.model.inputs],
                      "dims": {k: v.model_dump(mode="json", exclude_none=True) for k, v in manifest.model.dims.items()},
                      "outputs": entry.meta.get("outputs")},
        "runtime": runtime, "chain": [_chain_item(n, settled) for n in graph.chain(target)], "meta": meta,
        "validation": _validation_record(graph, settled, target), "host": host, "buildsys": version,
    }


def _validation_record(graph, settled, target: str) -> dict:
    if target in graph.validations:
        entry = settled.entries[graph.validations[target]]
        return dict(entry.meta.get("report", {}), status="passed", action_key=entry.key)
    return {"status": "not run", "reason": graph.unvalidated.get(target, "not planned")}


def _chain_item(node, settled) -> dict:
    if node.is_source:
        return {"node": node.id, "stage": node.stage, "action_key": settled.digests[node.id]}
    entry = settled.entries[node.id]
    return {"node": node.id, "stage": node.stage, "stage_version": node.stage_version,
            "action_key": entry.key, "options": node.options, "hardware": node.hardware,
            "precision": node.precision, "deterministic": node.deterministic,
            "seconds": round(entry.seconds, 3),
            **({BUILT_ON: entry.meta[BUILT_ON]} if entry.meta.get(BUILT_ON) else {})}


@dataclass
class ArtifactWriter:
    """Writes one target's directory from its final cache entry."""

    store: Store
    out_root: Path

    def write(self, manifest, target: str, entry: Entry, record: dict, names: dict[str, str]) -> Path:
        """Materialise ``entry`` for ``target`` (files renamed per ``names``, from ``file_names``)
        with ``record`` as artifact.json, unless the directory already holds it."""
        final = target_dir(self.out_root, manifest.name, manifest.version, target)
        if self._up_to_date(final, record):
            return final
        staged = staging_dir(final.parent, target)
        files = self.store.materialize(entry, staged, names)
        primary = names.get(primary_name(entry) or "", None)
        record = dict(record, files=[dict(f.to_json(), role="primary" if f.name == primary else "data")
                                     for f in files])
        atomic_write(staged / ARTIFACT_JSON, json.dumps(record, indent=2, sort_keys=True) + "\n")
        replace_dir(staged, final)
        return final

    def _up_to_date(self, final: Path, record: dict) -> bool:
        """True if ``final`` holds this exact chain and its files look untouched (size, mtime)."""
        meta_path = final / ARTIFACT_JSON
        try:
            existing = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return False
        if [c["action_key"] for c in existing.get("chain", [])] != [c["action_key"] for c in record["chain"]]:
            return False
        written = meta_path.stat().st_mtime_ns
        for f in existing.get("files", []):
            path = final / f["name"]
            if not path.is_file() or path.stat().st_size != f["size"] or path.stat().st_mtime_ns > written:
                return False
        return True


def built_records(out_root: Path, manifest, targets: list[str] | None = None) -> dict[str, dict | None]:
    """``{target: its artifact.json record}`` for ``targets`` (default: all of the manifest's),
    None for a target not built. The one reader ``inspect``, ``report`` and ``bench`` share."""
    records = {}
    for name in targets or list(manifest.targets):
        directory = target_dir(out_root, manifest.name, manifest.version, name)
        records[name] = read_record(directory) if (directory / ARTIFACT_JSON).is_file() else None
    return records


def input_artifact(directory: Path, record: dict) -> InputArtifact:
    """A built target as a runner loads it: its files in ``directory``, its stages' metadata."""
    directory = Path(directory)
    files = {f["name"]: directory / f["name"] for f in record["files"]}
    primary = next((f["name"] for f in record["files"] if f.get("role") == "primary"), None)
    return InputArtifact(kind=record["kind"], precision=record["precision"], hardware=record["hardware"],
                         directory=directory, files=files, meta=dict(record.get("meta") or {}, primary=primary))


def read_record(directory: Path) -> dict:
    try:
        return json.loads((Path(directory) / ARTIFACT_JSON).read_text())
    except FileNotFoundError:
        raise VerifyError(f"no {ARTIFACT_JSON} in {directory}", hint="build the target first") from None
    except ValueError as exc:
        raise VerifyError(f"{directory / ARTIFACT_JSON} is not valid JSON: {exc}") from None


def check_files(directory: Path, files: list[dict]) -> list[str]:
    """Re-hash every file; return one line per mismatch (missing, changed, unexpected)."""
    directory = Path(directory)
    problems = []
    for f in files:
        path = directory / f["name"]
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        actual = sha256_file(path)
        if actual != f["sha256"]:
            problems.append(f"{path}: sha256 {actual[:12]}… != recorded {f['sha256'][:12]}…")
    listed = {f["name"] for f in files} | {ARTIFACT_JSON}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.relative_to(directory).as_posix() not in listed:
            problems.append(f"{path}: not recorded in {ARTIFACT_JSON}")
    return problems


def records_of(files: list[dict]) -> list[FileRecord]:
    return [FileRecord(f["name"], f["sha256"], f["size"]) for f in files]
