"""Planning: manifest targets + registered stages -> one DAG with shared nodes. Pure: no I/O.

Each target becomes a chain of stages from the model source (or from another target, with
``from:``) to the target's kind and precision: the shortest path over (kind, precision)
states, or the explicit ``pipeline:``. Chains that share a prefix share nodes: a node's id
is a hash of its recipe (stage, version, options, hardware, input recipes), so identical
steps collapse into one. Targets that cannot be planned are refused with the reason; the
rest of the graph is still planned.
"""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable

from . import hardware
from .errors import PlanError
from .graph import REFERENCE_KIND, SOURCE, VALIDATE, Graph, GraphDraft, Node
from .hashing import canonical, sha256_text
from .specs import HardwarePolicy, PlanContext, StageSpec



@dataclass(frozen=True)
class OfferedHardware:
    """The hardware a build can use: this host's, and what its executor ``provides`` elsewhere.

    An executor that runs nodes on other machines (ray) lets the planner plan a stage that must
    run on hardware this host lacks; the node's ``runs_on`` then tells the executor where to run it.
    """

    host: Any
    provides: Callable[[Any], Any]

    @property
    def cpu_tag(self):
        return self.host.cpu_tag

    def match(self, request):
        return self.host.match(request) or self.provides(request)


# --------------------------------------------------------------------------------------------


def plan(manifest, catalog, host) -> Graph:
    """Plan every target of ``manifest`` with the stages in ``catalog`` for ``host``.

    ``host`` needs ``match(HardwareTag) -> HardwareTag | None`` and ``cpu_tag``: the hardware
    the build can run on (this machine, or what an executor offers).
    """
    graph = GraphDraft()
    source = _source_node(manifest, catalog, graph)
    context = _context(manifest, catalog)  # once: it reads every target, so per target it was quadratic
    for name in _target_order(manifest):
        target = manifest.targets[name]
        try:
            if target.from_ is not None and target.from_ in graph.refused:
                raise PlanError(f"target '{name}' builds from target '{target.from_}', which was refused",
                                where=manifest.where("targets", name, "from"),
                                hint=f"fix target '{target.from_}' first: its own refusal says why")
            start = graph.nodes[graph.targets[target.from_]] if target.from_ else source
            graph.targets[name] = _plan_target(manifest, catalog, host, name, start, graph, context, source).id
            _plan_validation(manifest, catalog, host, name, source, graph)
        except PlanError as exc:
            graph.refused[name] = exc
    return graph.freeze()


def _source_node(manifest, catalog, graph: GraphDraft) -> Node:
    framework = manifest.model.framework
    if framework not in catalog.sources:
        close = difflib.get_close_matches(framework, list(catalog.sources), n=1)
        raise PlanError(f"no plugin loads model framework '{framework}'",
                        where=manifest.where("model", "framework"),
                        hint=f"did you mean '{close[0]}'?" if close else
                        f"installed frameworks: {', '.join(sorted(catalog.sources)) or 'none'}")
    source = catalog.sources[framework]
    recipe = sha256_text(canonical({"source": framework, "model": manifest.model_block()}))
    return graph.add(Node(id=f"{SOURCE}:{framework}", stage=SOURCE, stage_version=1,
                          kind=source.kind, precision="fp32", hardware="any", options={},
                          inputs=(), recipe=recipe, ladder=1))


def _target_order(manifest) -> list[str]:
    """Targets with every ``from:`` target before its dependents; a cycle is an error.

    A loop, not recursion: a chain of ``from:`` may be as long as the manifest (1,000 targets)."""
    order: list[str] = []
    placed: set[str] = set()
    for name in manifest.targets:
        trail = _unplaced_ancestry(manifest, name, placed)
        order.extend(reversed(trail))
        placed.update(trail)
    return order


def _unplaced_ancestry(manifest, name: str, placed: set[str]) -> list[str]:
    """``name``, the target it builds ``from:``, that one's, ... up to the first one already placed."""
    trail: list[str] = []
    position: dict[str, int] = {}
    while name is not None and name not in placed:
        if name in position:
            cycle = trail[position[name]:] + [name]
            raise PlanError(f"targets build from each other in a cycle: {' -> '.join(cycle)}",
                            where=manifest.where("targets", name, "from"),
                            hint="remove one 'from:' so the chain has a start")
        position[name] = len(trail)
        trail.append(name)
        name = manifest.targets[name].from_
    return trail


