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
    """The stage's ``run``: returns artifact metadata (profiles, layer report, flavour, CCs)."""
    source = inputs[0]
    sms = check_target(options.flavour, ctx.hardware)
    ctx.progress(0, 3, "reading the ONNX graph")
    facts = graph.inspect(source.primary)
    graph.check_precision(facts, ctx.precision)
    graph.check_qdq(facts)
    trt = builder.import_flavour(options.flavour)
    version = trt.__version__
    session = _timing_session(ctx, options, version)
    ctx.progress(1, 3, f"building with {flavours.FLAVOURS[options.flavour].label} {version} for {ctx.hardware}")
    engine = builder.build_engine(builder.Request(
        onnx=source.primary, trt=trt, flavour=options.flavour, sms=sms, options=options, model=ctx.model,
        timing=session, facts=facts))
    for line in engine.warnings:
        ctx.log(line)
    ctx.progress(2, 3, f"writing {len(engine.plan)} bytes")
    (Path(ctx.out_dir) / PRIMARY).write_bytes(engine.plan)
    return metadata(ctx, source, options, engine, facts, version, sms)


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
        "profiles": [p.to_json() for p in engine.profiles],
        "input_names": source.meta.get("input_names") or list(engine.inputs),
        "engine_inputs": {name: list(shape) for name, shape in engine.inputs.items()},
        "output_names": engine.outputs, "opset": source.meta.get("opset"),
        "precision": {"target": ctx.precision, "graph": facts.to_json()},
        "layers": layers.summary(layers.with_modules(engine.layers, source.primary)),
        "build": {"seconds": round(engine.seconds, 3), "plan_bytes": len(engine.plan),
                  "optimization_level": options.optimization_level, "strongly_typed": True,
                  "profiling_verbosity": "detailed", "memory_pools_mib": options.memory_pools,
                  "max_aux_streams": options.max_aux_streams, "tiling": options.tiling},
        "timing_cache": engine.timing,
    }
