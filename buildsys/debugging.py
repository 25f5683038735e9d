"""``buildsys debug``: the layer-wise comparison of a built reduced-precision target with the fp32
graph it was lowered from, on the validation's held-out samples, read from the build cache.

The three artifacts it needs (the target's, its fp32 baseline, the reference samples) are looked
up by action key as ``buildsys plan`` finds them; a target whose validation failed still has all
three cached. The comparison itself is the ``buildsys_compare_layers`` hook's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .driver import BuildDriver
from .errors import BuildsysError, NotBuilt
from .graph import REFERENCE_KIND
from .specs import InputArtifact


def layer_report(project, target: str) -> dict:
    """The hook's report for ``target``, with ``target``, ``precision`` and ``baseline`` added."""
    graph = project.graph
    if target not in project.manifest.targets:
        raise BuildsysError(f"unknown target '{target}'", hint=f"targets: {', '.join(project.manifest.targets)}")
    if target in graph.refused:
        raise graph.refused[target]
    final, baseline = graph.nodes[graph.targets[target]], graph.baseline(target)
    if baseline is None:
        raise BuildsysError(f"target '{target}' ({final.kind}, {final.precision}) has no reduced precision to debug: "
                            "debug compares a reduced-precision artifact (int8, fp16, bf16) with the fp32 graph it "
                            "was lowered from", hint="pick a target with 'precision: int8/fp16/bf16' of an ONNX format")
    reference = _reference(graph, target)
    entries = _cached(project, graph, [final, baseline, reference], target)
    with tempfile.TemporaryDirectory(prefix="buildsys-debug-") as tmp:
        low, fp32, ref = (_artifact(project, node, entries[node.id], Path(tmp) / str(i))
                          for i, node in enumerate((final, baseline, reference)))
        from .builtin.validate import load_reference

        index, samples, _ = load_reference(ref.directory)
        report = project.pm.hook.buildsys_compare_layers(
            artifact=low, baseline=fp32, samples=samples, names={"inputs": index["inputs"], "outputs": index["outputs"]},
            root=project.manifest.root)
    if report is None:
        raise BuildsysError(f"no installed plugin compares {final.kind} artifacts layer by layer",
                            hint="the precision plugin does it for ONNX (pip install 'buildsys[precision]')")
    return dict(report, target=target, precision=final.precision, kind=final.kind, baseline=baseline.id)


def layer_reports(project) -> dict[str, dict | str]:
    """``layer_report`` of every target that has a reduced precision to compare, or why there is
    none (not in the cache, no plugin compares its kind), by target: ``buildsys report --layers``."""
    graph, reports = project.graph, {}
    for target in project.manifest.targets:
        if target in graph.refused or graph.baseline(target) is None:
            continue
        try:
            reports[target] = layer_report(project, target)
        except NotBuilt:
            reports[target] = f"not in the cache: buildsys build -t {target}"
        except BuildsysError as exc:
            reports[target] = str(exc)
    return reports


def _reference(graph, target: str):
    """The reference node (held-out samples) of the target's validation, else of any target."""
    validation = graph.validations.get(target)
    candidates = [graph.nodes[validation].inputs[1]] if validation else []
    candidates += [n.id for n in graph.nodes.values() if n.kind == REFERENCE_KIND]
    if not candidates:
        raise BuildsysError(f"target '{target}' has no held-out samples to compare on: no stage computes "
                            "reference outputs for this model's source")
    return graph.nodes[candidates[0]]


def _cached(project, graph, nodes: list, target: str) -> dict:
    """Cache entries of ``nodes`` by id (every node they need settled first, in graph order)."""
    driver, needed = BuildDriver(project, graph), set()
    for node in nodes:
        needed.update(n.id for n in graph.upstream(node.id))
    for node_id in graph.nodes:
        if node_id in needed:
            driver.status(node_id)
    missing = [n.id for n in nodes if n.id not in driver.settled.entries]
    if missing:
        raise NotBuilt(f"target '{target}' is not built here ({', '.join(missing)} not in the cache)",
                       hint=f"run 'buildsys build {project.manifest.path.name} -t {target}' first; a target whose "
                            "validation failed keeps what debug needs")
    return driver.settled.entries


def _artifact(project, node, entry, directory: Path) -> InputArtifact:
    project.store.materialize(entry, directory, {})
    return InputArtifact(node.kind, node.precision, node.hardware, directory,
                         {f.name: directory / f.name for f in entry.files}, dict(entry.meta))
