"""The two TensorRT flavours, what each can build for, and the plan-time choice between them.

``tensorrt`` (enterprise TensorRT, ``import tensorrt``) builds an engine on the GPU it will run
on: a single compute capability, the build host's. ``tensorrt-rtx`` (TensorRT-RTX,
``import tensorrt_rtx``) builds ahead of time without a GPU, for one or several compute
capabilities from a fixed list, and its runtime does not run on data-centre GPUs such as
Hopper (sm90). Both share the network / ONNX parser / optimization profile / builder config API.

Pure and cheap: runs at plan time in the driver, so versions come from package metadata and
nothing here imports either flavour.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
from dataclasses import dataclass

from buildsys import HardwarePolicy, PlanError, Requirement

RTX_INSTALL = "pip install 'buildsys[tensorrt]'  (TensorRT-RTX: tensorrt-rtx-cu13)"
TENSORRT_INSTALL = ("install NVIDIA TensorRT from NVIDIA's index on a GPU machine "
                    "(the 'tensorrt' wheels on PyPI are placeholders that download it)")


@dataclass(frozen=True)
class Flavour:
    """One TensorRT flavour: its module, distributions, tag prefix and build abilities.

    ``sms``: the compute capabilities it can build for ahead of time (empty: it builds for
    the GPU it runs on). ``runs_on``: those its runtime can execute on (None: any).
    """

    name: str
    module: str
    label: str
    distributions: tuple[str, ...]
    tag: str
    install: str
    sms: tuple[int, ...] = ()
    runs_on: tuple[int, ...] | None = None

    @property
    def ahead_of_time(self) -> bool:
        return bool(self.sms)


# TensorRT-RTX 1.7's ComputeCapability enum: SM75, SM80, SM86, SM89, SM120, SM121 (a unit test
# checks this against the installed enum). Turing needs an explicit target; Hopper and
# data-centre Blackwell (sm90, sm100) are not RTX targets at all.
RTX_SMS = (75, 80, 86, 89, 120, 121)

FLAVOURS = {
    "tensorrt": Flavour("tensorrt", "tensorrt", "TensorRT", ("tensorrt", "tensorrt-cu13", "tensorrt-cu12"),
                        "trt", TENSORRT_INSTALL),
    "tensorrt-rtx": Flavour("tensorrt-rtx", "tensorrt_rtx", "TensorRT-RTX",
                            ("tensorrt-rtx-cu13", "tensorrt-rtx-cu12", "tensorrt-rtx"), "trtrtx", RTX_INSTALL,
                            sms=RTX_SMS, runs_on=RTX_SMS),
}


@functools.lru_cache(maxsize=None)  # registration asks several times per process; installs do not change
def installed(flavour: str) -> tuple[str, str] | None:
    """(distribution, version) of ``flavour`` if one of its distributions is installed."""
    for name in FLAVOURS[flavour].distributions:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def default_flavour() -> str:
    """Enterprise TensorRT when it is installed, TensorRT-RTX otherwise."""
    return "tensorrt" if installed("tensorrt") else "tensorrt-rtx"


def requirement(flavour: str | None = None) -> Requirement:
    """The distribution a stage of ``flavour`` (default: the preferred one) needs."""
    spec = FLAVOURS[flavour or default_flavour()]
    found = installed(spec.name)
    return Requirement(found[0] if found else spec.distributions[0], "", spec.install)


def tool_tag(flavour: str, version: str) -> str:
    """``trtrtx1.7`` / ``trt10.13``: flavour and major.minor, as engine file names carry them."""
    return FLAVOURS[flavour].tag + ".".join(version.split(".")[:2])


def tool_versions() -> dict[str, str]:
    """{distribution: version} of every installed flavour, for the lockfile."""
    return dict(hit for hit in (installed(name) for name in FLAVOURS) if hit is not None)


def policy(options) -> HardwarePolicy:
    """TensorRT-RTX builds ahead of time for any listed GPU; enterprise TensorRT on the GPU itself."""
    flavour = getattr(options, "flavour", "auto")
    if flavour == "auto":
        flavour = default_flavour()
    return HardwarePolicy.AHEAD_OF_TIME if FLAVOURS[flavour].ahead_of_time else HardwarePolicy.TARGET


_CUDA_TAG = re.compile(r"^cuda(?:-(sm\d+(?:\.sm\d+)*))?$")


def sms_of(tag: str) -> tuple[int, ...] | None:
    """(86, 89) for ``cuda-sm86.sm89``; () for a bare ``cuda``; None for a non-CUDA tag."""
    match = _CUDA_TAG.match(tag or "")
    if match is None:
        return None
    return tuple(int(part[2:]) for part in (match.group(1) or "").split(".") if part)


def check_hardware(flavour: str, tag: str | None) -> None:
    """Raise ``PlanError`` when ``flavour`` cannot build for ``tag``, saying why and what would."""
    spec = FLAVOURS[flavour]
    sms = sms_of(tag) if tag is not None else None
    if sms is None:
        raise PlanError(f"a TensorRT engine runs on an NVIDIA GPU, and the target asks for {tag or 'no hardware'}",
                        hint="set hardware to the GPUs it must run on, e.g. hardware: [sm86, sm89] or l4")
    unserved = [sm for sm in sms if spec.sms and sm not in spec.sms]
    if unserved:
        raise PlanError(f"{spec.label} cannot build for {', '.join(f'sm{sm}' for sm in unserved)}: "
                        f"it builds for {', '.join(f'sm{sm}' for sm in spec.sms)} only",
                        hint=_other_flavour_hint(flavour, unserved))
    if not spec.ahead_of_time and len(sms) > 1:
        raise PlanError(f"{spec.label} builds an engine for the one GPU it runs on, and the target asks for "
                        f"{len(sms)} compute capabilities ({tag})",
                        hint="make one target per compute capability, or use flavour: tensorrt-rtx for a multi-CC engine")


def _other_flavour_hint(flavour: str, unserved: list[int]) -> str:
    if flavour == "tensorrt-rtx":
        where = "installed" if installed("tensorrt") else "not installed here"
        return (f"data-centre GPUs such as sm90 (H100, H200) and sm100 (B200) need enterprise TensorRT "
                f"(flavour: tensorrt, {where}), built on such a GPU")
    return "use flavour: tensorrt-rtx for RTX-class GPUs"


def resolve_flavour(requested: str) -> str:
    """The concrete flavour for ``requested`` ("auto", "tensorrt", "tensorrt-rtx"), or ``PlanError``."""
    flavour = default_flavour() if requested == "auto" else requested
    if installed(flavour) is None:
        spec = FLAVOURS[flavour]
        raise PlanError(f"{spec.label} ({' or '.join(spec.distributions)}) is not installed", hint=spec.install)
    return flavour
