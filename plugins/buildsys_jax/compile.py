"""The ``xla.compile`` stage: the StableHLO compiled by XLA for a device of this host, serialized.

An XLA executable is static-shaped, so one is compiled per combination of sizes (``sizes``;
default: each dim's min, opt and max) and all of them are packed in one archive,
``model.xla.zip``: ``index.json`` (platform, device kind, jaxlib, shapes) and one
``exec_<i>.bin`` per executable.

What is recorded is what XLA actually compiled for, read back from the executable's devices:
``jit(...).lower(...).compile()`` compiles for the host's device whatever platform the module
was lowered for, so a tag taken from the request could name hardware the executable never saw.
The stage refuses to tag an executable whose device differs from the planned tag.

Serialization is ``jax.experimental.serialize_executable``: a pickle of the PJRT executable,
backend-specific (it loads only with the same jaxlib, on the same platform and device kind) and,
like any pickle, never to be loaded from an untrusted source. The pytree structures it returns
are not stored: inputs and outputs are flat tuples, rebuilt from their counts at load time.
"""

from __future__ import annotations

import json
import zipfile
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from buildsys import BackendUnavailable, StageFailed

from . import inputs as model_inputs
from .versions import JAX_INSTALL, version_of

PRIMARY = "model.xla.zip"
INDEX = "index.json"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entries carry no build time


class CompileOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sizes: Union[Literal["auto"], dict[str, list[int]]] = Field(
        default="auto",
        description="sizes per dim to compile an executable for (XLA executables are static-shaped); "
                    "auto: each dim's min, opt and max")


def platform_of(tag: str) -> str:
    return "cuda" if tag.startswith("cuda") else "cpu"


def host_device(platform: str):
    """The first device jax has for ``platform``, or ``BackendUnavailable`` saying how to get one."""
    import jax

    try:
        return jax.devices(platform)[0]
    except RuntimeError:
        raise BackendUnavailable(f"jax {jax.__version__} has no {platform} backend on this host",
                                 hint=JAX_INSTALL) from None


def compute_capability(device) -> int | None:
    """``90`` for an H100 (jax reports ``"9.0"``); None where the device has none (CPU)."""
    value = getattr(device, "compute_capability", None)
    return int(str(value).replace(".", "")) if value else None


def compiled_devices(compiled) -> set:
    """The devices an executable was actually compiled for, read from its shardings."""
    import jax

    shardings = jax.tree_util.tree_leaves([compiled.input_shardings, compiled.output_shardings])
    return {device for sharding in shardings for device in sharding.device_set}


def check_compiled_for(compiled, tag: str) -> dict:
    """Facts about the device XLA compiled for; ``StageFailed`` if they contradict ``tag``."""
    import jax

    platform = platform_of(tag)
    devices = compiled_devices(compiled)
    offered = set(jax.devices(platform))  # compared by identity: jax calls a CUDA device's platform "gpu"
    facts = [{"platform": platform if d in offered else d.platform, "device_kind": d.device_kind,
              "sm": compute_capability(d)} for d in devices]
    wrong = not devices or not devices <= offered
    sms = [int(s[2:]) for s in tag.split("-", 1)[1].split(".")] if tag.startswith("cuda-") else []
    wrong |= bool(sms) and any(f["sm"] is not None and f["sm"] not in sms for f in facts)
    if wrong:
        raise StageFailed(f"XLA compiled for {facts}, not for {tag}: refusing to tag the executable {tag}",
                          hint="build on a host with that device (or an executor that has one)")
    return facts[0]


def compile_one(exported, model, sizes: dict[str, int], device):
    """The exported module compiled for ``device`` at these sizes; outputs flattened to a tuple."""
    import jax
    from jax.sharding import SingleDeviceSharding

    flat = jax.jit(lambda *xs: tuple(jax.tree_util.tree_leaves(exported.call(*xs))))
    sharding = SingleDeviceSharding(device)
    specs = [jax.ShapeDtypeStruct(model_inputs.shape_for(s, sizes), model_inputs.dtype_of(s), sharding=sharding)
             for s in model.inputs]
    return flat.lower(*specs).compile(), [list(s.shape) for s in specs]


def serialize(compiled, platform: str) -> bytes:
    from jax.experimental.serialize_executable import serialize as pjrt_serialize

    try:
        return pjrt_serialize(compiled)[0]
    except (ValueError, NotImplementedError) as exc:
        raise StageFailed(f"XLA on {platform} cannot serialize this executable with jaxlib "
                          f"{version_of('jaxlib')}: {exc}") from None


def load_exported(path):
    from jax import export

    return export.deserialize(bytearray(path.read_bytes()))


def run_compile(ctx, inputs, options: CompileOptions) -> dict:
    """The stage's ``run``: one executable per size combination, checked, serialized, archived."""
    source = inputs[0]
    exported = load_exported(source.primary)
    platform = platform_of(ctx.hardware)
    if platform not in exported.platforms:
        raise StageFailed(f"the StableHLO input was lowered for {', '.join(exported.platforms)}, not {platform}",
                          hint=f"add {platform} to options: {{jax.export: {{platforms: [...]}}}} of this target")
    device = host_device(platform)
    grid = model_inputs.size_grid(ctx.model, None if options.sizes == "auto" else options.sizes)
    entries, blobs, facts = [], [], {}
    for i, sizes in enumerate(grid):
        ctx.progress(i, len(grid), f"compiling {sizes} for {ctx.hardware}")
        compiled, shapes = compile_one(exported, ctx.model, sizes, device)
        facts = check_compiled_for(compiled, ctx.hardware)
        blobs.append(serialize(compiled, platform))
        entries.append({"file": f"exec_{i}.bin", "sizes": sizes, "shapes": shapes})
    index = {"format": 1, "platform": facts["platform"], "device_kind": facts["device_kind"], "sm": facts["sm"],
             "jaxlib": version_of("jaxlib"), "inputs": source.meta.get("input_names"),
             "outputs": source.meta.get("output_names"), "dtypes": [s.dtype for s in ctx.model.inputs],
             "executables": entries}
    write_archive(ctx.out_dir / PRIMARY, index, blobs)
    return {"primary": PRIMARY, "platform": index["platform"], "device_kind": index["device_kind"],
            "compute_capability": index["sm"], "compiled_for": ctx.hardware, "sizes": [e["sizes"] for e in entries],
            "input_names": index["inputs"], "output_names": index["outputs"],
            "calling_convention_version": source.meta.get("calling_convention_version"),
            "serialization": "jax.experimental.serialize_executable (PJRT pickle: same jaxlib, platform and "
                             "device kind only; trusted sources only)",
            "tool_tag": f"jaxlib{index['jaxlib']}", "runtime": {"jaxlib": index["jaxlib"]}}


def write_archive(path, index: dict, blobs: list[bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo(INDEX, FIXED_TIME), json.dumps(index, indent=1, sort_keys=True))
        for entry, blob in zip(index["executables"], blobs):
            archive.writestr(zipfile.ZipInfo(entry["file"], FIXED_TIME), blob)


def read_archive(path) -> tuple[dict, list[bytes]]:
    with zipfile.ZipFile(path) as archive:
        index = json.loads(archive.read(INDEX))
        return index, [archive.read(e["file"]) for e in index["executables"]]
