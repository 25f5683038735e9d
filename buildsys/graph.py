"""The planned build: ``Node`` (one step) and ``Graph`` (the DAG of a manifest's targets).

Both are records: the planner (``buildsys.plan``) makes them and nothing changes them after;
hooks receive them (``buildsys_build_started(graph=...)``, ``buildsys_stage_started(node=...)``)
and executors walk them. Part of the public API.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import PlanError

SOURCE = "source"  # the stage name recorded for source nodes
VALIDATE = "validate"  # the builtin stage comparing an artifact with the source model
REFERENCE_KIND = "reference"  # sample inputs and the source model's outputs on them


@dataclass(frozen=True)
class Node:
    """One step of the build. ``inputs`` are node ids; ``options`` are resolved (defaults in).

    ``recipe`` hashes what the node does (stage, version, options, hardware, precision and its
    inputs' recipes), so identical steps of different targets are one node; its ``id`` is
    ``<stage>#<recipe prefix>``. ``runs_on`` is the hardware it must run on (None: anywhere).
    """

    id: str
    stage: str
    stage_version: int
    kind: str
    precision: str
    hardware: str
    options: dict = field(hash=False, compare=False)
    inputs: tuple[str, ...]
    recipe: str
    ladder: int = 2
    deterministic: bool = True
    runs_on: str | None = None  # not in the recipe: where it runs does not change what it makes

    @property
    def is_source(self) -> bool:
        return self.stage == SOURCE


@dataclass(frozen=True)
class Graph:
    """The planned DAG, read-only: ``nodes`` (id -> Node, inputs before the nodes using them),
    ``targets`` (target -> its final node), ``refused`` (target -> why it cannot be planned),
    ``validations`` (target -> its validate node), ``unvalidated`` (target -> why it has none)."""

    nodes: Mapping[str, Node] = field(default_factory=lambda: MappingProxyType({}))
    targets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    refused: Mapping[str, PlanError] = field(default_factory=lambda: MappingProxyType({}))
    validations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    unvalidated: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def chain(self, target: str) -> list[Node]:
        """The nodes that build a target's artifact, inputs first (validation not included)."""
        return self._closure(self.targets[target])

    def baseline(self, target: str) -> Node | None:
        """The fp32 node a reduced-precision target's artifact was lowered from (see ``baseline_of``)."""
        return baseline_of(self.nodes, self.nodes[self.targets[target]])

    def upstream(self, node_id: str) -> list[Node]:
        """The nodes ``node_id`` needs, itself last, inputs first."""
        return self._closure(node_id)

    def needs(self, target: str) -> list[Node]:
        """Every node a target needs to succeed: its chain, plus its validation if planned."""
        return self._closure(self.validations.get(target, self.targets[target]))

    def _closure(self, last: str, seen: set[str] | None = None) -> list[Node]:
        """The nodes ``last`` needs, inputs first, leaving out those in ``seen`` (and adding to it)."""
        order, seen, stack = [], set() if seen is None else seen, [(last, False)]
        while stack:  # depth-first, inputs before users, without recursion (chains can be long)
            node_id, expanded = stack.pop()
            if expanded:
                order.append(self.nodes[node_id])
            elif node_id not in seen:
                seen.add(node_id)
                stack.append((node_id, True))
                stack.extend((dep, False) for dep in reversed(self.nodes[node_id].inputs) if dep not in seen)
        return order

    def dependents(self, node_id: str) -> list[str]:
        """Every node that transitively consumes ``node_id``, in graph order."""
        found, frontier = set(), [node_id]
        while frontier:
            for user in self._users.get(frontier.pop(), ()):
                if user not in found:
                    found.add(user)
                    frontier.append(user)
        return [n for n in self.nodes if n in found]

    def targets_of(self, node_id: str) -> list[str]:
        """The targets whose artifact ``node_id`` is."""
        return list(self._finals.get(node_id, ()))

    def targets_using(self, node_id: str) -> list[str]:
        """The targets that need ``node_id`` (to build or to validate), in manifest order."""
        return list(self._using.get(node_id, ()))

    def select(self, names: list[str]) -> Graph:
        """The subgraph needed by ``names`` (all targets, refused ones included).

        One walk over the graph for all of them: targets that share a chain (``from:``) share
        the walk, so selecting every target of a long chain is not quadratic."""
        draft, needed = GraphDraft(), set()
        for name in names:
            if name in self.refused:
                draft.refused[name] = self.refused[name]
                continue
            self._closure(self.validations.get(name, self.targets[name]), needed)
            draft.targets[name] = self.targets[name]
            if name in self.validations:
                draft.validations[name] = self.validations[name]
            if name in self.unvalidated:
                draft.unvalidated[name] = self.unvalidated[name]
        draft.nodes = {k: v for k, v in self.nodes.items() if k in needed}
        return draft.freeze()

    @functools.cached_property
    def _users(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for dep in node.inputs:
                users.setdefault(dep, []).append(node.id)
        return users

    @functools.cached_property
    def _finals(self) -> dict[str, list[str]]:
        finals: dict[str, list[str]] = {}
        for target, final in self.targets.items():
            finals.setdefault(final, []).append(target)
        return finals

    @functools.cached_property
    def _using(self) -> dict[str, list[str]]:
        using: dict[str, list[str]] = {}
        for target in self.targets:
            for node in self.needs(target):
                using.setdefault(node.id, []).append(target)
        return using


@dataclass
class GraphDraft:
    """A graph being planned: mutable until ``freeze``."""

    nodes: dict[str, Node] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    refused: dict[str, PlanError] = field(default_factory=dict)
    validations: dict[str, str] = field(default_factory=dict)
    unvalidated: dict[str, str] = field(default_factory=dict)

    def add(self, node: Node) -> Node:
        """Add ``node`` unless an identical step is there; return the one in the graph."""
        return self.nodes.setdefault(node.id, node)

    def baseline(self, final: Node) -> Node | None:
        return baseline_of(self.nodes, final)

    def freeze(self) -> Graph:
        return Graph(*(MappingProxyType(dict(d)) for d in (self.nodes, self.targets, self.refused,
                                                            self.validations, self.unvalidated)))


def baseline_of(nodes: Mapping[str, Node], final: Node) -> Node | None:
    """The nearest fp32 node of ``final``'s kind up its chain, when ``final`` is not fp32: the
    graph its precision stage lowered (an int8 ONNX graph's fp32 ONNX export), which a failed
    validation compares it with layer by layer. None for fp32 artifacts and for kinds that are
    not lowered from their own kind (a TensorRT engine)."""
    if final.precision == "fp32":
        return None
    node = final
    while node.inputs and not node.is_source:
        node = nodes[node.inputs[0]]
        if node.precision == "fp32":
            return node if node.kind == final.kind else None
    return None
