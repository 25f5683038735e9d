"""The ``onnx.fp16`` and ``onnx.bf16`` stages: precision lowering with modelopt AutoCast.

AutoCast keeps ops whose values or initializers overflow the low-precision range in fp32 and
inserts the casts; ``keep_io_types`` leaves the graph's inputs and outputs fp32. (The
onnxconverter-common converter produced BERT graphs ONNX Runtime refused to load; AutoCast's
are loaded and validated on the transformer examples, see tests/functional/test_precision.py.)
ONNX Runtime's CPU provider has no bf16 kernels for Conv, MatMul or Sub: bf16 graphs are for
TensorRT and GPUs, and the ONNX Runtime runner does not claim them.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from buildsys import StageFailed

from . import auto
from .options import LowerOptions
from .quantize import PRIMARY, require_fp32

_CARRIED = ("input_names", "output_names", "dynamic_dims", "consumers")
_LOW = {"fp16": 10, "bf16": 16}  # onnx.TensorProto.FLOAT16 / BFLOAT16


def run_fp16(ctx, inputs, options: LowerOptions) -> dict:
    return _lower(ctx, inputs, options, "fp16")


def run_bf16(ctx, inputs, options: LowerOptions) -> dict:
    return _lower(ctx, inputs, options, "bf16")


def needs_reference(options: LowerOptions) -> bool:
    """``exclude: auto`` judges its candidates on the held-out samples (``StageSpec.reference``)."""
    return auto.wanted(options.exclude)


def _lower(ctx, inputs, options: LowerOptions, precision: str) -> dict:
    source = require_fp32(inputs[0], f"onnx.{precision}")
    companions = sorted((source.meta.get("programs") or {}).items())
    if auto.wanted(options.exclude):
        if companions:
            raise StageFailed(f"exclude: auto judges one graph's outputs, and this graph has companion programs "
                              f"({', '.join(name for name, _ in companions)})",
                              hint="name the ops or nodes to keep in fp32 instead (exclude: [...], exclude_op_types)")
        return auto.search(ctx, inputs, options.tolerance, options.auto_rounds,
                           lambda kept, out: _convert(ctx, source, options, precision, options.exclude_nodes + kept, out),
                           lambda row, meta: True)
    from .exclusions import expand_each

    graphs = [source.primary] + [source.program(name).primary for name, _ in companions]
    selected = expand_each(graphs, options.exclude, f"options.onnx.{precision}.exclude")
    nodes = list(dict.fromkeys(options.exclude_nodes + selected[0]))
    meta = _convert(ctx, source, options, precision, nodes, Path(ctx.out_dir))
    programs = {}
    for (name, record), path, nodes in zip(companions, graphs[1:], selected[1:]):
        # a seq2seq encoder, lowered alike: the same op types and patterns (exclude_nodes name the primary's)
        out = Path(ctx.out_dir) / f"{name}.onnx"
        model = _autocast(ctx, path, options, precision, nodes, out, reference=False)
        programs[name] = dict(record, primary=out.name, lowering=summarize(model, precision, options, nodes))
    return dict(meta, programs=programs) if programs else meta


def _convert(ctx, source, options: LowerOptions, precision: str, nodes: list[str], out_dir: Path) -> dict:
    """AutoCast's graph, ``nodes`` (names) kept fp32, written to ``out_dir``."""
    import modelopt

    model = _autocast(ctx, source.primary, options, precision, nodes, out_dir / PRIMARY, reference=True)
    meta = {key: source.meta[key] for key in _CARRIED if key in source.meta}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    version = ".".join(modelopt.__version__.split(".")[:2])
    return dict(meta, primary=PRIMARY, opset=opset, tool_tag=f"autocast{version}",
                lowering=summarize(model, precision, options, nodes))


def _autocast(ctx, path: Path, options: LowerOptions, precision: str, nodes: list[str], out: Path, reference: bool):
    """AutoCast's graph of ``path``, ``nodes`` kept fp32, saved to ``out`` and returned. ``reference``:
    the calibration batches (the primary's inputs) pick what stays fp32, else random data."""
    import onnx
    from modelopt.onnx.autocast import convert_to_mixed_precision

    ctx.progress(0, 1, f"AutoCast {path.name} to {precision}")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            model = convert_to_mixed_precision(str(path), low_precision_type=precision,
                                               keep_io_types=options.keep_io_types,
                                               op_types_to_exclude=options.exclude_op_types or None,
                                               nodes_to_exclude=nodes or None,
                                               providers=["cpu"],
                                               calibration_data=_reference_data(ctx, options, Path(scratch))
                                               if reference else None)
        except Exception as exc:
            raise StageFailed(f"AutoCast of {path.name} to {precision} failed: {type(exc).__name__}: {exc}") from None
    # AutoCast leaves value_info shapes that no longer hold after its inserted casts (a rotary
    # half [.., 8] annotated [.., 16]); ONNX Runtime trusts them and fails at run time. The graph
    # is the same without them: runtimes infer shapes.
    del model.graph.value_info[:]
    onnx.save(model, str(out))
    return model


def resolve(options: LowerOptions, context) -> LowerOptions:
    """``reference: calibration`` needs the manifest's calibration block; its data's digest goes
    into the options (and the action key): other data may keep other nodes fp32. With
    ``exclude: auto`` the target's validation tolerance goes in too (the search aims at it)."""
    if auto.wanted(options.exclude):
        options = options.model_copy(update={"tolerance": context.tolerance})
    if options.reference != "calibration":
        return options
    if context.calibration is None:
        raise ValueError("reference: calibration needs a 'calibration:' block in the manifest (its data)")
    from .calibration import data_digest

    return options.model_copy(update={"calibration": dict(context.calibration,
                                                          digest=data_digest(context.calibration, context.root))})


def _reference_data(ctx, options: LowerOptions, scratch: Path) -> str | None:
    """The calibration batches as the .npz files AutoCast reads (one per batch), or None (random)."""
    if options.reference != "calibration":
        return None
    import numpy as np

    from .calibration import collect

    for index, batch in enumerate(collect(options.calibration, ctx.model, ctx.root, ctx.progress)):
        np.savez(scratch / f"batch{index:03d}.npz", **batch)
    return str(scratch)


def summarize(model, precision: str, options: LowerOptions, nodes: list[str]) -> dict:
    """Initializers by dtype, ops left in fp32 (by type) and casts inserted."""
    import onnx

    low = _LOW[precision]
    inits = Counter("low" if i.data_type == low else "fp32" if i.data_type == onnx.TensorProto.FLOAT else "other"
                    for i in model.graph.initializer)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)}
    kept = Counter(n.op_type for n in model.graph.node if n.op_type != "Cast"
                   and any(types.get(o) == onnx.TensorProto.FLOAT for o in n.output))
    lowered = sum(1 for n in model.graph.node if n.op_type != "Cast" and any(types.get(o) == low for o in n.output))
    return {"precision": precision, "keep_io_types": options.keep_io_types,
            "initializers": {"low": inits.get("low", 0), "fp32": inits.get("fp32", 0)},
            "nodes_low": lowered, "nodes_fp32_by_op": dict(sorted(kept.items())),
            "casts": sum(1 for n in model.graph.node if n.op_type == "Cast"),
            "excluded": {"op_types": options.exclude_op_types, "nodes": nodes, "patterns": options.exclude}}
