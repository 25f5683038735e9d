"""The engine builder: one code path for enterprise TensorRT and TensorRT-RTX.

Both flavours share the network / ONNX parser / optimization profile / builder config API, so
``build_engine`` takes the imported module and drives it the same way: parse the ONNX file
into a strongly typed network (precision comes from the graph), add one optimization profile
per shape range, configure optimization level, memory pools, aux streams, tiling and (RTX) the
target compute capabilities, attach the kept timing cache, build with detailed profiling
verbosity, and read back the per-layer report. The few calls only one flavour has are marked.

Usable directly (tests and the bench call it on ONNX files they make) and from the stage.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildsys import BackendUnavailable, StageFailed

from . import flavours, layers, profiles as profiles_mod
from .options import PlanOptions


class ParseError(StageFailed):
    """The ONNX parser rejected the graph; every error is listed with its node and operator."""


@dataclass
class Request:
    """What to build: ``onnx`` file, flavour module, target CCs, options, the manifest's model block."""

    onnx: Path
    trt: Any
    flavour: str
    sms: tuple[int, ...]
    options: PlanOptions
    model: Any
    timing: Any = None  # a ``timing.Session``, or None to build without a kept cache
    facts: Any = None  # ``graph.GraphFacts`` of ``onnx``, to name every unsupported node


@dataclass
class Engine:
    """A built engine and what was learned building it."""

    plan: bytes
    profiles: list
    inputs: dict[str, tuple[int, ...]]
    outputs: list[str]
    layers: list[dict]
    seconds: float
    timing: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def import_flavour(flavour: str):
    """The flavour's module (``tensorrt`` or ``tensorrt_rtx``), or ``BackendUnavailable``."""
    spec = flavours.FLAVOURS[flavour]
    try:
        return importlib.import_module(spec.module)
    except ImportError as exc:
        raise BackendUnavailable(f"{spec.label} is needed (import {spec.module} failed: {exc})",
                                 hint=spec.install) from None


def make_logger(trt):
    """A TensorRT logger keeping warnings and errors, and the verbose layer report."""

    class Collect(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.problems: list[str] = []
            self.layer_report: str | None = None

        def log(self, severity, message):
            if message.startswith("Layers:"):
                self.layer_report = message
            elif int(severity) <= int(trt.ILogger.Severity.WARNING):
                self.problems.append(f"{severity.name}: {message}")

    return Collect()


def build_engine(request: Request) -> Engine:
    """Parse, configure, build; raise ``StageFailed`` subclasses with every problem found."""
    trt = request.trt
    logger = make_logger(trt)
    builder = trt.Builder(logger)
    network, parser = parse(trt, builder, logger, request)  # the parser owns the weights: keep it until built
    inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    chosen = choose_profiles(inputs, request)
    config = configure(trt, builder, request, logger)
    add_profiles(builder, config, chosen, logger)
    refuse_misuse(logger)
    timing = request.timing.attach(config) if request.timing is not None else {"used": False}
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - started
    if serialized is None:
        raise StageFailed("TensorRT could not build the engine: " + _problems(logger),
                          hint="a lower optimization_level or larger memory_pools may help")
    plan = bytes(serialized)
    if request.timing is not None:
        timing.update(request.timing.save())
    report = layer_report(trt, logger, plan, request)
    return Engine(plan, chosen, inputs, outputs, report, seconds, timing, logger.problems)


# -- parsing ------------------------------------------------------------------------------------


def parse(trt, builder, logger, request: Request):
    """A strongly typed network from the ONNX file; ``ParseError`` lists every rejected node."""
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(request.onnx)):
        raise ParseError(f"the {flavours.FLAVOURS[request.flavour].label} ONNX parser rejected "
                         f"{Path(request.onnx).name}: " + "; ".join(parser_errors(parser, request.facts)),
                         hint="replace or decompose the listed operators before export, or lower the opset")
    return network, parser


def parser_errors(parser, facts=None) -> list[str]:
    """The parser's errors (node, operator, reason), then every other node of an operator it
    does not support: the parser stops at the first failing node, the user wants them all."""
    found, named = [], set()
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        named.add(error.node_name())
        found.append(f"node '{error.node_name()}' ({error.node_operator() or '?'}): "
                     f"{error.desc().strip()} [{error.code().name}]")
    for op, nodes in sorted((facts.nodes if facts is not None else {}).items()):
        if not parser.supports_operator(op):
            rest = [n for n in nodes if n not in named]
            found += [f"node '{n}' ({op}): operator not supported by this parser" for n in rest]
    return found or ["no error recorded by the parser"]


# -- configuration --------------------------------------------------------------------------------


