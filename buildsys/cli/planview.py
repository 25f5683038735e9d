"""What ``buildsys plan`` and ``buildsys plugins`` show: the DAG with per-node status."""

from __future__ import annotations

import json


def describe(project, targets: list[str] | None, graph=None, explain: bool = False) -> dict:
    """Every node with its status (cached / will build) and every refused target with why;
    ``graph`` is the full plan (default: the plan for this host). With ``explain``, each node
    that will build carries ``why``: what changed since the lockfile (``buildsys.explain``)."""
    from ..driver import BuildDriver

    graph = (graph or project.graph).select(targets or list(project.manifest.targets))
    driver = BuildDriver(project, graph)
    nodes = []
    for node in graph.nodes.values():
        status, key = driver.status(node.id)
        nodes.append({"id": node.id, "stage": node.stage, "kind": node.kind, "precision": node.precision,
                      "hardware": node.hardware, "options": node.options, "inputs": list(node.inputs), "status": status,
                      "action_key": key, "deterministic": node.deterministic,
                      "targets": graph.targets_of(node.id), "chosen": _chosen(project, node)})
    if explain:
        from ..explain import reasons

        why = reasons(project, graph, driver, {n["id"]: n["status"] for n in nodes})
        for node in nodes:
            if node["id"] in why:
                node["why"] = why[node["id"]]
    return {"manifest": str(project.manifest.path), "nodes": nodes, "targets": dict(graph.targets),
            "refused": {t: str(e) for t, e in graph.refused.items()}}


def _chosen(project, node) -> dict:
    """The options the plan decided for this node: those whose default is ``auto`` and that the
    stage's ``resolve`` made concrete (an opset, the backend serving a Triton repository)."""
    stage = project.catalog.stages.get(node.stage)
    fields = getattr(getattr(stage, "options", None), "model_fields", {})
    return {name: value for name, value in (node.options or {}).items()
            if name in fields and fields[name].default == "auto" and value != "auto"}


def explanation_lines(view: dict) -> list[str]:
    """``build --explain``: one block per node that will build, with its reasons."""
    lines = []
    for node in view["nodes"]:
        if node.get("why"):
            names = f" ({', '.join(node['targets'])})" if node["targets"] else ""
            lines.append(f"will build {node['id']}{names}:")
            lines += [f"    {reason}" for reason in node["why"]]
    return lines


def render(view: dict, fmt: str) -> str:
    return {"json": lambda v: json.dumps(v, indent=1), "dot": _dot, "mermaid": _mermaid,
            "text": _text}[fmt](view)