def _plan_target(manifest, catalog, host, name: str, start: Node, graph: GraphDraft,
                 context: PlanContext, source: Node) -> Node:
    target = manifest.targets[name]
    where = manifest.where("targets", name)
    try:
        kind = catalog.kind_for_format(target.format)
    except Exception as exc:
        raise PlanError(f"target '{name}': {exc.message}", where=manifest.where("targets", name, "format"),
                        hint=getattr(exc, "hint", None)) from None
    stages = (_explicit_pipeline(manifest, catalog, name, start) if target.pipeline is not None
              else _shortest_chain(catalog, start, kind.name, target.precision, name, where))
    _check_options_used(manifest, name, stages)
    _check_runtimes_honoured(manifest, name, stages)
    _check_source_chain(manifest, catalog, name, stages)
    request = hardware.parse(target.hardware) if target.hardware is not None else None
    context = replace(context, hardware=str(request) if request is not None else None,
                      runtimes=dict(target.runtimes),
                      tolerance=manifest.tolerance(target.precision).model_dump(exclude_defaults=True))
    node = start
    for stage in stages:
        options = _resolve_options(manifest, name, stage, replace(context, input_kind=node.kind))
        policy = stage.policy(options)
        tag = (_decided_tag(stage, options, request, name, where) if stage.output_tag is not None
               else _inherited_tag(stage, node.hardware, request, name, where) if policy is HardwarePolicy.INPUT
               else _output_tag(stage, policy, request, host, name, where))
        runs_on = tag if policy in (HardwarePolicy.HOST, HardwarePolicy.TARGET) and tag != "any" else None
        extra = (_stage_reference(catalog, graph, source, name, stage),) if stage.reference and stage.reference(options) else ()
        node = graph.add(_make_node(stage, node, _dump(options), tag, catalog, runs_on, extra))
    if node.kind != kind.name or node.precision != target.precision:
        raise PlanError(f"target '{name}' pipeline ends in {node.kind} ({node.precision}), "
                        f"the target asks for {kind.name} ({target.precision})", where=where)
    return node


def _context(manifest, catalog) -> PlanContext:
    """What every target's stages may look at; ``_plan_target`` fills in the target's hardware."""
    kinds = set()
    for target in manifest.targets.values():
        try:
            kinds.add(catalog.kind_for_format(target.format).name)
        except Exception:
            continue  # an unknown format is reported for its own target
    calibration = manifest.calibration.model_dump(mode="json") if manifest.calibration else None
    return PlanContext(target_kinds=frozenset(kinds), model=manifest.model_block(), calibration=calibration,
                       root=_root(manifest))


def _root(manifest):
    """The manifest's folder; None for a manifest made in memory (unit tests of the planner)."""
    return manifest.root if manifest._path is not None else None


def _dump(options) -> dict:
    return {} if options is None else options.model_dump(mode="json")


def _plan_validation(manifest, catalog, host, name: str, source: Node, graph: GraphDraft) -> None:
    """Add a validate node comparing the target's artifact with the source model, if possible."""
    final = graph.nodes[graph.targets[name]]
    runner = catalog.runners.get(final.kind)
    reason = None
    if runner is None:
        reason = f"no runner for {final.kind} is installed"
    elif runner.precisions is not None and final.precision not in runner.precisions:
        reason = f"runner '{runner.name}' does not run {final.precision} {final.kind} artifacts on this host"
    elif final.hardware != "any" and host.match(hardware.parse(final.hardware)) is None:
        reason = f"it runs on {final.hardware}, which this host lacks"
    if reason is None:
        try:
            reference = _reference_node(catalog, graph, source, name)
        except PlanError:
            reason = f"no stage computes reference outputs for {source.kind}"
    if reason is not None:
        graph.unvalidated[name] = reason
        return
    options = {"runner": runner.name, "tolerance": manifest.tolerance(final.precision).model_dump(exclude_defaults=True)}
    baseline = graph.baseline(final)
    inputs = (final, reference) + ((baseline,) if baseline is not None else ())
    recipe = sha256_text(canonical({"stage": VALIDATE, "options": options, "inputs": [n.recipe for n in inputs]}))
    # running an artifact needs its hardware: the validate node runs where the artifact can
    runs_on = None if final.hardware == "any" else str(host.match(hardware.parse(final.hardware)))
    graph.validations[name] = graph.add(Node(
        id=f"{VALIDATE}#{recipe[:10]}", stage=VALIDATE, stage_version=catalog.stage(VALIDATE).version, kind="validation",
        precision=final.precision, hardware=final.hardware, options=options,
        inputs=tuple(n.id for n in inputs), recipe=recipe, ladder=0, deterministic=False, runs_on=runs_on)).id