def choose_profiles(inputs: dict[str, tuple[int, ...]], request: Request) -> list:
    """The optimization profiles: from the manifest's dims, or the explicit option, checked."""
    if request.options.profiles is None:
        chosen = profiles_mod.auto_profiles(inputs, request.model)
    else:
        chosen = profiles_mod.explicit_profiles(inputs, request.options.profiles, request.model)
    return chosen or [profiles_mod.Profile({})]  # a static network still gets one (empty) profile


def configure(trt, builder, request: Request, logger):
    """The builder config: level, verbosity, pools, streams, tiling, compute capabilities."""
    options = request.options
    config = builder.create_builder_config()
    config.builder_optimization_level = options.optimization_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # the layer report needs it
    for pool, mib in options.memory_pools.items():
        config.set_memory_pool_limit(getattr(trt.MemoryPoolType, pool.upper()), int(mib * 2**20))
    if options.max_aux_streams is not None:
        config.max_aux_streams = options.max_aux_streams
    if options.tiling is not None:
        _set_tiling(trt, config, options.tiling, request.flavour)
    if flavours.FLAVOURS[request.flavour].ahead_of_time:
        set_compute_capabilities(trt, config, request.sms, logger)
    # Enterprise TensorRT (not exercised here): builds for the GPU it runs on, which the planner
    # made sure has the target's compute capability (HardwarePolicy.TARGET).
    return config


def _set_tiling(trt, config, level: str, flavour: str) -> None:
    if not hasattr(config, "tiling_optimization_level"):
        raise StageFailed(f"this {flavours.FLAVOURS[flavour].label} ({trt.__version__}) has no tiling optimization",
                          hint="remove the tiling option for this flavour")
    config.tiling_optimization_level = getattr(trt.TilingOptimizationLevel, level.upper())


def set_compute_capabilities(trt, config, sms: tuple[int, ...], logger) -> None:
    """Ahead-of-time targets (TensorRT-RTX): one engine for every listed CC."""
    known = {int(name[2:]): value for name, value in trt.ComputeCapability.__members__.items() if name[2:].isdigit()}
    missing = [sm for sm in sms if sm not in known]
    if missing or not sms:
        raise StageFailed(f"TensorRT-RTX {trt.__version__} cannot build for "
                          f"{', '.join(f'sm{sm}' for sm in missing) or 'no compute capability'}: "
                          f"it builds for {', '.join(f'sm{sm}' for sm in sorted(known))}",
                          hint="sm90/sm100 need enterprise TensorRT (flavour: tensorrt) on such a GPU")
    config.num_compute_capabilities = len(sms)
    for index, sm in enumerate(sms):
        if not config.set_compute_capability(known[sm], index):
            raise StageFailed(f"TensorRT-RTX refused compute capability sm{sm}: " + _problems(logger))


def add_profiles(builder, config, chosen: list, logger) -> None:
    """Add every profile; TensorRT checks them against the network and may refuse one."""
    for index, profile in enumerate(chosen):
        if not profile.shapes:
            continue
        trt_profile = builder.create_optimization_profile()
        for name, (low, mid, high) in profile.shapes.items():
            trt_profile.set_shape(name, low, mid, high)
        if config.add_optimization_profile(trt_profile) < 0:
            raise profiles_mod.ProfileError(f"TensorRT refused optimization profile {index} "
                                            f"{profile.to_json()['inputs']}: " + _problems(logger))


def refuse_misuse(logger) -> None:
    """TensorRT logs a refused setting (a pool size it does not accept) and builds on without it:
    fail instead, so the engine is what the options say."""
    misuse = [p for p in logger.problems if "API Usage Error" in p]
    if misuse:
        raise StageFailed("TensorRT refused the builder configuration: " + "; ".join(misuse),
                          hint="check the tensorrt.plan options (memory_pools, max_aux_streams, tiling)")


# -- after the build ------------------------------------------------------------------------------


def layer_report(trt, logger, plan: bytes, request: Request) -> list[dict]:
    """Per-layer precision and kernel: RTX logs it at build time; enterprise TensorRT's
    inspector needs the engine deserialized (on the GPU it was built on; not exercised here)."""
    if logger.layer_report is not None:
        return layers.from_log(logger.layer_report)
    if flavours.FLAVOURS[request.flavour].ahead_of_time:
        return []  # no GPU may be present: nothing more to ask
    runtime = trt.Runtime(logger)  # enterprise TensorRT only
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        return []
    inspector = engine.create_engine_inspector()
    return layers.from_inspector(inspector.get_engine_information(trt.LayerInformationFormat.JSON))


def _problems(logger) -> str:
    errors = [p for p in logger.problems if not p.startswith("WARNING")]
    return "; ".join((errors or logger.problems)[-5:]) or "TensorRT logged no reason"
