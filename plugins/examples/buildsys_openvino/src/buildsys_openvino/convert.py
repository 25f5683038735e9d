"""The stages: ONNX -> OpenVINO IR, and fp16 weight compression of an IR."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from buildsys import StageFailed

from .runtime import openvino_version, read_ir

XML, BIN = "model.xml", "model.bin"


class ConvertOptions(BaseModel):
    """``options: {openvino.convert: {...}}`` in a target."""

    model_config = ConfigDict(extra="forbid")
    bound_dims: bool = Field(default=True, description=(
        "give each dynamic dim the manifest's [min..max] range: the CPU plugin plans memory for "
        "the bound, and an input outside it is refused instead of silently reallocated"))


def run_convert(ctx, inputs, options: ConvertOptions) -> dict:
    """The ``openvino.convert`` stage: read the ONNX graph with OpenVINO's ONNX frontend."""
    import openvino as ov

    source = inputs[0]
    ctx.progress(0, 2, "converting the ONNX graph")
    shapes = _bounded_shapes(ctx.model, ov) if options.bound_dims else None
    try:
        model = ov.convert_model(str(source.primary), input=shapes) if shapes else ov.convert_model(str(source.primary))
    except Exception as exc:  # OpenVINO raises plain RuntimeErrors: say which stage and what to try
        raise StageFailed(f"OpenVINO could not convert the ONNX graph: {_first_line(exc)}",
                          hint="see the node's log; an operator OpenVINO lacks needs a newer openvino") from None
    ctx.progress(1, 2, "saving the IR")
    return _save(ctx, model, ov, compress=False, meta=source.meta)


def run_fp16(ctx, inputs, options) -> dict:
    """The ``openvino.fp16`` stage: the same graph, weights stored as fp16."""
    import openvino as ov

    source = inputs[0]
    model = read_ir(ov.Core(), source)
    return _save(ctx, model, ov, compress=True, meta=source.meta)


def _save(ctx, model, ov, compress: bool, meta: dict) -> dict:
    # compress_to_fp16 defaults to True in save_model: an fp32 artifact must ask for fp32 weights
    ov.save_model(model, str(Path(ctx.out_dir) / XML), compress_to_fp16=compress)
    version = openvino_version() or ov.__version__
    return {"primary": XML, "weights": BIN, "tool_tag": "ov" + ".".join(version.split(".")[:2]),
            "runtime": {"openvino": version}, "weights_fp16": compress,
            "input_names": [i.get_any_name() for i in model.inputs],
            "output_names": [o.get_any_name() for o in model.outputs],
            "shapes": {i.get_any_name(): str(i.get_partial_shape()) for i in model.inputs},
            "onnx_opset": meta.get("opset")}


def _bounded_shapes(model_spec, ov) -> list | None:
    """(name, PartialShape) per manifest input, each named dim bounded to its [min..max]."""
    if not model_spec.inputs:
        return None
    shapes = []
    for spec in model_spec.inputs:
        dims = []
        for dim in spec.shape:
            if isinstance(dim, int):
                dims.append(ov.Dimension(dim))
                continue
            ranges = model_spec.dims[dim].ranges()  # one (min, opt, max) per profile or bucket
            dims.append(ov.Dimension(min(r[0] for r in ranges), max(r[2] for r in ranges)))
        shapes.append((spec.name, ov.PartialShape(dims)))
    return shapes


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
