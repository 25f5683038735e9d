"""Which ONNX opset to export: the highest that the exporter and every consumer accept.

Pure and cheap: runs at plan time in the driver, so it reads installed versions from package
metadata and looks them up in the tables below; it never imports onnx, onnxruntime or TensorRT.
Each table maps a version (major, minor) to the highest ``ai.onnx`` opset it handles; a
version between two rows takes the lower row, one past the last row takes the last row (we
cannot vouch for more than we checked), one before the first row is treated as shown.

Sources, so that a reader can extend the tables:

- the exporter: torch.onnx writes opset 18 and converts to the asked opset with onnxscript's
  version converter, which handles opsets up to its ``SUPPORTED_MAX_ONNX_OPSET``
  (``onnxscript/version_converter/_version_converter.py``: 25 in onnxscript 0.7.2, here and on the
  GPU machine; 23 in an older release, assumed for all before 0.7). Past that it falls back to the
  ONNX C API converter, which cannot lift operators newer than the graph's stamp: measured here,
  torch 2.13 exporting a GELU model at opset 26, 27 or 28 silently returns an opset-18 graph
  holding an opset-20 Gelu. So the exporter's ceiling is the lower of that and what the installed
  onnx defines (``onnx.helper.VERSION_TABLE`` of onnx 1.23.2: release -> ai.onnx opset).
- onnxruntime: the "ONNX opset support" table of onnxruntime.ai/docs/reference/compatibility.html
  (1.14..1.20); 1.30 and 1.32 measured with ``scripts/device/ort_opset_probe.py`` (the highest opset a
  model may be stamped with and still load: ORT refuses opsets its bundled ONNX has not released,
  "Opset N is under development", even where it has kernels for them; 1.30 on the project's GPU
  machine has opset-27 kernels yet refuses 27). Every release runs opset 7 and up.
- TensorRT: onnx-tensorrt ``docs/operators.md`` for 10.0 ("opset 9 to opset 20"); TensorRT 11.5
  release notes ("Added support for ONNX opset 25") and the TensorRT 11.x ONNX opset guide
  (maximum 25, minimum 9).
- TensorRT-RTX 1.7.1 (pip ``tensorrt-rtx-cu13``), measured here: its ONNX parser supports the
  opset-24 operators (TensorScatter, Swish) and none of the opset-26 ones (CumProd, BitCast),
  the parser generation of TensorRT 11.5; so 25. Older RTX releases: assumed 20 (TensorRT 10.0).
"""

from __future__ import annotations

from dataclasses import dataclass

from buildsys import PlanError

from . import versions

EXPORTER_NATIVE = 18  # torchlib's opset: other opsets are reached by version conversion

ONNXSCRIPT_MAX = {(0, 0): 23, (0, 7): 25}
ONNX_MAX = {(1, 13): 18, (1, 14): 19, (1, 15): 20, (1, 16): 21, (1, 17): 22, (1, 18): 23,
            (1, 19): 24, (1, 20): 25, (1, 21): 26, (1, 22): 27, (1, 23): 28}
ORT_MAX = {(1, 0): 11, (1, 3): 12, (1, 6): 13, (1, 8): 14, (1, 9): 15, (1, 11): 16, (1, 12): 17,
           (1, 14): 18, (1, 15): 19, (1, 17): 20, (1, 18): 21, (1, 30): 26, (1, 32): 28}
# The highest ONNX IR version each onnxruntime release loads (the same compatibility table,
# 1.0..1.20); a release past the table's rows is assumed to load what the last row does (IR 10:
# conservative, as ORT refuses an IR newer than its own with "Unsupported model IR version").
ORT_IR = {(1, 0): 6, (1, 3): 7, (1, 9): 8, (1, 16): 9, (1, 18): 10}
DEPLOY_RUNTIMES = ("onnxruntime", "tensorrt", "tensorrt-rtx")  # what a target's runtimes: may name here
TENSORRT_MAX = {"tensorrt": {(10, 0): 20, (11, 5): 25}, "tensorrt-rtx": {(0, 0): 20, (1, 7): 25}}
ORT_MIN, TENSORRT_MIN = 7, 9


