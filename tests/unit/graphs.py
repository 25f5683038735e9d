"""Hand-made graphs and settled builds for unit tests of the scheduling loop, the lock and the
artifact records (no planner, no plugins)."""

from __future__ import annotations

from buildsys.cache import Action, Entry
from buildsys.driver import Settled
from buildsys.graph import GraphDraft, Node
from buildsys.records import FileRecord


def node(node_id: str, *inputs: str, stage: str | None = None, deterministic: bool = True) -> Node:
    stage = stage or ("source" if not inputs and node_id.startswith("source") else node_id.split("#")[0])
    return Node(id=node_id, stage=stage, stage_version=1, kind=f"{stage}.kind", precision="fp32", hardware="any",
                options={"o": node_id}, inputs=tuple(inputs), recipe=f"recipe-{node_id}",
                deterministic=deterministic)


def graph(edges: dict[str, tuple[str, ...]], targets: dict[str, str], validations: dict[str, str] | None = None,
          deterministic: bool = True):
    """``edges``: node id -> its inputs, in dependency order."""
    draft = GraphDraft()
    for node_id, inputs in edges.items():
        draft.add(node(node_id, *inputs, deterministic=deterministic or node_id.startswith("source")))
    draft.targets.update(targets)
    draft.validations.update(validations or {})
    return draft.freeze()


def settle(graph) -> Settled:
    """A build in which every node of ``graph`` succeeded: one file per stored node."""
    settled = Settled()
    for n in graph.nodes.values():
        if n.is_source:
            settled.digests[n.id] = "d-" + n.id
            continue
        action = Action(n.stage, n.stage_version, n.options, tuple(settled.digests[i] for i in n.inputs),
                        {"tool": "1.0"}, n.hardware, n.precision)
        files = (FileRecord("model.bin", (n.id.encode().hex() * 64)[:64], 7),)
        entry = Entry(key=action.key, files=files, meta={"primary": "model.bin", "tool_tag": "t1"}, seconds=0.5)
        settled.actions[n.id], settled.entries[n.id] = action, entry
        settled.digests[n.id] = entry.digest
    return settled
