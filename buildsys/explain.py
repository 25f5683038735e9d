"""Why a node will build: its action now against the one the lockfile recorded (``plan
--explain``, ``build --explain``), as ``dvc status`` says what changed.

A node is matched with the lock's by id (same recipe), else by its place in a target's chain
(the n-th node of the same stage), so an option that changes a node's id is still compared with
what it was. Reasons name the option, tool, stage version, hardware, precision, input or model
file that differs; a node whose action is unchanged builds because its cache entry is gone.
"""

from __future__ import annotations

from .lock import lock_path, read


def reasons(project, graph, driver, statuses: dict[str, str]) -> dict[str, list[str]]:
    """``{node id: [reason, ...]}`` for every node whose status is "will build" (ask after
    ``driver.status`` has settled the nodes in graph order)."""
    try:
        lock = read(lock_path(project.manifest.path))
    except Exception as exc:  # an unreadable lock explains nothing; plan/build say why elsewhere
        lock = None
        unreadable = f"the lockfile cannot be read ({exc})"
    else:
        unreadable = "no lockfile yet: nothing was built from this manifest"
    found: dict[str, list[str]] = {}
    for node_id, status in statuses.items():
        if status != "will build":
            continue
        if lock is None:
            found[node_id] = [unreadable]
            continue
        node = graph.nodes[node_id]
        old = lock["nodes"].get(node_id) or _counterpart(node, graph, lock)
        found[node_id] = (_differences(node, old, project, driver, graph, lock, statuses) if old is not None
                          else [f"new: no {node.stage} node for target(s) {', '.join(_targets_of(graph, node_id))} "
                                "in the lockfile"])
    return found


def _targets_of(graph, node_id: str) -> list[str]:
    return [t for t in graph.targets if any(n.id == node_id for n in graph.needs(t))]


def _counterpart(node, graph, lock: dict) -> dict | None:
    """The lock's node in the same place: the n-th ``node.stage`` node of a target's chain."""
    for target in _targets_of(graph, node.id):
        locked = lock["targets"].get(target)
        if not locked:
            continue
        mine = [n.id for n in graph.needs(target) if n.stage == node.stage]
        theirs = [i for i in locked.get("nodes", []) if lock["nodes"].get(i, {}).get("stage") == node.stage]
        index = mine.index(node.id)
        if index < len(theirs):
            return lock["nodes"][theirs[index]]
    return None


def _differences(node, old: dict, project, driver, graph, lock: dict, statuses: dict) -> list[str]:
    action = driver.settled.actions.get(node.id)
    new = action.to_json() if action is not None else {
        "stage": node.stage, "stage_version": node.stage_version, "options": node.options,
        "hardware": node.hardware, "precision": node.precision}
    found = []
    if new.get("stage_version") != old.get("stage_version"):
        found.append(f"stage {node.stage} version {old.get('stage_version')} -> {new.get('stage_version')} "
                     "(its plugin builds differently now)")
    found += [f"option {node.stage}.{key}: {_show(a)} -> {_show(b)}"
              for key, a, b in _changed(_flat(old.get("options") or {}), _flat(new.get("options") or {}))]
    if "tools" in new:
        found += [f"tool {name}: {a or 'absent'} -> {b or 'absent'}"
                  for name, a, b in _changed(old.get("tools") or {}, new["tools"])]
    for key in ("hardware", "precision"):
        if new.get(key) != old.get(key):
            found.append(f"{key} {old.get(key)} -> {new.get(key)}")
    found += _input_reasons(node, old, new, project, graph, lock, statuses)
    if not found:
        found.append("its action is unchanged, but the cache has no entry for it (cleared, gc'd or damaged)")
    return found


def _input_reasons(node, old: dict, new: dict, project, graph, lock: dict, statuses: dict) -> list[str]:
    found = []
    old_inputs = old.get("inputs") or []
    for index, input_id in enumerate(node.inputs):
        upstream = graph.nodes[input_id]
        if statuses.get(input_id) == "will build":
            found.append(f"input {input_id} will build")
        elif "inputs" in new and (index >= len(old_inputs) or new["inputs"][index] != old_inputs[index]):
            found.append(_source_changes(project, lock) if upstream.is_source else f"input {input_id} changed")
    return found


def _source_changes(project, lock: dict) -> str:
    """Which model files or source tool versions differ from the lock's record of the source (or
    that the model block does)."""
    source = next((n for n in lock["nodes"].values() if n.get("stage") == "source"), {})
    old = source.get("files")
    if old is None:
        return "the model's source changed (the lockfile predates per-file records)"
    before = {f["name"]: f["sha256"] for f in old}
    after = {f["name"]: f["sha256"] for f in project.source_files()}
    parts = [f"{name} edited" for name in sorted(before.keys() & after.keys()) if before[name] != after[name]]
    parts += [f"{name} added" for name in sorted(after.keys() - before.keys())]
    parts += [f"{name} no longer used" for name in sorted(before.keys() - after.keys())]
    locked = source.get("tools") or {}
    parts += [f"{tool} {locked[tool]} -> {version}" for tool, version in sorted(project.source_tools().items())
              if tool in locked and locked[tool] != version]
    return "the model's source changed: " + (", ".join(parts[:6]) if parts else "the manifest's model block")


def _flat(options: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in options.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _changed(old: dict, new: dict) -> list[tuple[str, object, object]]:
    return [(key, old.get(key), new.get(key)) for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)]


def _show(value) -> str:
    return "unset" if value is None else str(value)
