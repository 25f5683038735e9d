"""The ``onnx.export`` stage: ``torch.exported`` (.pt2) -> ``onnx`` (model.onnx [+ model.onnx.data]).

Exports the clean ExportedProgram with the dynamo exporter (never a compiled model, per the
design), then trusts nothing: the emitted opset is checked and converted when the exporter
silently kept another one, dynamic axes are renamed after the manifest's dims and verified,
and the saved file must pass ``onnx.checker`` (full) and strict shape inference.
torch and onnx are imported inside the functions: this module is imported by every process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from buildsys import StageFailed

from . import diagnose, naming, opsets, translations, versions
from .programs import export_companions

PRIMARY = "model.onnx"
DATA = "model.onnx.data"
PROTOBUF_LIMIT = 2**31  # a serialized ModelProto cannot reach 2 GiB
GRAPH_HEADROOM = 64 * 2**20  # room for the graph itself beside the initializers


def run_export(ctx, inputs, options) -> dict:
    """The stage's ``run``: returns metadata that records the opset and why, names, dims, translations."""
    source = inputs[0]
    choice = opsets.explain(options.opset, options.opset_limited_by, options.consumers, options.runtimes)
    ctx.progress(0, 3, "loading the ExportedProgram")
    program = load_program(ctx, source)
    table, owners = translations.collect(ctx.hook)
    written: dict = {}  # the IR version the exporter wrote, before the target's runtimes capped it
    model, opset, emitted, fallback = export_working(
        ctx, program, source.meta, choice, table,
        lambda at: _export_checked(ctx, program, source.meta, at, table, choice, options.max_ir_version, written))
    dims = naming.name_dynamic_dims(model, source.meta.get("dynamic_dims") or {})
    external = write(model, Path(ctx.out_dir), options.external_data, checked=True)
    programs = export_companions(ctx, source, opset, table, choice, options, _export_checked,
                                 over_protobuf_limit)
    deploy = {"runtimes": options.runtimes, "emitted_ir_version": written.get("ir")} if options.runtimes else {}
    meta = dict(choice.meta(), **deploy, ir_version=model.ir_version, primary=PRIMARY, tool_tag=f"opset{opset}",
                emitted_opset=emitted,
                external_data=external, dynamic_dims=dims, translations=owners, consumers=list(options.consumers),
                input_names=source.meta.get("input_names") or [i.name for i in model.graph.input],
                output_names=[o.name for o in model.graph.output],
                graph_inputs=[i.name for i in model.graph.input], ops=diagnose.count_ops(model),
                exporter={name: versions.version_of(name) for name in ("torch", "onnx", "onnxscript")},
                **({"programs": programs} if programs else {}),
                **({"loaded_as": source.meta["loaded_as"]} if source.meta.get("loaded_as") else {}))
    if fallback:
        note = (f"opset auto chose {choice.opset}, where the export failed ({fallback[0]['error']}); "
                f"exported at opset {opset}, the highest that worked")
        ctx.log(note)
        meta.update(opset=opset, opset_reason=f"{note}; {choice.reason}", opset_fallback=fallback, warnings=[note])
    return meta


def fallback_opsets(choice) -> list[int]:
    """The opsets to try, best first: an automatic choice above the exporter's native opset
    falls back to it (some translations for newer opsets, such as attention with fewer key/value
    heads than query heads, fail where the opset-18 one works); an explicit request does not."""
    automatic = choice.limited_by not in (("request",), ("range",))
    return [choice.opset] + ([opsets.EXPORTER_NATIVE] if automatic and choice.opset > opsets.EXPORTER_NATIVE else [])


def export_working(ctx, program, meta: dict, choice, table, attempt=None):
    """``(model, opset, emitted opset, failed attempts)`` at the first of ``fallback_opsets`` whose
    export, conversion and checks pass; the first failure is raised when every one fails."""
    attempt = attempt or (lambda opset: _export_checked(ctx, program, meta, opset, table, choice))
    failed, first = [], None
    for opset in fallback_opsets(choice):
        ctx.progress(1, 3, f"exporting at opset {opset}")
        try:
            model, emitted = attempt(opset)
            return model, opset, emitted, failed
        except StageFailed as exc:
            first = first or exc
            failed.append({"opset": opset, "error": " ".join(exc.message.split())[:300]})
            ctx.log(f"export at opset {opset} failed: {exc.message}")
    if len(failed) > 1:
        first.message += f" (opset {failed[-1]['opset']} was tried too: {failed[-1]['error']})"
    raise first


def _export_checked(ctx, program, meta: dict, opset: int, table: dict, choice, max_ir: int | None = None,
                    written: dict | None = None):
    model = export_program(ctx, program, meta, opset, table, choice)
    emitted = default_opset(model)
    ctx.progress(2, 3, f"opset {emitted} emitted; converting if needed, checking, saving")
    model = ensure_opset(model, opset)
    ir = cap_ir_version(model, max_ir)
    if written is not None:
        written["ir"] = ir
    if not over_protobuf_limit(model):
        check(model)  # an invalid graph at this opset is a reason to try the next one
    return model, emitted


def load_program(ctx, source):
    """The ExportedProgram; a model with custom operators needs its module imported first."""
    import torch

    try:
        return torch.export.load(str(source.primary))
    except Exception as first:  # unknown custom ops: importing the model registers them
        ctx.log(f"torch.export.load failed ({type(first).__name__}: {first}); "
                "importing the model's entrypoint to register its custom operators, then retrying")
        try:
            ctx.load_model()
            return torch.export.load(str(source.primary))
        except Exception as exc:
            raise StageFailed(f"cannot load the ExportedProgram {source.primary.name}: {exc}",
                              hint="was it saved by this torch version? rebuild the torch.exported node") from exc


