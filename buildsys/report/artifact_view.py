"""The page's view of the artifacts themselves: what each is, and where it came from."""

from __future__ import annotations

from ..artifacts import artifact_digest
from .html import esc, nbytes, num, table, td

#: Validation statuses that are not a failure: grey, not red (a failed validation writes no artifact).
NOT_RUN = {"not run", "none"}


def facts(record: dict | None) -> dict:
    """What a person compares before latency: hardware, precision, size, build time, accuracy."""
    if record is None:
        return {"built": False}
    validation = record.get("validation") or {}
    outputs = validation.get("outputs") or []
    return {"built": True, "kind": record.get("kind"), "hardware": record.get("hardware"),
            "precision": record.get("precision"), "size": size(record),
            "build_s": sum(step.get("seconds", 0.0) for step in record.get("chain", [])),
            "validation": validation.get("status", "none"), "why_not": validation.get("reason"),
            "cosine": min((o.get("cosine", 1.0) for o in outputs), default=None),
            "max_abs": max((o.get("max_abs", 0.0) for o in outputs), default=None)}


def size(record: dict) -> int:
    return sum(f.get("size", 0) for f in record.get("files", []))


def status_class(status: str) -> str:
    if status == "passed":
        return "ok"
    return "neutral" if status in NOT_RUN else "fail"


def artifacts_section(records: dict[str, dict | None]) -> list[str]:
    head = ["target", "kind", "hardware", "precision", "size", "build s", "validation", "min cosine",
            "max abs err", "why not validated"]
    rows = []
    for name, record in records.items():
        f = facts(record)
        if not f["built"]:
            rows.append(([td(name), td("-"), td("-"), td("-"), td("-"), td("-"),
                          td("not built", cls="neutral"), td("-"), td("-"), td("buildsys build", cls="t")],
                         ""))
            continue
        rows.append(([td(name), td(f["kind"]), td(f["hardware"]), td(f["precision"]), td(nbytes(f["size"]), f["size"]),
                      td(f"{f['build_s']:.1f}", f["build_s"]),
                      td(f["validation"], cls=status_class(f["validation"])),
                      td(num(f["cosine"], ".6f"), f["cosine"]), td(num(f["max_abs"], ".2e"), f["max_abs"]),
                      td(f["why_not"] or "", cls="t")], ""))
    return ["<h2>Artifacts</h2>",
            "<p class=note>Validation compares each artifact with the eager model on the held-out samples at "
            "build time; <span class=neutral>not run</span> means the build host could not run it (the reason "
            "is beside it), not that it failed: an artifact that fails validation is not written.</p>",
            table(head, rows, "artifacts", text_columns=4)]


def provenance_section(records: dict[str, dict | None]) -> list[str]:
    """Per built artifact: its digest (over artifact.json, which lists every file's sha256), the
    tools that made it, the ONNX opset, the build host, the stages."""
    head = ["target", "digest", "kind / precision / hardware", "tools", "opset", "built on", "buildsys", "stages"]
    rows = []
    for name, record in records.items():
        if record is None:
            continue
        digest = artifact_digest(record)
        tools = ", ".join(f"{k} {v}" for k, v in sorted((record.get("runtime") or {}).items())) or "-"
        meta = record.get("meta") or {}
        opset = meta.get("opset", meta.get("emitted_opset"))
        stages = " → ".join(step.get("stage", "?") for step in record.get("chain", []))
        rows.append(([td(name), td(f"<code class=digest data-target=\"{esc(name)}\">{esc(digest)}</code>", raw=True),
                      td(f"{record.get('kind')} / {record.get('precision')} / {record.get('hardware')}", cls="t"),
                      td(tools, cls="t"), td(num(opset, "d") if isinstance(opset, int) else "-", opset),
                      td(built_on(record.get("host") or {}), cls="t"), td(record.get("buildsys", "-")),
                      td(stages, cls="t")], ""))
    if not rows:
        return []
    return ["<h2>Provenance</h2>",
            "<p class=note>Digest: <code>buildsys.artifacts.artifact_digest</code> of the target's artifact.json "
            "(the one the lock, registries and signed provenance record; <code>buildsys verify</code> checks it). "
            "Tools: the versions the final stage ran with. Opset: the ONNX opset (ONNX kinds only).</p>",
            table(head, rows, "provenance", text_columns=3)]


def built_on(host: dict) -> str:
    """The build host as artifact.json records it: name, CPU (model when recorded), GPUs."""
    cpu = host.get("cpu_model") or host.get("cpu_tag") or host.get("arch") or "?"
    gpus = ", ".join(g.get("name", "?") for g in host.get("gpus", [])) or "no GPU"
    return f"{host.get('hostname', '?')}: {cpu}, {gpus}"
