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
from .errors import ManifestError, NotBuilt, VerifyError
from .fsutil import atomic_write, check_safe_name, replace_dir, staging_dir
from .hashing import canonical, sha256_file, sha256_text
from .records import BUILT_ON, FileRecord
from .specs import InputArtifact

ARTIFACT_JSON = "artifact.json"
ARTIFACT_SCHEMA = 1
#: The artifact's provenance (an in-toto statement in a DSSE envelope, signed or not), beside
#: artifact.json: about the artifact, so outside its digest; checked by its signature and subject.
PROVENANCE = "provenance.json"


def artifact_digest(record: dict) -> str:
    """The one digest of an artifact: ``"sha256:<hex>"`` over the canonical JSON of its
    ``artifact.json`` record, which lists every file's sha256, so it covers every byte of the
    artifact and every value of its metadata (hardware tag, precision, validation, chain).

    Computed from the parsed record (the file's whitespace and key order do not matter), as
    read back from disk or as written (``files`` included). The lock, every registry and the
    signed provenance record it; ``verify``, ``publish`` and ``pull`` check it."""
    return "sha256:" + sha256_text(canonical(record))


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
    validation = _validation_record(graph, settled, target)
    if entry.meta.get(BUILT_ON):  # the machine an executor built the final node on, if elsewhere
        host = dict(host, facts=dict(host.get("facts", {}), **{BUILT_ON: entry.meta[BUILT_ON]}))
    return {
        "schema": ARTIFACT_SCHEMA, "name": manifest.name, "version": manifest.version, "target": target,
        "kind": final.kind, "format": spec.format, "precision": final.precision,
        "hardware": final.hardware, "deterministic": final.deterministic,
        "signature": {"inputs": [i.model_dump(mode="json") for i in manifest.model.inputs],
                      "dims": {k: v.model_dump(mode="json", exclude_none=True) for k, v in manifest.model.dims.items()},
                      "outputs": entry.meta.get("outputs") or _outputs_seen(validation)},
        "runtime": runtime, "chain": [_chain_item(n, settled) for n in graph.chain(target)], "meta": meta,
        "validation": validation, "host": host, "buildsys": version,
        **({"runtimes": dict(spec.runtimes)} if spec.runtimes else {}),
    }


def runtime_mismatches(record: dict) -> list[str]:
    """One line per runtime the artifact was built for (its target's ``runtimes:``) whose
    installed version here is outside that range (a runtime not installed here is not checked)."""
    from importlib.metadata import PackageNotFoundError, version as installed_version

    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    problems = []
    for name, spec in sorted((record.get("runtimes") or {}).items()):
        try:
            here = installed_version(name)
            admitted = SpecifierSet(spec).contains(here, prereleases=True)
        except (PackageNotFoundError, InvalidSpecifier, ValueError):
            continue
        if not admitted:
            problems.append(f"built for {name} {spec}; this machine has {name} {here}")
    return problems


def _outputs_seen(validation: dict) -> list[dict] | None:
    """The outputs' names, dtypes and shapes as validation saw the artifact produce them (None
    when it was not validated here, or by a cached validation from before they were recorded)."""
    outputs = validation.get("outputs") or []
    if not outputs or any("dtype" not in o for o in outputs):
        return None
    return [{"name": o["name"], "dtype": o["dtype"], "shape": o["shape"]} for o in outputs]


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


def with_files(record: dict, entry: Entry, names: dict[str, str]) -> dict:
    """The complete artifact.json: ``record`` plus the files as the directory holds them."""
    primary = names.get(primary_name(entry) or "", None)
    files = [dict(f.to_json(), role="primary" if f.name == primary else "data") for f in final_files(entry, names)]
    return dict(record, files=files)