def _reference_node(catalog, graph: GraphDraft, source: Node, name: str) -> Node:
    """The node computing the held-out samples and the source model's outputs on them (what
    validation compares with, and what a stage with ``StageSpec.reference`` gets as an input)."""
    reference = source
    for stage in _shortest_chain(catalog, source, REFERENCE_KIND, "fp32", name, ""):
        reference = graph.add(_make_node(stage, reference, {}, "any", catalog))
    return reference


def _stage_reference(catalog, graph: GraphDraft, source: Node, name: str, stage: StageSpec) -> Node:
    try:
        return _reference_node(catalog, graph, source, name)
    except PlanError:
        raise PlanError(f"target '{name}': stage {stage.name} needs the held-out samples with these options "
                        f"(exclude: auto), and no stage computes reference outputs for {source.kind}",
                        hint="list the layers to keep in 'exclude:' instead") from None


def _make_node(stage: StageSpec, parent: Node, options: dict, tag: str, catalog, runs_on: str | None = None,
               extra: tuple[Node, ...] = ()) -> Node:
    """``extra``: inputs after ``parent`` (the reference, for a stage whose ``reference`` asks)."""
    precision = stage.precision or parent.precision
    recipe = sha256_text(canonical({
        "stage": stage.name, "version": stage.version, "options": options,
        "hardware": tag, "precision": precision, "inputs": [parent.recipe] + [e.recipe for e in extra]}))
    kind = catalog.kinds.get(stage.produces)
    return Node(id=f"{stage.name}#{recipe[:10]}", stage=stage.name, stage_version=stage.version,
                kind=stage.produces, precision=precision, hardware=tag, options=options,
                inputs=(parent.id, *(e.id for e in extra)), recipe=recipe, ladder=kind.ladder if kind else 2,
                deterministic=stage.deterministic and parent.deterministic, runs_on=runs_on)


def _shortest_chain(catalog, start: Node, kind: str, precision: str, name: str, where: str) -> list[StageSpec]:
    """Breadth-first over (kind, precision); ties broken by stage name, so plans are stable."""
    begin = (start.kind, start.precision)
    previous: dict[tuple[str, str], tuple[tuple[str, str], StageSpec] | None] = {begin: None}
    queue = deque([begin])
    stages = sorted(catalog.stages.values(), key=lambda s: s.name)
    while queue:
        state = queue.popleft()
        if state == (kind, precision):
            return _unwind(previous, state)
        for stage in stages:
            if state[0] in stage.consumes:
                nxt = (stage.produces, stage.precision or state[1])
                if nxt not in previous:
                    previous[nxt] = (state, stage)
                    queue.append(nxt)
    installed = ", ".join(f"{s.name} ({'|'.join(s.consumes)} -> {s.produces})" for s in stages) or "none"
    wanted = kind if precision == "fp32" else f"{kind} with precision {precision}"
    raise PlanError(f"target '{name}': no stage produces {wanted} from {start.kind}",
                    where=where, hint=f"installed stages: {installed}")


def _unwind(previous: dict, state) -> list[StageSpec]:
    chain = []
    while previous[state] is not None:
        state, stage = previous[state]
        chain.append(stage)
    return chain[::-1]


def _explicit_pipeline(manifest, catalog, name: str, start: Node) -> list[StageSpec]:
    chain, kind = [], start.kind
    for i, stage_name in enumerate(manifest.targets[name].pipeline):
        where = manifest.where("targets", name, "pipeline", i)
        if stage_name not in catalog.stages:
            close = difflib.get_close_matches(stage_name, list(catalog.stages), n=1)
            raise PlanError(f"target '{name}': unknown stage '{stage_name}' in pipeline", where=where,
                            hint=f"did you mean '{close[0]}'?" if close else
                            f"installed stages: {', '.join(sorted(catalog.stages)) or 'none'}")
        stage = catalog.stages[stage_name]
        if kind not in stage.consumes:
            raise PlanError(f"target '{name}': stage '{stage_name}' consumes {' or '.join(stage.consumes)}, "
                            f"but the previous step produces {kind}", where=where)
        chain.append(stage)
        kind = stage.produces
    return chain


