"""Turn exporter and converter failures into one error a user can act on.

The exporter stops at the first operator it cannot translate; users need the whole list at
once, each with the model line that produced it, and the ways out. The ONNX version converter
fails with an assertion from deep inside one adapter; users need the operator that blocks the
conversion. Both are computed only after a failure, so a good export pays nothing.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field

# Checks the exporter erases before translating (torch.onnx ``_fx_passes.remove_assertion_nodes``):
# they have no translation and need none, so naming them would hide the operator that fails.
DROPPED = frozenset({"aten.sym_constrain_range_for_size.default", "aten.sym_constrain_range.default",
                     "aten._assert_async.default", "aten._assert_async.msg", "aten._assert_scalar.default",
                     "aten._assert_tensor_metadata.default"})
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n\s*(?P<code>[^\n]*)')


@dataclass
class Unmapped:
    """One operator without a translation, and where the model uses it."""

    op: str
    nodes: int = 0
    lines: list[str] = field(default_factory=list)
    why: str = ""


def op_name(target) -> str:
    """``torch.ops.ns.name.overload``: how a plugin names the operator in its translation dict."""
    if hasattr(target, "overloadpacket"):  # an OpOverload prints as ns.name.overload
        return f"torch.ops.{target}"
    return str(target)


def source_line(stack_trace: str | None, root=None) -> str:
    """The deepest frame of the model's own code (not torch's) in an FX node's stack trace."""
    frames = list(_FRAME.finditer(stack_trace or ""))
    torch_dir = _torch_dir()
    own = [f for f in frames if not (torch_dir and f["file"].startswith(torch_dir))] or frames
    if not own:
        return "(no source line recorded)"
    frame = own[-1]
    path = frame["file"]
    if root is not None and path.startswith(str(root)):
        path = os.path.relpath(path, root)
    return f"{path}:{frame['line']} in {frame['func']}: {frame['code'].strip()}"


def _torch_dir() -> str | None:
    spec = importlib.util.find_spec("torch")
    return os.path.join(os.path.dirname(spec.origin), "") if spec and spec.origin else None


def unmapped_ops(program, table: dict, opset: int, root=None) -> list[Unmapped] | None:
    """Every operator of ``program`` the exporter cannot translate, or None if unknowable.

    Replays the exporter's own dispatch (decompose with the translation registry, then look up
    every node). Those are torch.onnx internals, so any surprise returns None and the caller
    falls back to the one operator named by the exporter's error.
    """
    try:
        from torch.onnx._internal.exporter import _dispatching, _fx_passes, _registration

        registry = _registration.ONNXRegistry.from_torchlib(opset_version=max(opset, 18))
        for target, function in table.items():
            registry.register_op(target, function)
        decomposed = _fx_passes.decompose_with_registry(program, registry)
        found: dict[str, Unmapped] = {}
        for node in decomposed.graph.nodes:
            if node.op == "call_function" and str(node.target) not in DROPPED:
                function, why = _dispatching.dispatch(node, registry)
                if function is None:
                    _record(found, node, why, root)
        return list(found.values())
    except Exception:  # internals changed: the caller reports what the exporter said
        return None


def _record(found: dict, node, why: str, root) -> None:
    entry = found.setdefault(op_name(node.target), Unmapped(op_name(node.target)))
    entry.nodes += 1
    if not entry.why and (why or "").strip():
        entry.why = why.strip().splitlines()[0][:160]
    line = source_line(node.meta.get("stack_trace"), root)
    if line not in entry.lines:
        entry.lines.append(line)


def from_exporter_error(exc: BaseException) -> list[Unmapped]:
    """Fallback: the operator named in the exporter's ConversionError chain, if any."""
    text = "\n".join(str(e) for e in _chain(exc))
    ops = sorted(set(re.findall(r"target=(torch\.ops\.[\w.]+)", text)) - {f"torch.ops.{op}" for op in DROPPED})
    return [Unmapped(op, nodes=1, lines=["(source line unknown)"]) for op in ops]


def root_cause(exc: BaseException) -> str:
    """``Type: first line`` of the innermost exception, without the exporter's colour codes."""
    inner = list(_chain(exc))[-1]
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(inner)).strip()
    return f"{type(inner).__name__}: {text.splitlines()[0] if text else ''}"


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def unmapped_message(found: list[Unmapped], opset: int, max_opset: int) -> str:
    lines = [f"the ONNX exporter has no translation for {len(found)} operator(s) at opset {opset}:"]
    for entry in found:
        nodes = f"{entry.nodes} node{'s' if entry.nodes != 1 else ''}"
        lines.append(f"  {entry.op} ({nodes}){'; exporter: ' + entry.why if entry.why else ''}")
        lines += [f"      at {where}" for where in entry.lines[:5]]
    example = found[0].op if found else "torch.ops.NS.OP.default"
    newer = (f"a newer opset, if a later one translates it (options.onnx.export.opset, up to {max_opset} here)"
             if opset < max_opset else
             f"a newer opset: none here ({max_opset} is this exporter's highest; newer torch/onnx may translate it)")
    lines += ["ways out:", f"  - {newer}",
              f"  - a translation from a plugin: implement the hook buildsys_onnx_translations, "
              f"returning {{{example}: <onnxscript function>}}",
              "  - rewrite the model so it avoids the operator (express it with standard torch ops)"]
    return "\n".join(lines)


def conversion_blockers(model, target: int) -> list[str]:
    """Operators of ``model`` (default domain) that keep it from being converted to ``target``."""
    import onnx

    current = _default_opset(model)
    if target > current:  # up: the converter cannot lift nodes already newer than the stamp
        return [f"{op} (an opset-{since} operator in an opset-{current} graph; the converter cannot lift it)"
                for op, since in _newer_than(model, current)]
    missing = _missing_at(model, target)
    if missing:
        return missing
    step = current  # no op is missing: find the first step down that fails and who changed there
    while step > target:
        try:
            model = onnx.version_converter.convert_version(model, step - 1)
        except Exception as exc:
            changed = sorted({n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")
                              and _since(n.op_type, step) == step})
            reason = str(exc).strip().splitlines()[-1][:200]
            return [f"{op} (changed in opset {step}; converting to {step - 1} fails: {reason})"
                    for op in changed] or [f"(no operator identified; converter said: {reason})"]
        step -= 1
    return []


def _newer_than(model, stamp: int) -> list[tuple[str, int]]:
    """(op, the opset it first appears in) for default-domain ops the ``stamp`` opset lacks."""
    import onnx

    newer = []
    for op in sorted({n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}):
        try:
            onnx.defs.get_schema(op, stamp, "")
        except onnx.defs.SchemaError:
            newer.append((op, _introduced(op)))
    return newer


def _missing_at(model, target: int) -> list[str]:
    return [f"{op} (does not exist before opset {since})" for op, since in _newer_than(model, target)]


def _introduced(op: str) -> int:
    import onnx

    version = onnx.defs.get_schema(op, onnx.defs.onnx_opset_version(), "").since_version
    while version > 1:
        try:
            version = onnx.defs.get_schema(op, version - 1, "").since_version
        except onnx.defs.SchemaError:
            break
    return version


def _since(op: str, opset: int) -> int | None:
    import onnx

    try:
        return onnx.defs.get_schema(op, opset, "").since_version
    except onnx.defs.SchemaError:
        return None


def _default_opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def count_ops(model) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for node in model.graph.node:
        counts[f"{node.domain}::{node.op_type}" if node.domain else node.op_type] += 1
    return dict(sorted(counts.items()))
