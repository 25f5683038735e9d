"""The ``jax.export`` stage: the model lowered to StableHLO for a set of XLA platforms.

Outputs: ``model.jax_exported``, ``Exported.serialize()`` (the StableHLO module with the params
embedded as constants, its calling convention version, input/output avals, the platforms and
the shape assertions that check the dims' bounds at call time), and ``model.mlir``, the same
module as readable text. Lowering for cuda or tpu needs no such device: it runs on any host, so
the output is tagged with the platform set it was lowered for (``cpu.cuda.tpu``), which the
options decide, not the host.

jax.export itself accepts any platform name (``platforms=("gpu2",)`` lowers without a word),
so names are checked here. A failure is diagnosed in steps: a concrete trace at the dims' opt
sizes (do the manifest's inputs fit the function?), then the symbolic export (does the function
hold for every size the dims allow?), then one export per platform (which platform cannot lower
an operation?).
"""

from __future__ import annotations

import difflib
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from buildsys import StageFailed, user_frame

from . import inputs as model_inputs
from .source import path_key

PRIMARY = "model.jax_exported"
MLIR = "model.mlir"
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")  # XLA platform names; the canonical order of a tag
DEFAULT_PLATFORMS = ("cpu", "cuda")
WIDE_DTYPES = ("int64", "float64")


class ExportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platforms: Union[Literal["auto"], list[str]] = Field(
        default="auto",
        description="XLA platforms to lower for (cpu, cuda, rocm, tpu), from any host; auto: the "
                    "platform the target's hardware names, else cpu and cuda")

    @field_validator("platforms")
    @classmethod
    def _known(cls, value):
        if value == "auto":
            return value
        if not value:
            raise ValueError(f"name at least one platform: {', '.join(PLATFORMS)}")
        for name in value:
            check_platform(name)
        return value


def check_platform(name: str) -> None:
    """Raise ``ValueError`` for a name that is not an XLA platform, with a "did you mean"."""
    if name in PLATFORMS:
        return
    close = ["cuda"] if name.lower() in ("gpu", "nvidia") else difflib.get_close_matches(name.lower(), PLATFORMS, n=1)
    raise ValueError(f"unknown platform '{name}': jax.export lowers for {', '.join(PLATFORMS)}"
                     + (f" (did you mean '{close[0]}'?)" if close else ""))


def resolve(options: ExportOptions, context) -> ExportOptions:
    """Make ``auto`` concrete and put the platforms in canonical order, so equal sets share a node."""
    wanted = options.platforms
    if wanted == "auto":
        wanted = platforms_for(getattr(context, "hardware", None))
    return options.model_copy(update={"platforms": [p for p in PLATFORMS if p in set(wanted)]})


def platforms_for(request: str | None) -> tuple[str, ...]:
    """The platforms a target's hardware request names (``cuda-sm90`` -> cuda); none: cpu, cuda."""
    if request is None or request == "any":
        return DEFAULT_PLATFORMS
    if "-" not in request and "." in request:  # a platform set, cpu.cuda.tpu
        return tuple(request.split("."))
    platform = request.split("-")[0]
    return (platform,) if platform in PLATFORMS else DEFAULT_PLATFORMS


def output_tag(options: ExportOptions) -> str:
    """The hardware tag: the platform set lowered for (``cpu.cuda.tpu``; one platform: ``cuda``)."""
    return ".".join(options.platforms)


def configure_jax() -> None:
    """Debug locations in the StableHLO: the model's own line only (no buildsys frames), its file
    without the folder, so the bytes depend on the model's files and not on where they sit or
    on buildsys's line numbers (``deterministic`` holds across checkouts and machines)."""
    import jax

    for name, value in (("jax_include_full_tracebacks_in_locations", False),
                        ("jax_hlo_source_file_canonicalization_regex", r".*/")):
        try:
            jax.config.update(name, value)
        except (AttributeError, KeyError):  # a jax without the flag: the bytes keep its locations
            pass


def refuse_wide_dtypes(model) -> None:
    wide = [f"{s.name} ({s.dtype})" for s in model.inputs if s.dtype in WIDE_DTYPES]
    if wide:
        raise StageFailed(f"input(s) {', '.join(wide)}: JAX computes in 32 bits unless jax_enable_x64 is "
                          "set, so the export would silently narrow them",
                          hint="declare them int32/float32 in model.inputs")


def output_names(out) -> list[str]:
    """Names of the function's outputs in flattened order: dict keys, ``output_<i>``, or ``output``."""
    import jax

    leaves = jax.tree_util.tree_flatten_with_path(out)[0]
    if len(leaves) == 1 and not leaves[0][0]:
        return ["output"]
    names = [path_key(path).replace("/", ".") for path, _ in leaves]
    return [f"output_{n}" if n[:1].isdigit() else n for n in names]


