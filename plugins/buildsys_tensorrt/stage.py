"""The ``tensorrt.plan`` stage: clean or precision-lowered ``onnx`` -> a TensorRT engine.

Checks come first and cost nothing: the target's hardware against the flavour, the precision
the target asks for against what the graph carries, the Q/DQ form. Then the builder runs;
only a complete engine is written to ``ctx.out_dir`` (a failed node leaves nothing behind).
The engine is nondeterministic (kernel timing), so the lock compares it by action key.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import PlanError, StageFailed

from . import builder, flavours, graph, layers, timing

PRIMARY = "model.plan"


def run_plan(ctx, inputs, options) -> dict:
    """The stage's ``run``: returns artifact metadata (profiles, layer report, flavour, CCs).

    A source with companion programs (``meta.programs``: a seq2seq model's encoder beside its
    decoder step) gets one engine each, ``<name>.plan``, with profiles over its own dims (explicit
    ``profiles`` name the primary's inputs, so they apply to the primary alone)."""
    source = inputs[0]
    sms = check_target(options.flavour, ctx.hardware)
    companions = sorted((source.meta.get("programs") or {}).items())
    graphs = [(None, source.primary, ctx.model)] + [
        (name, source.program(name).primary, ctx.model.for_program(record["inputs"], record["dims"]))
        for name, record in companions]
    steps = len(graphs) + 2
    ctx.progress(0, steps, "reading the ONNX graph" + ("s" if companions else ""))
    facts = [graph.inspect(path) for _, path, _ in graphs]
    for found in facts:
        graph.check_precision(found, ctx.precision)
        graph.check_qdq(found)
    trt = builder.import_flavour(options.flavour)
    version = trt.__version__
    session = _timing_session(ctx, options, version)
    engines = []
    for index, ((name, path, model), found) in enumerate(zip(graphs, facts)):
        ctx.progress(1 + index, steps, f"building {'the ' + name + ' graph ' if name else ''}with "
                     f"{flavours.FLAVOURS[options.flavour].label} {version} for {ctx.hardware}")
        engines.append(builder.build_engine(builder.Request(
            onnx=path, trt=trt, flavour=options.flavour, sms=sms, model=model, timing=session, facts=found,
            options=options.model_copy(update={"profiles": None}) if name else options)))
        for line in engines[-1].warnings:
            ctx.log(line)
    ctx.progress(steps - 1, steps, f"writing {sum(len(engine.plan) for engine in engines)} bytes")
    out = Path(ctx.out_dir)
    programs = {}
    for (name, record), (_, path, _), engine in zip(companions, graphs[1:], engines[1:]):
        (out / f"{name}.plan").write_bytes(engine.plan)
        programs[name] = dict(record, primary=f"{name}.plan", **_engine_meta(engine, record, path))
    (out / PRIMARY).write_bytes(engines[0].plan)
    meta = metadata(ctx, source, options, engines[0], facts[0], version, sms)
    return dict(meta, programs=programs) if programs else meta


def check_target(flavour: str, hardware: str) -> tuple[int, ...]:
    """The compute capabilities to build for; refuses what the flavour cannot serve, before building."""
    try:
        flavours.check_hardware(flavour, hardware)
    except PlanError as exc:  # the planner refuses these; a hand-written job may still carry one
        raise StageFailed(str(exc)) from None
    return flavours.sms_of(hardware) or ()


def _timing_session(ctx, options, version: str):
    if not options.timing_cache:
        return None
    key = timing.key(options.flavour, version, ctx.hardware)
    return timing.Session(lambda: ctx.persistent_file(timing.NAMESPACE, key))


def metadata(ctx, source, options, engine, facts, version: str, sms) -> dict:
    """What artifact.json records about the engine."""
    spec = flavours.FLAVOURS[options.flavour]
    installed = flavours.installed(options.flavour)
    return {
        "primary": PRIMARY, "tool_tag": flavours.tool_tag(options.flavour, version),
        "flavour": options.flavour, "flavour_version": version,
        "runtime": {installed[0] if installed else spec.module: version},
        "compute_capabilities": list(sms),
        "runs_on": f"NVIDIA GPUs with {' or '.join(f'sm{sm}' for sm in sms) or 'the build GPU'} "
                   f"and the {spec.label} {version} runtime",
        **_engine_meta(engine, source.meta, source.primary), "opset": source.meta.get("opset"),
        "precision": {"target": ctx.precision, "graph": facts.to_json()},
        "build": {"seconds": round(engine.seconds, 3), "plan_bytes": len(engine.plan),
                  "optimization_level": options.optimization_level, "strongly_typed": True,
                  "profiling_verbosity": "detailed", "memory_pools_mib": options.memory_pools,
                  "max_aux_streams": options.max_aux_streams, "tiling": options.tiling},
        "timing_cache": engine.timing,
    }


def _engine_meta(engine, described: dict, onnx: Path) -> dict:
    """What the runner reads of one engine (its profiles, inputs and outputs) and its layer report;
    ``described`` is the metadata of the graph it was built from (its input names)."""
    return {"profiles": [p.to_json() for p in engine.profiles],
            "input_names": described.get("input_names") or list(engine.inputs),
            "engine_inputs": {name: list(shape) for name, shape in engine.inputs.items()},
            "output_names": engine.outputs,
            "layers": layers.summary(layers.with_modules(engine.layers, onnx))}