def _text(view: dict) -> str:
    lines = [f"plan for {view['manifest']}"]
    for node in view["nodes"]:
        inputs = f" <- {', '.join(node['inputs'])}" if node["inputs"] else ""
        targets = f"  => {', '.join(node['targets'])}" if node["targets"] else ""
        chosen = "".join(f" {k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in node.get("chosen", {}).items())
        lines.append(f"  {node['status']:<10} {node['id']} [{node['kind']} {node['precision']} "
                     f"{node['hardware']}{chosen}]{inputs}{targets}")
        lines += [f"             because {reason}" for reason in node.get("why", [])]
    for target, reason in view["refused"].items():
        lines.append(f"  refused    target '{target}': {reason}")
    counts = {s: sum(n["status"] == s for n in view["nodes"]) for s in ("cached", "will build")}
    lines.append(f"{counts['cached']} cached, {counts['will build']} to build, {len(view['refused'])} refused")
    return "\n".join(lines)


def _dot(view: dict) -> str:
    colors = {"cached": "lightblue", "will build": "khaki", "source": "white"}
    lines = ["digraph buildsys {", "  rankdir=LR;", "  node [shape=box, style=filled];"]
    for node in view["nodes"]:
        label = f"{node['id']}\\n{node['kind']} {node['precision']} {node['hardware']}\\n{node['status']}"
        lines.append(f"  \"{node['id']}\" [label=\"{label}\", fillcolor={colors[node['status']]}];")
        lines += [f"  \"{i}\" -> \"{node['id']}\";" for i in node["inputs"]]
    for target, final in view["targets"].items():
        lines.append(f"  \"target:{target}\" [shape=ellipse, fillcolor=palegreen];")
        lines.append(f"  \"{final}\" -> \"target:{target}\";")
    for target in view["refused"]:
        lines.append(f"  \"target:{target}\" [shape=ellipse, fillcolor=salmon, label=\"{target}\\nrefused\"];")
    return "\n".join(lines + ["}"])


def _mermaid(view: dict) -> str:
    ids = {node["id"]: f"n{i}" for i, node in enumerate(view["nodes"])}
    lines = ["flowchart LR"]
    for node in view["nodes"]:
        lines.append(f"  {ids[node['id']]}[\"{node['id']}<br/>{node['kind']} · {node['status']}\"]")
        lines += [f"  {ids[i]} --> {ids[node['id']]}" for i in node["inputs"]]
    for n, (target, final) in enumerate(view["targets"].items()):
        lines.append(f"  t{n}([\"{target}\"])")
        lines.append(f"  {ids[final]} --> t{n}")
    for n, target in enumerate(view["refused"]):
        lines.append(f"  r{n}([\"{target}: refused\"])")
    return "\n".join(lines)


def plugin_table(pm, catalog) -> str:
    from ..hookspecs import CONTRACT_VERSION
    from ..plugins import contract_of

    lines = [f"plugin contract: {CONTRACT_VERSION}", "plugins:"]
    for name, plugin in sorted(pm.list_name_plugin()):
        declared = contract_of(plugin)
        lines.append(f"  {name:<22} {getattr(plugin, '__name__', type(plugin).__name__)}"
                     f"{'  contract ' + declared if declared else ''}")
    for name, error in sorted(catalog.broken.items()):
        lines.append(f"  {name:<22} BROKEN: {error.message}")
    lines.append("kinds:")
    for kind in sorted(catalog.kinds.values(), key=lambda k: (k.ladder, k.name)):
        aliases = f" (alias: {', '.join(kind.aliases)})" if kind.aliases else ""
        lines.append(f"  {kind.name:<22} ladder {kind.ladder}  {kind.description}{aliases}"
                     f"  [{catalog.owner('kinds', kind.name)}]")
    lines.append("sources:")
    for framework, source in sorted(catalog.sources.items()):
        lines.append(f"  {framework:<22} -> {source.kind}  [{catalog.owner('sources', framework)}]")
    lines.append("stages:")
    for stage in sorted(catalog.stages.values(), key=lambda s: s.name):
        usable, why = stage.usable()
        state = "usable" if usable else f"UNUSABLE: {why}"
        lines.append(f"  {stage.name:<22} {'|'.join(stage.consumes)} -> {stage.produces}"
                     f"{' (' + stage.precision + ')' if stage.precision else ''}  hardware={stage.hardware.value if hasattr(stage.hardware, 'value') else 'by options'}"
                     f"{'' if stage.deterministic else ' nondeterministic'}  {state}  [{catalog.owner('stages', stage.name)}]")
    for title, table in (("registries", catalog.registries), ("executors", catalog.executors)):
        lines.append(f"{title}:")
        for key, spec in sorted(table.items()):
            lines.append(f"  {key:<22} {spec.description}  [{catalog.owner(title, key)}]")
    return "\n".join(lines)


def plugin_data(pm, catalog) -> dict:
    """What ``plugin_table`` shows, as data (``plugins --json``)."""
    from ..hookspecs import CONTRACT_VERSION
    from ..plugins import contract_of

    def stage(spec) -> dict:
        usable, why = spec.usable()
        return {"name": spec.name, "consumes": list(spec.consumes), "produces": spec.produces,
                "precision": spec.precision, "deterministic": spec.deterministic, "usable": usable,
                "unusable_because": why or None, "plugin": catalog.owner("stages", spec.name),
                "hardware": spec.hardware.value if hasattr(spec.hardware, "value") else "by options"}

    return {
        "contract": CONTRACT_VERSION,
        "plugins": [{"name": name, "module": getattr(plugin, "__name__", type(plugin).__name__),
                     "contract": contract_of(plugin) or None} for name, plugin in sorted(pm.list_name_plugin())],
        "broken": {name: str(error) for name, error in sorted(catalog.broken.items())},
        "kinds": [{"name": k.name, "ladder": k.ladder, "aliases": list(k.aliases), "plugin": catalog.owner("kinds", k.name)}
                  for k in sorted(catalog.kinds.values(), key=lambda k: (k.ladder, k.name))],
        "sources": {f: {"kind": src.kind, "plugin": catalog.owner("sources", f)} for f, src in sorted(catalog.sources.items())},
        "stages": [stage(spec) for spec in sorted(catalog.stages.values(), key=lambda s: s.name)],
        "registries": {k: catalog.owner("registries", k) for k in sorted(catalog.registries)},
        "executors": {k: catalog.owner("executors", k) for k in sorted(catalog.executors)},
    }