def check_inputs(ctx, model):
    """Trace at the dims' opt sizes: the function's outputs, or why the inputs do not fit it."""
    import jax

    specs = model_inputs.example_specs(ctx.model)
    try:
        out = jax.eval_shape(model.bound(), *specs)
    except Exception as exc:
        shown = ", ".join(f"{s.name}: {s.dtype}{list(x.shape)}" for s, x in zip(ctx.model.inputs, specs))
        raise StageFailed(f"the function does not accept the manifest's inputs ({shown}): "
                          f"{type(exc).__name__}: {first_lines(str(exc), 3)}", where=user_frame(exc, ctx.root),
                          hint="check model.inputs (how many, their shapes and dtypes) against "
                               "apply(params, *inputs)") from None
    if not jax.tree_util.tree_leaves(out):
        raise StageFailed("the function returns no arrays", hint="return an array or a pytree of arrays")
    return out


def export_model(ctx, model, platforms: tuple[str, ...]):
    """``jax.export`` with the manifest's symbolic dims; a failure says whether dims or a platform are to blame."""
    import jax
    from jax import export

    function = jax.jit(model.bound())
    try:
        return export.export(function, platforms=platforms)(*model_inputs.symbolic_specs(ctx.model))
    except StageFailed:
        raise
    except Exception as exc:
        raise _diagnose(exc, ctx, function, platforms) from None


def _diagnose(exc: Exception, ctx, function, platforms: tuple[str, ...]) -> StageFailed:
    from jax import export

    concrete = model_inputs.example_specs(ctx.model)
    failing = []
    for platform in platforms:
        try:
            export.export(function, platforms=(platform,))(*concrete)
        except Exception as error:
            failing.append((platform, error))
    if failing:
        lines = [f"{p}: {type(e).__name__}: {first_lines(str(e), 2)}" for p, e in failing]
        return StageFailed(f"jax.export cannot lower the function for {', '.join(p for p, _ in failing)}: "
                           + "; ".join(lines), where=user_frame(failing[0][1], ctx.root),
                           hint="drop that platform from options.jax.export.platforms, or avoid the "
                                "operation (a platform-specific custom call, a missing lowering)")
    ranges = ", ".join(f"{n}: {lo}..{hi}" for n, (lo, hi) in model_inputs.dims_summary(ctx.model).items() if hi > lo)
    return StageFailed(f"jax.export cannot lower the function for every size the manifest's dims allow "
                       f"({ranges}): {type(exc).__name__}: {first_lines(str(exc), 3)}", where=user_frame(exc, ctx.root),
                       hint="the function fixes or constrains a dim: narrow the dim in model.dims to the sizes "
                            "it supports, or make the code shape-generic (x.shape[0], not a constant)")


def first_lines(text: str, count: int) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()[:count] if line.strip())


def run_export(ctx, inputs, options: ExportOptions) -> dict:
    """The stage's ``run``: lower, serialize, write the text, and read the file back."""
    import jax

    configure_jax()
    refuse_wide_dtypes(ctx.model)
    model = ctx.load_model()
    names = output_names(check_inputs(ctx, model))
    platforms = tuple(options.platforms)
    ctx.progress(0, 1, f"lowering for {', '.join(platforms)}")
    exported = export_model(ctx, model, platforms)
    (ctx.out_dir / PRIMARY).write_bytes(bytes(exported.serialize()))
    (ctx.out_dir / MLIR).write_text(exported.mlir_module())
    _check_round_trip(ctx.out_dir / PRIMARY, exported)
    version = exported.calling_convention_version
    return {"primary": PRIMARY, "platforms": list(exported.platforms), "calling_convention_version": version,
            "input_names": [s.name for s in ctx.model.inputs], "output_names": names,
            "input_shapes": [list(s.shape) for s in ctx.model.inputs],
            "in_avals": [str(a) for a in exported.in_avals], "out_avals": [str(a) for a in exported.out_avals],
            "dims": model_inputs.dims_summary(ctx.model), "dynamic_dims": model_inputs.dynamic_dims(ctx.model),
            "nr_devices": exported.nr_devices, "tool_tag": f"cc{version}",
            "runtime": {"jax": jax.__version__}, "mlir": MLIR}


def _check_round_trip(path, exported) -> None:
    """The written file must deserialize to the same signature (no device needed)."""
    from jax import export

    loaded = export.deserialize(bytearray(path.read_bytes()))
    same = (loaded.platforms, [str(a) for a in loaded.in_avals], [str(a) for a in loaded.out_avals]) == \
           (exported.platforms, [str(a) for a in exported.in_avals], [str(a) for a in exported.out_avals])
    if not same:
        raise StageFailed(f"{path.name} does not deserialize to the exported signature "
                          f"({loaded.in_avals} -> {loaded.out_avals} on {loaded.platforms})")
