"""The ``onnx.int8`` stage: explicit symmetric INT8 Q/DQ, calibrated on the manifest's data.

The activation ranges are computed once (``ranges.py``: ONNX Runtime's calibrators, entropy over
2048 bins) and applied by one of two quantizers, which write the same form — the one TensorRT's
ONNX parser accepts (symmetric, zero point 0, no int32 bias Q/DQ, Q/DQ on the inputs of
Conv/MatMul/Gemm) and ONNX Runtime runs:

- ``modelopt``: nvidia-modelopt's ONNX PTQ places the Q/DQ by TensorRT's rules (it skips GEMV
  and GEMMs with K or N under 16: no Tensor Core gain), with explicit calibration shapes
  (without them dynamic-batch GEMMs are skipped);
- ``ort``: onnxruntime.quantization's static QDQ quantizer with TensorRT-compatible settings.

The ranges are computed before modelopt quantizes: its quantize patches ONNX Runtime's
calibrators for the rest of the process, so a pooled worker in which it ran is retired after
the job (``buildsys_worker_reset`` in this plugin).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

from buildsys import PlanContext, StageFailed

from . import auto, calibration, exclusions, qdq, ranges
from .options import DEFAULT_OP_TYPES, Int8Options

PRIMARY = "model.onnx"
RANGES = "ranges.json"
CACHE = "calibration.cache"  # the ranges in TensorRT calibration-cache format
_CARRIED = ("input_names", "output_names", "dynamic_dims", "consumers")


def resolve(options: Int8Options, context: PlanContext) -> Int8Options:
    """Put the manifest's calibration block and the data's digest into the options (and so into
    the action key): new calibration data recalibrates, a change downstream does not. With
    ``exclude: auto`` the target's validation tolerance goes in too (the search aims at it)."""
    block = context.calibration
    if block is None:
        raise ValueError("an int8 target needs a 'calibration:' block in the manifest "
                         "(data, samples, method) to compute its ranges")
    if block["method"] == "percentile" and block.get("percentile") is None:
        raise ValueError("calibration.method percentile needs calibration.percentile (e.g. 99.99)")
    resolved = dict(block, digest=calibration.data_digest(block, context.root))
    tolerance = context.tolerance if auto.wanted(block.get("exclude")) else None
    return options.model_copy(update={"calibration": resolved, "tolerance": tolerance})


def needs_reference(options: Int8Options) -> bool:
    """``exclude: auto`` judges its candidates on the held-out samples (``StageSpec.reference``)."""
    return auto.wanted((options.calibration or {}).get("exclude"))


def run_int8(ctx, inputs, options: Int8Options) -> dict:
    source = require_fp32(inputs[0], "onnx.int8")
    block = options.calibration
    op_types = block.get("op_types") or list(DEFAULT_OP_TYPES)
    batches = calibration.collect(block, ctx.model, ctx.root, ctx.progress)
    axes = calibration.sample_axes(ctx.model)
    ctx.progress(0, 2, f"computing {block['method']} ranges")
    data = ranges.compute(source.primary, calibration.uniform(batches, axes, _batch_limits(ctx.model, axes)),
                          block, op_types)

    def build(exclude: list[str], out: Path) -> dict:
        return _quantize(ctx, source, dict(block, exclude=exclude), batches, axes, data, op_types, options, out)

    if auto.wanted(block.get("exclude")):
        return auto.search(ctx, inputs, options.tolerance, block["auto_rounds"], build,
                           lambda row, meta: row["node"] in meta["quantization"]["quantized"])
    return build(exclusions.expand(source.primary, block.get("exclude") or [], "calibration.exclude"),
                 Path(ctx.out_dir))


def _quantize(ctx, source, block: dict, batches, axes, data, op_types, options, out_dir: Path) -> dict:
    """Q/DQ placed on ``data``'s ranges, leaving ``block['exclude']`` (node names) in float, into ``out_dir``."""
    out = out_dir / PRIMARY
    ranges.write_trt_cache(ranges.amax(data), out_dir / CACHE)
    ctx.progress(1, 2, f"placing Q/DQ with {options.calibrator}")
    if options.calibrator == "modelopt":
        with private_copy(source) as model:  # modelopt rewrites the model file it is given, in place
            version = _modelopt(model, out, calibration.stack(batches, axes), block, op_types, options,
                                out_dir / CACHE)
    else:
        version = _ort(source.primary, out, data, block, op_types)
    return _describe(ctx, source, out, batches, block, op_types, options.calibrator, version,
                     [axes[spec.name] for spec in ctx.model.inputs])


def _batch_limits(model, axes: dict) -> tuple[int, int]:
    """(min, max) of the batch dim (the one the sample axes hold), for regrouping batches."""
    for spec in model.inputs:
        axis = axes.get(spec.name)
        if axis is not None and isinstance(spec.shape[axis], str) and spec.shape[axis] in model.dims:
            ranges = model.dims[spec.shape[axis]].ranges()
            return min(r[0] for r in ranges), max(r[2] for r in ranges)
    return 1, 1 << 30