def _check_source_chain(manifest, catalog, name: str, stages: list[StageSpec]) -> None:
    """The source may refuse a chain it knows a stage cannot carry (``SourceSpec.check_chain``)."""
    check = getattr(catalog.sources.get(manifest.model.framework), "check_chain", None)
    reason = check(manifest.model, tuple(stage.name for stage in stages)) if check is not None else None
    if reason:
        raise PlanError(reason, where=manifest.where("targets", name))


def _check_options_used(manifest, name: str, stages: list[StageSpec]) -> None:
    used = {s.name for s in stages}
    for stage_name in manifest.targets[name].options:
        if stage_name not in used:
            raise PlanError(f"target '{name}' sets options for stage '{stage_name}', which its chain does not use",
                            where=manifest.where("targets", name, "options", stage_name),
                            hint=f"its chain: {' -> '.join(s.name for s in stages) or 'empty'}")


def _check_runtimes_honoured(manifest, name: str, stages: list[StageSpec]) -> None:
    """A target's ``runtimes:`` needs a stage that caps its output for them (PlanContext.runtimes)."""
    if not manifest.targets[name].runtimes:
        return
    if not any(stage.options is not None and "runtimes" in stage.options.model_fields for stage in stages):
        raise PlanError(f"target '{name}' sets runtimes, which no stage of its chain "
                        f"({', '.join(s.name for s in stages) or 'none'}) can honour",
                        where=manifest.where("targets", name, "runtimes"),
                        hint="runtimes caps what a stage writes for older runtimes (onnx.export: the ONNX "
                             "opset and IR version); drop it from this target")


def _resolve_options(manifest, name: str, stage: StageSpec, context: PlanContext):
    """The target's options for ``stage``, validated, with "auto" values made concrete."""
    from pydantic import ValidationError

    given = manifest.targets[name].options.get(stage.name, {})
    if stage.options is None:
        if given:
            raise PlanError(f"stage '{stage.name}' takes no options",
                            where=manifest.where("targets", name, "options", stage.name))
        return None
    try:
        options = stage.options.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise PlanError(f"target '{name}', options of stage '{stage.name}': {key}: {first['msg']}",
                        where=manifest.where("targets", name, "options", stage.name, *first["loc"]),
                        hint=f"valid options: {', '.join(stage.options.model_fields)}") from None
    if stage.resolve is None:
        return options
    try:
        return stage.resolve(options, context)
    except (ValueError, PlanError) as exc:
        raise PlanError(f"target '{name}', options of stage '{stage.name}': {exc}",
                        where=manifest.where("targets", name, "options", stage.name)) from None


def _decided_tag(stage: StageSpec, options, request, name: str, where: str) -> str:
    """The tag a stage's options decide (the platforms a jax.export lowers for), if it covers the request."""
    tag = stage.output_tag(options)
    if request is not None and not hardware.parse(tag).covers(request):
        raise PlanError(f"target '{name}' asks for {request}, but stage '{stage.name}' builds for {tag} "
                        "with these options", where=where,
                        hint=f"set the stage's options (options: {{{stage.name}: ...}}) so that its output covers {request}")
    return tag


def _inherited_tag(stage: StageSpec, parent: str, request, name: str, where: str) -> str:
    """The tag of a stage that packages its input: the input's, or for a portable input the
    target's hardware (a Triton repository configured for GPUs), if it names some."""
    if parent == "any":
        return str(request) if request is not None else "any"
    if request is not None and not hardware.parse(parent).covers(request):
        raise PlanError(f"target '{name}' asks for {request}, but stage '{stage.name}' packages an input "
                        f"built for {parent}", where=where,
                        hint=f"drop the target's hardware, or build it from a target for {request}")
    return parent


def _output_tag(stage: StageSpec, policy: HardwarePolicy, request, host, name: str, where: str) -> str:
    if policy is HardwarePolicy.PORTABLE:
        return "any"
    if policy is HardwarePolicy.AHEAD_OF_TIME and request is not None and request.concrete:
        return str(request)
    wanted = request or host.cpu_tag
    matched = host.match(wanted)
    if matched is None:
        why = ("is not ahead-of-time capable" if policy is not HardwarePolicy.AHEAD_OF_TIME
               else "needs a concrete device to build for")
        raise PlanError(f"target '{name}' needs {wanted}, the host has none, and stage '{stage.name}' {why}",
                        where=where, hint="build on a machine with that hardware, or use an executor that has one")
    return str(matched)
