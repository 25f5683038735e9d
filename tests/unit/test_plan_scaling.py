"""Planning grows linearly with the number of targets: shapes, not timings.

Each test counts the work one helper does for a few thousand targets (calls of
``kind_for_format``, lookups of a graph's nodes or targets) and fails as soon as the count
passes a fixed multiple of the input size, so a quadratic regression fails in milliseconds
instead of timing out. The manifests are made in memory: the loader refuses more than 1,000
targets, and the planner must not care. ``bench/plan_scaling.py`` measures the times.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from pydantic import BaseModel, ConfigDict

from buildsys.graph import Graph, GraphDraft, Node
from buildsys.hardware import Host
from buildsys.manifest import Manifest, ModelSpec, Target
from buildsys.plan import plan
from buildsys.plugins import Catalog
from buildsys.specs import KindSpec, SourceSpec, StageSpec

CPU = Host(arch="x86_64", isa="avx2")
MANY = 2_000


class Budget:
    """Counts work and fails the test the moment it passes ``limit`` (quadratic code would
    otherwise run for minutes first). ``pytest.fail`` is a BaseException: no ``except
    Exception`` in the code under test swallows it."""

    def __init__(self, limit: int, what: str):
        self.limit, self.what, self.count = limit, what, 0

    def tick(self) -> None:
        self.count += 1
        if self.count > self.limit:
            pytest.fail(f"more than {self.limit} {self.what}: planning is not linear in the targets")


class CountingMapping(Mapping):
    """A read-only mapping that spends one tick of ``budget`` per key it yields or looks up."""

    def __init__(self, data: Mapping, budget: Budget):
        self._data, self._budget = dict(data), budget

    def __getitem__(self, key):
        self._budget.tick()
        return self._data[key]

    def __iter__(self):
        for key in self._data:
            self._budget.tick()
            yield key

    def __len__(self) -> int:
        return len(self._data)


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: int = 0


SEEN_CONTEXTS: list = []


def _remember(options, context):
    SEEN_CONTEXTS.append(context)
    return options


def catalog() -> Catalog:
    """Source ``s`` -> ``s.a`` (options: level) -> ``s.b``; ``again`` turns ``s.a`` into a new ``s.a``."""
    specs = Catalog()
    for kind in ("s.src", "s.a", "s.b"):
        specs._add("kinds", kind, KindSpec(kind, 2), "fake")
    specs._add("sources", "s", SourceSpec("s", "s.src", fingerprint=lambda m, r: [], load=lambda m, r: None), "fake")
    for stage in (StageSpec("to_a", consumes=("s.src",), produces="s.a", run=lambda *a: None, options=Level),
                  StageSpec("to_b", consumes=("s.a",), produces="s.b", run=lambda *a: None, options=Level,
                            resolve=_remember),
                  StageSpec("again", consumes=("s.a",), produces="s.a", run=lambda *a: None)):
        specs._add("stages", stage.name, stage, "fake")
    return specs


def in_memory(targets: dict[str, dict], tmp_path) -> Manifest:
    """A manifest made in memory: past the loader's 1,000-target limit."""
    manifest = Manifest.model_construct(
        schema_=1, name="scale", version="1", description=None, calibration=None, validation={},
        model=ModelSpec(framework="s", entrypoint="m.txt"),
        targets={name: Target.model_validate(t) for name, t in targets.items()})
    manifest._path = tmp_path / "scale.yaml"  # where() names it; nothing reads it
    manifest._positions = {}
    return manifest


def wide(n: int) -> dict[str, dict]:
    """``n`` targets, each its own chain: distinct options, half of them one stage longer."""
    return {f"t{i}": {"format": "s.b" if i % 2 else "s.a", "options": {"to_a": {"level": i}}} for i in range(n)}


def deep(n: int) -> dict[str, dict]:
    """``n`` targets, each building ``from:`` the next one listed: the parents come last."""
    targets = {f"t{i}": {"format": "s.a", "from": f"t{i - 1}", "pipeline": ["again"]} for i in range(n - 1, 0, -1)}
    targets["t0"] = {"format": "s.a"}
    return targets


def counted(specs: Catalog, budget: Budget) -> Catalog:
    lookup = specs.kind_for_format

    def kind_for_format(fmt):
        budget.tick()
        return lookup(fmt)

    specs.kind_for_format = kind_for_format
    return specs


