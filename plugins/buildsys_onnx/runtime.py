"""ONNX Runtime: the ``onnx.ort`` optimize stage and the runner for ``onnx`` and ``onnx.ort``.

The optimized graph is what ORT itself writes through ``SessionOptions.optimized_model_filepath``
for the CPU execution provider: ``basic`` and ``extended`` rewrites are portable across
machines (``extended`` adds com.microsoft fused ops, so only ORT runs the result); ``all`` adds
layout rewrites for this host's CPU, so the stage's hardware policy tags it with the host.
TensorRT never consumes ``onnx.ort`` (a different kind): optimizers are not stacked.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import BuildsysError, HardwarePolicy, StageFailed

from . import cudagraph, diagnose, versions
from .programs import optimize_companions

PRIMARY = "model.onnx"
DATA = "model.onnx.data"
_LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
_EXTERNAL = "session.optimized_model_external_initializers_"
_CARRIED = ("opset", "input_names", "output_names", "dynamic_dims", "consumers", "loaded_as")


def optimize_policy(options) -> HardwarePolicy:
    """``all`` is host-specific (CPU layout ops); the other levels run anywhere ORT does."""
    return HardwarePolicy.HOST if options is not None and options.level == "all" else HardwarePolicy.PORTABLE


def run_optimize(ctx, inputs, options) -> dict:
    """The stage's ``run``: ORT writes the graph it optimized for the CPU provider, nothing else."""
    import onnxruntime as ort

    source = inputs[0]
    session_options = _optimizing(ort, options, Path(ctx.out_dir) / PRIMARY)
    if source.meta.get("external_data"):  # over 2 GB, a model can only be written with its data beside it
        session_options.add_session_config_entry(_EXTERNAL + "file_name", DATA)
        session_options.add_session_config_entry(_EXTERNAL + "min_size_in_bytes", "1024")  # shapes stay inline
    ctx.progress(0, 1, f"ONNX Runtime {options.level} optimization")
    try:
        ort.InferenceSession(str(source.primary), session_options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise StageFailed(f"ONNX Runtime could not load the ONNX graph to optimize it: {exc}") from None
    external = (Path(ctx.out_dir) / DATA).exists()
    ort_name, ort_version = versions.onnxruntime() or ("onnxruntime", ort.__version__)
    meta = {key: source.meta[key] for key in _CARRIED if key in source.meta}
    programs = optimize_companions(ctx, source, lambda path: _optimizing(ort, options, path))
    if programs:
        meta["programs"] = programs
    minor = ".".join(ort_version.split(".")[:2])
    return dict(meta, primary=PRIMARY, level=options.level, external_data=external,
                tool_tag=f"ort{minor}-{options.level}", runtime={ort_name: ort_version},
                ops_before=source.meta.get("ops", {}), ops=_ops(Path(ctx.out_dir) / PRIMARY),
                host_specific=options.level == "all", built_for=ctx.hardware)


def _optimizing(ort, options, path: Path):
    """Session options under which ORT writes the graph it optimized at ``options.level`` to ``path``."""
    session_options = ort.SessionOptions()
    session_options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[options.level])
    session_options.optimized_model_filepath = str(path)
    return session_options


def _ops(path: Path) -> dict[str, int]:
    """Operator counts of the optimized graph (what the rewrite did), if onnx is at hand."""
    try:
        import onnx
    except ImportError:  # the stage needs only onnxruntime
        return {}
    return diagnose.count_ops(onnx.load(str(path), load_external_data=False))


def load_runner(artifact, device: str):
    """A callable running the artifact in ORT: list of numpy arrays in, list out (graph order).

    CPU by default; the CUDA provider only when ``device == "cuda"`` and this ORT build has it
    (ORT falls back to CPU, with a logged error, when CUDA libraries are missing). On the CUDA
    provider each input signature's run is captured once and replayed as a CUDA graph
    (``cudagraph.py``; ``BUILDSYS_ORT_CUDA_GRAPH=0`` runs the session plainly).
    """
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", cudagraph.provider_options(artifact.precision)))
        cudagraph.preload_cuda_libraries(ort)
    session_options = ort.SessionOptions()
    session_options.log_severity_level = 3
    notes = []
    if providers == ["CPUExecutionProvider"] and _has_qdq(artifact) and saturating_int8_cpu():
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        notes.append(SATURATION_NOTE)
    session = open_session(ort, artifact, session_options, providers)
    graph_inputs = [i.name for i in session.get_inputs()]
    names = artifact.meta.get("input_names") or graph_inputs

    graphed = None
    if session.get_providers()[0] == "CUDAExecutionProvider" and cudagraph.enabled():
        graphed = cudagraph.GraphedRunner(ort, artifact.primary, session_options, session, notes,
                                          cudagraph.provider_options(artifact.precision))

    def run(arrays):
        feeds = {name: array for name, array in zip(names, arrays) if name in graph_inputs}
        return graphed(feeds) if graphed is not None else session.run(None, feeds)

    run.providers = session.get_providers()
    run.notes = notes
    return run


def open_session(ort, artifact, session_options, providers):
    """An ORT session; a graph too new for this onnxruntime is named as such, with the way out."""
    try:
        return ort.InferenceSession(str(artifact.primary), session_options, providers=providers)
    except Exception as exc:
        text = str(exc)
        if "IR version" not in text and "opset" not in text.lower():
            raise
        meta = artifact.meta or {}
        raise BuildsysError(
            f"onnxruntime {ort.__version__} cannot load this graph (opset {meta.get('opset', '?')}, IR version "
            f"{meta.get('ir_version', '?')}): {text.strip().splitlines()[0][:200]}",
            hint="build the target with runtimes: {onnxruntime: '>=" + ort.__version__.rsplit(".", 1)[0]
                 + "'} so its opset and IR version are capped for this release, or upgrade onnxruntime") from None


SATURATION_NOTE = (
    "ONNX Runtime's fused int8 CPU kernels saturate on this x86 CPU (AVX2 without VNNI: u8 x s8 "
    "products are summed in pairs into int16), which corrupts graphs with full-range int8 weights; "
    "the graph was run with ONNX Runtime's Q/DQ fusions off, i.e. as written. To serve it with "
    "ONNX Runtime on such CPUs, quantize the weights to 7 bits (reduce_range) or use a VNNI CPU")

_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def _has_qdq(artifact) -> bool:
    return artifact.precision == "int8" or bool(artifact.meta.get("quantization"))


def saturating_int8_cpu(cpuinfo: str | None = None) -> bool:
    """True on an x86 CPU whose int8 dot products go through int16 pairs (no VNNI), where ONNX
    Runtime's u8s8 kernels overflow; False elsewhere (VNNI, ARM's sdot, or unknown)."""
    import platform

    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return False
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return bool(flags) and not any(flag in flags for flag in _VNNI_FLAGS)