def export_program(ctx, program, meta: dict, opset: int, table: dict, choice):
    """torch.onnx.export (dynamo) of the ExportedProgram, inputs and outputs named per the manifest."""
    import torch

    try:
        exported = torch.onnx.export(program, dynamo=True, opset_version=max(opset, opsets.EXPORTER_NATIVE),
                                     custom_translation_table=table or None, verbose=False)
    except Exception as exc:
        found = diagnose.unmapped_ops(program, table, opset, ctx.root)
        if found is None:  # the exporter's internals moved: take the operator its error names
            found = diagnose.from_exporter_error(exc)
        if found:
            raise StageFailed(diagnose.unmapped_message(found, opset, _exporter_max(choice))) from None
        raise StageFailed(f"torch.onnx.export failed: {diagnose.root_cause(exc)}",
                          hint="the node log has the exporter's full report") from exc
    naming.name_io(exported.model, meta.get("input_names"), meta.get("output_names"))
    return exported.model_proto


def _exporter_max(choice) -> int:
    return next((lim.high for lim in choice.limits if lim.key == "exporter"), choice.opset)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def default_opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def ensure_opset(model, opset: int):
    """The model at ``opset``: the exporter may silently emit another, so convert (or say who blocks)."""
    import onnx

    if default_opset(model) == opset:
        return model
    if over_protobuf_limit(model):
        raise StageFailed(f"the exporter produced opset {default_opset(model)}, not {opset}, and a model over "
                          "2 GB cannot be converted (the ONNX converter serializes it whole)",
                          hint=f"ask for opset {default_opset(model)}")
    try:
        converted = onnx.version_converter.convert_version(model, opset)
    except Exception as exc:
        blockers = diagnose.conversion_blockers(model, opset) or [_first_line(exc)]
        raise StageFailed(f"the exporter produced opset {default_opset(model)} and the graph cannot be "
                          f"converted to opset {opset}; blocked by: {'; '.join(blockers)}",
                          hint="ask for an opset at or above the one each blocking operator needs "
                               "(or opset: auto), or rewrite the model to avoid the operator") from None
    if default_opset(converted) != opset:
        raise StageFailed(f"onnx.version_converter returned opset {default_opset(converted)}, not {opset}")
    return converted


def cap_ir_version(model, cap: int | None) -> int:
    """Stamp the model with IR version ``cap`` when the exporter wrote a newer one (what the
    target's runtimes load); returns the version the exporter wrote. The checker, run next,
    refuses a graph that uses something the older IR version lacks."""
    emitted = model.ir_version
    if cap is not None and emitted > cap:
        model.ir_version = cap
    return emitted


def write(model, out_dir: Path, setting, checked: bool = False) -> bool:
    """Check and save the model; returns whether its initializers went to external data.

    External data when ``setting`` is true, or ("auto") when the model would pass protobuf's
    2 GiB limit. The checks run on the proto before saving (saving moves initializers out of
    it), or on the saved file when the model is too large to hold as one proto.
    """
    oversize = over_protobuf_limit(model)
    if oversize and setting is False:
        raise StageFailed("the model is over 2 GB, which ONNX can only store with external data",
                          hint="set options.onnx.export.external_data to auto or true")
    if not oversize and not checked:
        check(model)
    save(model, out_dir, oversize if setting == "auto" else setting)
    if oversize:
        check(out_dir / PRIMARY)
    return (out_dir / DATA).exists()


def over_protobuf_limit(model) -> bool:
    """Whether the serialized model would pass protobuf's 2 GiB limit (so needs external data)."""
    weights = sum(len(t.raw_data) or t.ByteSize() for t in model.graph.initializer)
    return weights + GRAPH_HEADROOM >= PROTOBUF_LIMIT


def save(model, out_dir: Path, external: bool) -> None:
    """Write model.onnx, and with ``external`` every initializer of 1 KiB or more to model.onnx.data.

    Smaller tensors (shapes, axes) stay inline, where shape inference can read them.
    """
    import onnx

    if external:  # onnx moves out only raw_data tensors; typed fields (float_data ...) would stay
        _to_raw_data(model)
    onnx.save_model(model, str(out_dir / PRIMARY), save_as_external_data=bool(external),
                    all_tensors_to_one_file=True, location=DATA, size_threshold=1024)


def _to_raw_data(model) -> None:
    from onnx import numpy_helper

    for tensor in model.graph.initializer:
        if not tensor.HasField("raw_data") and tensor.data_location != 1:  # 1: already EXTERNAL
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))


def check(model) -> None:
    """onnx.checker with full_check and strict shape inference: on the proto, or the file if over 2 GB."""
    import onnx

    try:
        if isinstance(model, Path):
            onnx.checker.check_model(str(model), full_check=True)
            with tempfile.TemporaryDirectory() as scratch:
                onnx.shape_inference.infer_shapes_path(str(model), str(Path(scratch) / PRIMARY), strict_mode=True)
        else:
            onnx.checker.check_model(model, full_check=True)
            onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:
        raise StageFailed(f"the exported graph fails onnx validation: {_first_line(exc)}",
                          hint="the exporter produced an invalid graph; try another opset, and report it") from None