@dataclass(frozen=True)
class Limit:
    """One component's accepted opsets, ``low..high``: ``key`` names it, ``label`` adds its version."""

    key: str
    label: str
    low: int
    high: int

    def describe(self) -> str:
        return f"{self.label} ({self.low}..{self.high})"


@dataclass(frozen=True)
class Choice:
    """The opset, what capped it (limit keys, or ``request``/``range``), and every limit seen."""

    opset: int
    limited_by: tuple[str, ...]
    limits: tuple[Limit, ...]

    @property
    def reason(self) -> str:
        return _reason(self)

    def meta(self) -> dict:
        return {"opset": self.opset, "opset_reason": self.reason, "opset_limited_by": list(self.limited_by),
                "opset_limits": {lim.label: [lim.low, lim.high] for lim in self.limits}}


def lookup(table: dict[tuple[int, int], int], version: str) -> int:
    """The table's opset for ``version``: its row, else the nearest lower row (or the first)."""
    from packaging.version import Version

    release = Version(version).release
    key = (release + (0, 0))[:2]
    rows = sorted(table)
    lower = [row for row in rows if row <= key]
    return table[lower[-1] if lower else rows[0]]


def auto_consumers(target_kinds) -> list[str]:
    """ONNX Runtime always (validation runs it), TensorRT when a target builds a plan from ONNX."""
    return ["onnxruntime"] + (["tensorrt"] if "tensorrt.plan" in target_kinds else [])


def limits(consumers, runtimes: dict | None = None) -> list[Limit]:
    """The exporter's limit, then each consumer's, from the installed versions; then each of the
    target's ``runtimes`` (where the graph must load), from the oldest release they admit."""
    onnx_version = versions.version_of("onnx")
    if onnx_version is None:
        raise PlanError("the onnx package is not installed, so no opset can be chosen",
                        hint="pip install 'buildsys[onnx]'")
    found = [_exporter_limit(onnx_version)]
    if "onnxruntime" in consumers:
        found += _ort_limits()
    if "tensorrt" in consumers:
        found += _tensorrt_limits()
    return found + [_deploy_limit(name, spec) for name, spec in sorted((runtimes or {}).items())]


def oldest_release(name: str, spec: str) -> tuple[int, int]:
    """The oldest (major, minor) of ``name`` that the specifier admits (every release in a range
    must load the graph, so the oldest caps it)."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    specifier = SpecifierSet(spec)
    majors = range(1, 2) if name == "onnxruntime" else range(0, 20)
    for major in majors:
        for minor in range(0, 100):
            if any(Version(f"{major}.{minor}.{patch}") in specifier for patch in (0, 99)):
                return major, minor
    raise ValueError(f"runtimes.{name}: no {name} release admits '{spec}'")


def _deploy_limit(name: str, spec: str) -> Limit:
    if name not in DEPLOY_RUNTIMES:
        raise ValueError(f"runtimes.{name}: onnx.export caps the graph for {', '.join(DEPLOY_RUNTIMES)}, "
                         f"not {name}")
    oldest = oldest_release(name, spec)
    table = ORT_MAX if name == "onnxruntime" else TENSORRT_MAX[name]
    version = ".".join(map(str, oldest))
    low = ORT_MIN if name == "onnxruntime" else TENSORRT_MIN
    return Limit(f"runtimes.{name}", f"{name} {spec} (from {version}; the target's runtimes)", low,
                 lookup(table, version))


def max_ir_version(runtimes: dict | None) -> int | None:
    """The highest IR version every onnxruntime the target's runtimes admit loads (None: no cap)."""
    spec = (runtimes or {}).get("onnxruntime")
    return lookup(ORT_IR, ".".join(map(str, oldest_release("onnxruntime", spec)))) if spec else None