def test_each_target_format_is_looked_up_a_bounded_number_of_times(tmp_path):
    """``_context`` once looked up the format of every target for every target: 4 million
    lookups for 2,000 targets."""
    budget = Budget(3 * MANY, "format lookups")
    graph = plan(in_memory(wide(MANY), tmp_path), counted(catalog(), budget), CPU)
    assert len(graph.targets) == MANY and not graph.refused


def test_every_resolve_sees_every_target_kind_and_its_own_hardware(tmp_path):
    SEEN_CONTEXTS.clear()
    targets = wide(6) | {"cpu": {"format": "s.b", "hardware": "cpu", "options": {"to_a": {"level": 99}}}}
    graph = plan(in_memory(targets, tmp_path), catalog(), CPU)
    assert not graph.refused
    assert {c.target_kinds for c in SEEN_CONTEXTS} == {frozenset({"s.a", "s.b"})}
    assert [c.hardware for c in SEEN_CONTEXTS] == [None, None, None, "cpu"]
    assert all(c.model == {"framework": "s", "entrypoint": "m.txt", "inputs": [], "dims": {}} for c in SEEN_CONTEXTS)


def test_a_from_chain_thousands_deep_in_reverse_order_is_planned(tmp_path):
    """Ordering the targets once recursed per ``from:`` link: RecursionError, exit 70."""
    graph = plan(in_memory(deep(MANY), tmp_path), catalog(), CPU)
    assert not graph.refused
    chain = graph.chain(f"t{MANY - 1}")
    assert [n.stage for n in chain] == ["source", "to_a"] + ["again"] * (MANY - 1)
    assert list(graph.nodes) == [n.id for n in chain]  # every parent's nodes before its children's


def test_a_from_cycle_is_still_named_in_order(tmp_path):
    targets = {"d": {"format": "s.a", "from": "a"}, "a": {"format": "s.a", "from": "b"},
               "b": {"format": "s.a", "from": "c"}, "c": {"format": "s.a", "from": "a"}}
    with pytest.raises(Exception, match="cycle: a -> b -> c -> a"):
        plan(in_memory(targets, tmp_path), catalog(), CPU)


def _chain_graph(n: int, budget: Budget) -> Graph:
    """Targets t0..t{n-1} on one chain of n nodes after the source: t_i ends at node i."""
    draft = GraphDraft()
    previous = draft.add(_node("source", ())).id
    for i in range(n):
        previous = draft.add(_node(f"again#{i}", (previous,))).id
        draft.targets[f"t{i}"] = previous
    return Graph(nodes=CountingMapping(draft.nodes, budget), targets=CountingMapping(draft.targets, budget))


def _node(node_id: str, inputs: tuple[str, ...]) -> Node:
    return Node(id=node_id, stage=node_id.split("#")[0], stage_version=1, kind="s.a", precision="fp32",
                hardware="any", options={}, inputs=inputs, recipe=node_id)


def test_selecting_every_target_of_a_deep_chain_visits_each_node_a_bounded_number_of_times():
    """``select`` walked each target's whole chain: n * n / 2 lookups for a chain of n targets."""
    budget = Budget(10 * MANY, "node and target lookups")
    graph = _chain_graph(MANY, budget)
    selected = graph.select([f"t{i}" for i in range(MANY)])
    assert list(selected.nodes) == ["source"] + [f"again#{i}" for i in range(MANY)]
    assert list(selected.targets) == [f"t{i}" for i in range(MANY)]


def test_selecting_some_targets_keeps_only_their_nodes():
    graph = _chain_graph(5, Budget(1_000, "lookups"))
    selected = graph.select(["t1"])
    assert list(selected.nodes) == ["source", "again#0", "again#1"] and dict(selected.targets) == {"t1": "again#1"}


def test_targets_of_every_node_reads_the_targets_a_bounded_number_of_times():
    """``buildsys plan`` asks ``targets_of`` for each node; it scanned every target each time."""
    budget = Budget(10 * MANY, "node and target lookups")
    graph = _chain_graph(MANY, budget)
    found = {node_id: graph.targets_of(node_id) for node_id in list(graph.nodes)}
    assert found["source"] == [] and found["again#7"] == ["t7"]