@dataclass
class ArtifactWriter:
    """Writes one target's directory from its final cache entry."""

    store: Store
    out_root: Path

    def write(self, manifest, target: str, entry: Entry, record: dict, names: dict[str, str],
              provenance: dict | None = None) -> Path:
        """Make ``target``'s directory hold ``entry``'s files (renamed per ``names``) and
        ``record`` (complete, from ``with_files``) as artifact.json, unless it already does,
        byte for byte. ``provenance`` (the unsigned statement's envelope) is written with a new
        directory; a current directory keeps the provenance it has (it may be signed)."""
        final = target_dir(self.out_root, manifest.name, manifest.version, target)
        if self.current(final, record):
            return final
        staged = staging_dir(final.parent, target)
        self.store.materialize(entry, staged, names)
        atomic_write(staged / ARTIFACT_JSON, json.dumps(record, indent=2, sort_keys=True) + "\n")
        if provenance is not None:
            atomic_write(staged / PROVENANCE, json.dumps(provenance, indent=1, sort_keys=True) + "\n")
        replace_dir(staged, final)
        return final

    def current(self, final: Path, record: dict) -> bool:
        """True if ``final`` holds exactly ``record`` and files that hash to what it lists
        (hashes remembered by inode, size, mtime and ctime: an edit that restores the mtime
        still changes the ctime), and nothing else but its provenance."""
        try:
            if json.loads((final / ARTIFACT_JSON).read_text()) != record:
                return False
        except (OSError, ValueError):
            return False
        return not check_files(final, record["files"], digest=self.store.file_digest)


OWNER = ".manifest"  # in <out>/<name>/<version>/: which manifest's artifacts these are


def claim(out_root: Path, manifest) -> None:
    """Record that ``<out>/<name>/<version>/`` holds ``manifest``'s artifacts, refusing when it
    holds another manifest's (two manifests with one name and version would overwrite each
    other's artifacts, and ``inspect`` would show one's as the other's)."""
    check_owner(out_root, manifest)
    marker = target_dir(out_root, manifest.name, manifest.version, "x").parent / OWNER
    if not marker.is_file():
        atomic_write(marker, str(manifest.path.resolve()) + "\n")


def check_owner(out_root: Path, manifest) -> None:
    """Raise ``ManifestError`` if ``<out>/<name>/<version>/`` holds another manifest's artifacts
    (one that still exists: a manifest that was moved gives its folder up)."""
    marker = target_dir(out_root, manifest.name, manifest.version, "x").parent / OWNER
    try:
        owner = Path(marker.read_text().strip())
    except (FileNotFoundError, NotADirectoryError):
        return
    mine = manifest.path.resolve()
    if owner != mine and owner.is_file():
        raise ManifestError(f"{marker.parent} holds the artifacts of another manifest named {manifest.name} "
                            f"{manifest.version}: {owner}", where=manifest.where("name"),
                            hint="two manifests with one name and version would overwrite each other's artifacts: "
                                 f"change the name or version of one (or delete {marker} if {owner.name} is obsolete)")
    if owner != mine:
        atomic_write(marker, str(mine) + "\n")  # the other manifest is gone: this one takes over


def built_records(out_root: Path, manifest, targets: list[str] | None = None) -> dict[str, dict | None]:
    """``{target: its artifact.json record}`` for ``targets`` (default: all of the manifest's),
    None for a target not built. The one reader ``inspect``, ``report`` and ``bench`` share."""
    check_owner(out_root, manifest)
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
        raise NotBuilt(f"not built: no {ARTIFACT_JSON} in {directory}",
                       hint="build the target first (or point --out / [build] out at where it was built)") from None
    except ValueError as exc:
        raise VerifyError(f"{directory / ARTIFACT_JSON} is not valid JSON: {exc}") from None


def check_files(directory: Path, files: list[dict], digest=sha256_file) -> list[str]:
    """Re-hash every file (with ``digest(path)``); return one line per mismatch (missing,
    changed, unexpected)."""
    directory = Path(directory)
    problems = []
    for f in files:
        path = directory / f["name"]
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        actual = digest(path)
        if actual != f["sha256"]:
            problems.append(f"{path}: sha256 {actual[:12]}… != recorded {f['sha256'][:12]}…")
    listed = {f["name"] for f in files} | {ARTIFACT_JSON, PROVENANCE}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.relative_to(directory).as_posix() not in listed:
            problems.append(f"{path}: not recorded in {ARTIFACT_JSON}")
    return problems
