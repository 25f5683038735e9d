"""The lockfile: ``<manifest>.lock`` beside the manifest, TOML, written by ``build`` only.

It records what was built and from what: buildsys, plugin and tool versions; per node the
stage, its version, resolved options, action key, input digests, output files and hardware;
per target its final node and artifact files. Nodes downstream of a nondeterministic stage
(engine builders) are compared by recipe (stage, options, structure), not by content.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from pathlib import Path

import tomli_w

from .artifacts import artifact_digest
from .errors import LockMismatch
from .fsutil import atomic_write

LOCK_SCHEMA = 1


def lock_data(graph, settled, records: dict[str, dict], *, name: str, version: str, manifest: str,
              plugins: dict, tools: dict[str, dict], buildsys: str, source_files: list[dict] | None = None,
              source_tools: dict[str, str] | None = None) -> dict:
    """The lock of a build: every node the built ``records`` (target -> complete artifact.json)
    needed, and per target its final node, its artifact's files, its artifact digest and the
    versions of the tools of the plugins it used (``tools``: target -> {tool: version}); the
    top-level ``tools`` is their union. ``source_files``: the model files the source node's
    digest covers (relative to the manifest), recorded on it, with ``source_tools``: the versions
    of what the source loads the model with, which its digest covers too.

    ``settled`` is the build's ``Settled`` record (digests, actions and entries by node)."""
    nodes = {node.id: node_entry(node, settled, source_files, source_tools)
             for target in records for node in graph.needs(target)}
    targets = {t: {"node": graph.targets[t], "kind": r["kind"], "format": r["format"],
                   "precision": r["precision"], "hardware": r["hardware"], "digest": artifact_digest(r),
                   "tools": dict(sorted(tools.get(t, {}).items())), "nodes": [n.id for n in graph.needs(t)],
                   "files": [{k: f[k] for k in ("name", "sha256", "size")} for f in r["files"]]}
               for t, r in records.items()}
    return {"schema": LOCK_SCHEMA, "buildsys": buildsys, "name": name, "version": version, "manifest": manifest,
            "plugins": plugins, "tools": _all_tools(targets), "targets": dict(sorted(targets.items())),
            "nodes": dict(sorted(nodes.items()))}


def _all_tools(targets: dict) -> dict:
    tools: dict[str, str] = {}
    for entry in targets.values():
        tools.update(entry.get("tools", {}))
    return dict(sorted(tools.items()))


def node_entry(node, settled, source_files: list[dict] | None = None, source_tools: dict | None = None) -> dict:
    """A node as the lock records it: its ``Action`` (the record its action key hashes), the key,
    and what it produced; a source node, the files and tool versions its digest covers."""
    if node.is_source:
        return {"stage": node.stage, "kind": node.kind, "recipe": node.recipe,
                "digest": settled.digests[node.id], "deterministic": True,
                **({"files": [dict(f) for f in source_files]} if source_files is not None else {}),
                **({"tools": dict(sorted(source_tools.items()))} if source_tools else {})}
    entry = settled.entries[node.id]
    return dict(settled.actions[node.id].to_json(), kind=node.kind, deterministic=node.deterministic,
                recipe=node.recipe, action_key=entry.key, digest=entry.digest,
                outputs=[f.to_json() for f in entry.files])


def lock_path(manifest_path: Path) -> Path:
    """``manifests/hello.yaml`` -> ``manifests/hello.lock``."""
    return Path(manifest_path).with_suffix(".lock")


def read(path: Path) -> dict | None:
    """The lockfile's data, None if there is none; ``LockMismatch`` if it is not a lockfile."""
    fix = "delete it and run 'buildsys build' to write a new one"
    try:
        # TOML is UTF-8 whatever the locale, and a lockfile a tool wrote has nothing else.
        data = tomllib.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise LockMismatch(f"lockfile {path} is not UTF-8 text (byte {exc.start}): it is damaged or not a lockfile",
                           hint=fix) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LockMismatch(f"cannot read lockfile {path}: {exc}", hint=fix) from None
    _check_shape(data, path, fix)
    return data


# -- the shape of what read() returns: what build, --locked, --frozen, verify and gc index ------


def _check_shape(data: dict, path: Path, fix: str) -> None:
    """Valid TOML of another shape (``targets = 5``) would crash whatever reads it: refuse it here,
    naming every key that is wrong."""
    schema = data.get("schema")
    if schema != LOCK_SCHEMA or not _is(schema, int):
        raise LockMismatch(f"lockfile {path} has schema {_toml(schema)}, this buildsys writes {LOCK_SCHEMA}",
                           hint=f"{fix}; or upgrade buildsys, if a newer one wrote it")
    problems = _table_problems(data, "targets", _target_problems) + _table_problems(data, "nodes", _node_problems)
    if problems:
        shown = problems[:8] + ([f"and {len(problems) - 8} more"] if len(problems) > 8 else [])
        raise LockMismatch(f"lockfile {path} is not a lockfile this buildsys wrote: {'; '.join(shown)}", hint=fix)