@contextlib.contextmanager
def private_copy(source):
    """The input graph's files copied to a temporary folder: its primary there. Inputs are shared
    with the build cache (hard links), and modelopt's quantize saves its shape-inferred model over
    the path it is given (measured: the cached model.onnx changed under onnx.int8)."""
    with tempfile.TemporaryDirectory(prefix="buildsys-int8-input-") as tmp:
        for name, path in source.files.items():
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        yield Path(tmp) / source.primary.relative_to(source.directory)


def require_fp32(source, stage: str):
    if source.precision != "fp32":
        raise StageFailed(f"{stage} lowers an fp32 graph; its input carries {source.precision}",
                          hint="build it from the fp32 ONNX export (drop the earlier precision stage from the pipeline)")
    return source


def _modelopt(model: Path, out: Path, data: dict, block, op_types, options, cache: Path) -> str:
    """modelopt places the Q/DQ nodes (TensorRT's rules: no GEMV or K/N < 16 GEMMs, no bias
    Q/DQ) and then takes the scales from ``cache`` (its own pass is max calibration); ``data``
    is the calibration set whole, one array per input."""
    import modelopt
    from modelopt.onnx.quantization import quantize

    shapes = ",".join(f"{name}:{'x'.join(str(d) for d in array.shape)}" for name, array in data.items())
    try:
        quantize(str(model), quantize_mode="int8", calibration_data=data, calibration_method="max",
                 calibration_cache_path=str(cache), calibration_shapes=shapes, calibration_eps=["cpu"],
                 op_types_to_quantize=op_types, nodes_to_exclude=block.get("exclude") or None,
                 high_precision_dtype=options.high_precision, output_path=str(out), log_level="WARNING")
    except Exception as exc:
        raise StageFailed(f"modelopt INT8 quantization failed: {type(exc).__name__}: {exc}") from None
    if not out.is_file():
        raise StageFailed("modelopt INT8 quantization wrote no model", hint="see the node's log")
    return f"modelopt{'.'.join(modelopt.__version__.split('.')[:2])}"


def _ort(model: Path, out: Path, data, block, op_types) -> str:
    """ONNX Runtime's static QDQ quantizer with TensorRT-compatible settings, on ``data``'s ranges."""
    import onnxruntime
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}
    with tempfile.TemporaryDirectory(prefix="buildsys-ranges-") as tmp:
        cache = Path(tmp) / "ranges.json"
        ranges.write_ort_cache(data, cache)
        try:
            quantize_static(str(model), str(out), None, quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=op_types, per_channel=block.get("per_channel", True),
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=data.calibration_method, calibration_cache_path=str(cache),
                            nodes_to_exclude=block.get("exclude") or None, extra_options=extra)
        except Exception as exc:
            raise StageFailed(f"ONNX Runtime INT8 quantization failed: {type(exc).__name__}: {exc}") from None
    return f"ortq{'.'.join(onnxruntime.__version__.split('.')[:2])}"


def _describe(ctx, source, out: Path, batches, block, op_types, calibrator: str, version: str,
              axes: list[int | None]) -> dict:
    """Metadata: what was quantized and with which ranges; ranges.json for the coverage check."""
    import onnx

    model = onnx.load(str(out))
    values = qdq.constants(model.graph)  # every initializer as numpy: once, for both
    summary = qdq.summarize(model, values, op_types, block.get("exclude") or [])
    ranges = qdq.activation_ranges(model, values)
    (out.parent / RANGES).write_text(json.dumps(ranges, indent=1, sort_keys=True))
    warnings = []
    if summary["quantized_nodes"] == 0:
        warnings.append(f"no {'/'.join(op_types)} node was quantized: the graph has none (or all are excluded); "
                        "the int8 artifact runs in its original precision")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    summary["coverage"] = qdq.weight_coverage(model, values, summary["quantized"])
    line = qdq.weight_coverage_warning(summary["coverage"], op_types) if summary["quantized_nodes"] else None
    if line:
        warnings.append(line)
    ctx.log(f"quantized {summary['quantized_nodes']} node(s); left out {len(summary['left_out_nodes'])}")
    meta = {key: source.meta[key] for key in _CARRIED if key in source.meta}
    return dict(meta, primary=PRIMARY, opset=opset, tool_tag=f"{version}-{block['method']}",
                calibration={"calibrator": calibrator, "method": block["method"],
                             "percentile": block.get("percentile"), "samples": block["samples"],
                             "data": block["data"], "digest": block["digest"],
                             "sample_axes": axes, "sample_digests": calibration.sample_digests(batches, axes)},
                quantization=summary, **({"warnings": warnings} if warnings else {}))