def _exporter_limit(onnx_version: str) -> Limit:
    high, label = lookup(ONNX_MAX, onnx_version), f"onnx {onnx_version}"
    onnxscript_version = versions.version_of("onnxscript")
    if onnxscript_version is not None:  # missing: the stage reports it as unavailable
        high = min(high, lookup(ONNXSCRIPT_MAX, onnxscript_version))
        label += f", onnxscript {onnxscript_version}"
    return Limit("exporter", f"exporter ({label})", 1, high)


def _ort_limits() -> list[Limit]:
    installed = versions.onnxruntime()
    if installed is None:  # nothing to cap by; validation will report ORT missing on its own
        return []
    return [Limit("onnxruntime", f"{installed[0]} {installed[1]}", ORT_MIN, lookup(ORT_MAX, installed[1]))]


def _tensorrt_limits() -> list[Limit]:
    installed = versions.tensorrt()
    if not installed:  # the engine may be built elsewhere: assume the newest parsers we know
        return [Limit(flavour, f"{flavour} (not installed here; assumed {'.'.join(map(str, max(table)))})",
                      TENSORRT_MIN, table[max(table)]) for flavour, table in TENSORRT_MAX.items()]
    return [Limit(flavour, f"{flavour} {version}", TENSORRT_MIN, lookup(TENSORRT_MAX[flavour], version))
            for flavour, version in installed.items()]


def choose(request, consumers, runtimes: dict | None = None) -> Choice:
    """Make ``request`` ("auto", an int, or an ``OpsetRange``) concrete, or raise ``PlanError``."""
    found = limits(consumers, runtimes)
    if isinstance(request, int):
        refusing = [lim for lim in found if not lim.low <= request <= lim.high]
        if refusing:
            raise PlanError(f"opset {request} is not accepted by " + ", ".join(lim.describe() for lim in refusing),
                            hint="use an opset every consumer accepts, or opset: auto")
        return Choice(request, ("request",), tuple(found))
    low, high = max(lim.low for lim in found), min(lim.high for lim in found)
    if request != "auto":
        low, high = max(low, request.min), min(high, request.max)
        if low > high:
            raise PlanError(f"no opset in {request.min}..{request.max} is accepted by every consumer: "
                            + ", ".join(lim.describe() for lim in found),
                            hint="widen the range, or use opset: auto")
    capped = tuple(lim.key for lim in found if lim.high == high) or ("range",)
    return Choice(high, capped, tuple(found))


def explain(opset: int, limited_by, consumers, runtimes: dict | None = None) -> Choice:
    """The choice as the planner made it, rebuilt in the worker for the artifact's metadata."""
    return Choice(opset, tuple(limited_by or ()), tuple(limits(consumers, runtimes)))


def _reason(choice: Choice) -> str:
    accepted = ", ".join(lim.describe() for lim in choice.limits)
    if choice.limited_by == ("request",):
        why = f"opset {choice.opset}: asked for explicitly; accepted ranges: {accepted}"
    elif choice.limited_by == ("range",):
        why = f"opset {choice.opset}: the top of the requested range; accepted ranges: {accepted}"
    else:
        labels = [lim.label for lim in choice.limits if lim.key in choice.limited_by] or list(choice.limited_by)
        why = (f"opset {choice.opset}: the highest that the exporter and every consumer accept, "
               f"limited by {' and '.join(labels)}; accepted ranges: {accepted}")
    if choice.opset < EXPORTER_NATIVE:
        why += (f"; below the exporter's native opset {EXPORTER_NATIVE}, so the graph is converted "
                "down with onnx.version_converter at build time")
    return why


def resolve(options, context):
    """``StageSpec.resolve`` for onnx.export: concrete consumers and opset, at plan time."""
    consumers = (auto_consumers(context.target_kinds) if options.consumers == "auto"
                 else sorted(set(options.consumers)))
    runtimes = dict(getattr(context, "runtimes", None) or {}) or None
    choice = choose(options.opset, consumers, runtimes)
    return options.model_copy(update={"opset": choice.opset, "consumers": consumers, "runtimes": runtimes,
                                      "max_ir_version": max_ir_version(runtimes),
                                      "opset_limited_by": list(choice.limited_by)})