_FILE_FIELDS = {"name": str, "sha256": str, "size": int}
_NODE_FIELDS = {"stage": str, "kind": str, "recipe": str, "digest": str, "action_key": str, "deterministic": bool}
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "a list",
               dict: "a table"}


def _table_problems(data: dict, key: str, entry_problems) -> list[str]:
    """``data[key]``, if there, is a table of tables, each checked by ``entry_problems``."""
    if key not in data:
        return []
    if not _is(data[key], dict):
        return [_wrong(key, data[key], dict)]
    problems = []
    for name, entry in data[key].items():
        where = f"{key}.{_key(name)}"
        problems += entry_problems(entry, where) if _is(entry, dict) else [_wrong(where, entry, dict)]
    return problems


def _target_problems(target: dict, where: str) -> list[str]:
    problems = [f"{where} has no {key}" for key in ("nodes", "files") if key not in target]
    if "nodes" in target:
        problems += _list_problems(target["nodes"], f"{where}.nodes", str)
    if "files" in target:
        problems += _files_problems(target["files"], f"{where}.files")
    return problems


def _node_problems(node: dict, where: str) -> list[str]:
    problems = [_wrong(f"{where}.{key}", node[key], kind) for key, kind in _NODE_FIELDS.items()
                if key in node and not _is(node[key], kind)]
    if "outputs" in node:
        problems += _files_problems(node["outputs"], f"{where}.outputs")
    if "files" in node:
        problems += _list_problems(node["files"], f"{where}.files", dict)
    return problems


def _files_problems(files, where: str) -> list[str]:
    problems = _list_problems(files, where, dict)
    for i, record in enumerate(files if _is(files, list) else []):
        if _is(record, dict):
            problems += [f"{where}[{i}] has no {key}" for key in _FILE_FIELDS if key not in record]
            problems += [_wrong(f"{where}[{i}].{key}", record[key], kind) for key, kind in _FILE_FIELDS.items()
                         if key in record and not _is(record[key], kind)]
    return problems


def _list_problems(value, where: str, item: type) -> list[str]:
    if not _is(value, list):
        return [_wrong(where, value, list)]
    return [_wrong(f"{where}[{i}]", v, item) for i, v in enumerate(value) if not _is(v, item)]


def _is(value, kind: type) -> bool:
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))  # TOML's true is no integer


def _wrong(where: str, value, expected: type) -> str:
    return f"{where} is {_type_name(value)}, expected {_TYPE_NAMES[expected]}"


def _type_name(value) -> str:
    return next((name for kind, name in _TYPE_NAMES.items() if isinstance(value, kind)), "a date or time")


def _key(name: str) -> str:
    """A key as TOML writes it: bare when it can be, quoted otherwise (node ids hold '.' and '#')."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _toml(value) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def dumps(data: dict) -> str:
    header = "# Written by 'buildsys build'. Do not edit: rebuild to update.\n"
    return header + tomli_w.dumps(_strip_none(data))


def write(path: Path, data: dict) -> bool:
    """Write ``data`` if it differs from what is there; return True if the file changed."""
    text = dumps(data)
    try:
        if Path(path).read_text() == text:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, text)
    return True


def _strip_none(value):
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def merge(old: dict | None, new: dict, built_targets: list[str]) -> dict:
    """``new`` plus the targets of ``old`` this build did not touch (with their nodes)."""
    if old is None:
        return new
    merged = dict(new, targets=dict(new["targets"]), nodes=dict(new["nodes"]))
    for target, entry in old.get("targets", {}).items():
        if target not in built_targets and target not in merged["targets"]:
            merged["targets"][target] = entry
            for node_id in entry.get("nodes", []):
                if node_id in old.get("nodes", {}):
                    merged["nodes"].setdefault(node_id, old["nodes"][node_id])
    merged["targets"] = dict(sorted(merged["targets"].items()))
    merged["nodes"] = dict(sorted(merged["nodes"].items()))
    if all("tools" in entry for entry in merged["targets"].values()):  # not a lock of an older buildsys
        merged["tools"] = _all_tools(merged["targets"])
    return merged


def comparable(data: dict) -> dict:
    """The part of a lock that must not change under ``--locked``."""
    nodes = {}
    for node_id, node in data.get("nodes", {}).items():
        keep = ("stage", "stage_version", "options", "hardware", "precision", "recipe")
        if node.get("deterministic", True):
            keep += ("action_key", "digest", "outputs")
        nodes[node_id] = {k: node.get(k) for k in keep}
    targets = {}
    for name, target in data.get("targets", {}).items():
        deterministic = all(data["nodes"].get(n, {}).get("deterministic", True) for n in target.get("nodes", []))
        # the artifact digest covers where and how long it was built: verify checks it, --locked does not
        targets[name] = {k: v for k, v in target.items() if k != "digest" and (deterministic or k != "files")}
    # the tools that matter are each target's (its plugins'): a plugin no node uses changes nothing
    return {"targets": targets, "nodes": nodes}


def diff(old: dict, new: dict, label: str) -> list[str]:
    a = dumps(comparable(old)).splitlines()
    b = dumps(comparable(new)).splitlines()
    return list(difflib.unified_diff(a, b, f"{label} (on disk)", f"{label} (this build)", lineterm="", n=1))
