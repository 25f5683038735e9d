"""Companion programs (``programs`` in a ``torch.exported`` artifact's metadata: a seq2seq
model's encoder beside its decoder step): exported to ``<name>.onnx`` at the primary's opset,
and optimized by ORT beside the primary. A companion is written inline (no external data):
one over protobuf's 2 GiB limit is refused by name.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import StageFailed


def export_companions(ctx, source, opset: int, table: dict, choice, options, checked_export, too_large) -> dict:
    """``{name: record}`` with each companion's ONNX file, its dims named like the primary's
    (``checked_export`` and ``too_large`` are ``export``'s own, passed in: it imports this module)."""
    import onnx
    import torch

    from . import naming

    records = {}
    for name, record in sorted((source.meta.get("programs") or {}).items()):
        program = torch.export.load(str(source.program(name).primary))
        model, _ = checked_export(ctx, program, record, opset, table, choice, options.max_ir_version)
        if too_large(model):
            raise StageFailed(f"the {name} program is over 2 GB, and companion programs are written without "
                              "external data", hint="not supported yet for models this large")
        dims = naming.name_dynamic_dims(model, record.get("dynamic_dims") or {})
        path = Path(ctx.out_dir) / f"{name}.onnx"
        onnx.save_model(model, str(path))
        records[name] = dict(record, primary=path.name, dynamic_dims=dims,
                             output_names=[o.name for o in model.graph.output])
    return records


def optimize_companions(ctx, source, session_options_for) -> dict:
    """``{name: record}`` with each companion's graph as ONNX Runtime optimized it."""
    import onnxruntime as ort

    records = {}
    for name, record in sorted((source.meta.get("programs") or {}).items()):
        path = Path(ctx.out_dir) / record["primary"]
        try:
            ort.InferenceSession(str(source.program(name).primary), session_options_for(path),
                                 providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise StageFailed(f"ONNX Runtime could not load the {name} graph to optimize it: {exc}") from None
        records[name] = dict(record)
    return records
