"""Stage options made discoverable: the manifest's JSON Schema with each installed stage's
options (descriptions, enums, defaults) and each target ``format`` the plugins offer, and a
plain description of one stage's options for ``buildsys options``."""

from __future__ import annotations

import json
from typing import Any


def manifest_schema(catalog) -> dict:
    """``buildsys.manifest.json_schema()`` with the installed stages' options and formats in it."""
    from .manifest import json_schema

    schema = json_schema()
    defs = schema.setdefault("$defs", {})
    stages = {}
    for name, spec in sorted(catalog.stages.items()):
        if spec.options is None:
            continue
        defs.update(stage_defs(name, spec.options))
        stages[name] = {"$ref": f"#/$defs/options.{name}"}
    target = defs["Target"]["properties"]
    target["options"] = {"type": "object", "properties": stages, "additionalProperties": False,
                         "description": "options of the stages this target's chain runs, by stage name "
                                        "('buildsys options STAGE' describes them)"}
    formats = sorted({f for k in catalog.kinds.values() if k.ladder >= 2 for f in (k.name, *k.aliases)})
    target["format"] = {"type": "string", "enum": formats,
                        "description": "the kind of artifact to build (kinds and their aliases of the installed plugins)"}
    return schema


def stage_defs(stage: str, model) -> dict:
    """The JSON Schema of a stage's options model as ``$defs`` entries named ``options.<stage>``
    (nested definitions prefixed with the stage, so two stages' models never clash)."""
    prefix = f"options.{stage}"
    inner = model.model_json_schema(ref_template=f"#/$defs/{prefix}.{{model}}")
    nested = inner.pop("$defs", {})
    return {prefix: inner, **{f"{prefix}.{name}": body for name, body in nested.items()}}


def describe(stage: str, model) -> list[dict]:
    """One entry per option: name, type, default, choices, description."""
    schema = model.model_json_schema()
    entries = []
    for name, body in schema.get("properties", {}).items():
        entries.append({"name": name, "type": _type(body, schema.get("$defs", {})), "default": body.get("default"),
                        "choices": _choices(body), "description": body.get("description", ""),
                        "required": name in schema.get("required", [])})
    return entries


def _type(body: dict, defs: dict) -> str:
    if "$ref" in body:
        name = body["$ref"].rsplit("/", 1)[-1]
        return name if name not in defs else f"{{{', '.join(defs[name].get('properties', {}))}}}"
    if "anyOf" in body:
        return " | ".join(_type(b, defs) for b in body["anyOf"])
    if "const" in body:
        return json.dumps(body["const"])
    if "enum" in body:
        return " | ".join(json.dumps(v) for v in body["enum"])
    if body.get("type") == "array":
        return f"list[{_type(body.get('items', {}), defs)}]"
    return str(body.get("type", "any"))


def _choices(body: dict) -> list[Any] | None:
    for part in [body, *body.get("anyOf", [])]:
        if "enum" in part:
            return list(part["enum"])
        items = part.get("items", {})
        if "enum" in items:
            return list(items["enum"])
    return None
