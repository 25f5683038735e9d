"""Hardware tags, their aliases, and the description of this host.

Tag grammar (canonical forms)::

    any                       portable, runs anywhere
    cpu | cpu-<arch>[-<isa>]  e.g. cpu-x86_64-avx512, cpu-aarch64
    cuda | cuda-sm<N>[.sm<M>...]   e.g. cuda-sm90, cuda-sm86.sm89 (one engine, several CCs)
    tpu | rocm                the other XLA platforms (no probe: this host never has them)
    <platform>.<platform>...  a platform set, e.g. cpu.cuda.tpu: one artifact lowered for
                              several XLA platforms (jax.export); it runs where any of them is

``cpu`` and ``cuda`` without details are requests ("whatever this host has"); a built
artifact carries a concrete tag, or a bare platform / platform set when it is IR lowered per
platform and not per device. Aliases name products: h100 -> cuda-sm90.
"""

from __future__ import annotations

import difflib
import functools
import os
import platform
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BuildsysError, IncompatibleHardware

# Product names to compute capability (major*10 + minor).
ALIASES: dict[str, int] = {
    "h100": 90, "h200": 90, "gh200": 90, "h800": 90,
    "a100": 80, "a800": 80, "a30": 80,
    "a10": 86, "a10g": 86, "a40": 86, "rtx3090": 86, "rtx3080": 86, "a6000": 86,
    "l4": 89, "l40": 89, "l40s": 89, "rtx4090": 89, "rtx4080": 89,
    "b200": 100, "gb200": 100, "b100": 100,
    "rtx5090": 120, "rtx5080": 120,
    "t4": 75, "v100": 70,
}

ISA_LEVELS = ("baseline", "avx2", "avx512")

#: XLA platform names, in canonical order: what a platform set tag lists.
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")

_SM = re.compile(r"^(?:sm_?)?(\d{2,3})$")
_CPU = re.compile(r"^cpu(?:-(?P<arch>[a-z0-9_]+?)(?:-(?P<isa>baseline|avx2|avx512))?)?$")
_CUDA = re.compile(r"^cuda(?:-(?P<sms>sm\d{2,3}(?:\.sm\d{2,3})*))?$")
_PLATFORM_SET = re.compile(r"^(?:cpu|cuda|rocm|tpu)(?:\.(?:cpu|cuda|rocm|tpu))+$")


class HardwareError(BuildsysError):
    """A hardware name that is neither a tag nor a known alias."""


@dataclass(frozen=True)
class HardwareTag:
    """A parsed tag. ``device`` is ``any``, ``cpu``, ``cuda``, ``tpu``, ``rocm`` or ``set``
    (a platform set, listed in ``platforms``); empty fields mean 'any'."""

    device: str
    arch: str | None = None
    isa: str | None = None
    sms: tuple[int, ...] = ()
    platforms: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.device == "set":
            return ".".join(self.platforms)
        if self.device == "cpu":
            return "-".join(p for p in ("cpu", self.arch, self.isa) if p)
        if self.device == "cuda" and self.sms:
            return "cuda-" + ".".join(f"sm{sm}" for sm in self.sms)
        return self.device

    @property
    def concrete(self) -> bool:
        return self.device in ("any", "set") or bool(self.arch or self.sms)

    def covers(self, request: HardwareTag) -> bool:
        """Whether an artifact tagged ``self`` runs on every platform ``request`` names, compared
        by platform only: ``cpu.cuda`` covers ``cuda-sm90`` and ``cpu.cuda``, not ``tpu``."""
        mine = set(self.platforms or (self.device,))
        return "any" in mine or set(request.platforms or (request.device,)) <= mine

    @property
    def filename_part(self) -> str:
        """The tag as it appears in wheel-style file names: ``cuda_sm86.sm89``."""
        return str(self).replace("-", "_")


def known_names() -> list[str]:
    return ["any", "cpu", "cuda", "rocm", "tpu", *sorted(ALIASES)]


def parse(value: str | list[str]) -> HardwareTag:
    """Parse a tag, an alias, an SM name, or a list of those (merged into one CUDA tag)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise HardwareError("empty hardware list", hint="name at least one device, e.g. [sm86, sm89]")
        return _merge([parse(item) for item in value], value)
    text = str(value).strip().lower()
    if text in ALIASES:
        return HardwareTag("cuda", sms=(ALIASES[text],))
    if text in ("any", "tpu", "rocm"):
        return HardwareTag(text)
    if _PLATFORM_SET.match(text):
        named = set(text.split("."))
        if len(named) == 1:
            return parse(named.pop())
        return HardwareTag("set", platforms=tuple(p for p in PLATFORMS if p in named))
    if m := _SM.match(text):
        return HardwareTag("cuda", sms=(int(m.group(1)),))
    if m := _CPU.match(text):
        return HardwareTag("cpu", m.group("arch"), m.group("isa"))
    if m := _CUDA.match(text):
        sms = tuple(sorted({int(s[2:]) for s in (m.group("sms") or "").split(".") if s}))
        return HardwareTag("cuda", sms=sms)
    close = difflib.get_close_matches(text, known_names(), n=1)
    hint = f"did you mean '{close[0]}'?" if close else (
        "use any, cpu, cpu-x86_64[-avx2|-avx512], cuda-sm90, sm86, or a product name: "
        + ", ".join(sorted(ALIASES)))
    raise HardwareError(f"unknown hardware '{value}'", hint=hint)


def _merge(tags: list[HardwareTag], original) -> HardwareTag:
    if len(tags) == 1:
        return tags[0]
    if any(t.device != "cuda" or not t.sms for t in tags):
        raise HardwareError(f"hardware list {list(original)} mixes devices",
                            hint="a list names several CUDA compute capabilities, e.g. [sm86, sm89]")
    return HardwareTag("cuda", sms=tuple(sorted({sm for t in tags for sm in t.sms})))


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    sm: int
    memory_mb: int = 0


@dataclass
class Host:
    """This machine, as plugins describe it through ``buildsys_probe_hardware``."""

    arch: str
    isa: str | None
    hostname: str = ""
    gpus: list[Gpu] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)
    cpu_model: str = ""
    cpus: int = 0
    memory_mb: int = 0

    @classmethod
    def basic(cls) -> Host:
        """CPU facts only; plugins add the rest."""
        arch = platform.machine().lower() or "unknown"
        arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
        return cls(arch=arch, isa=_cpu_isa(arch), hostname=socket.gethostname(), cpu_model=_cpu_model(),
                   cpus=os.cpu_count() or 0, memory_mb=_memory_mb())

    def add_gpu(self, gpu: Gpu) -> None:
        self.gpus.append(gpu)

    @property
    def cpu_tag(self) -> HardwareTag:
        return HardwareTag("cpu", self.arch, self.isa)

    @property
    def sms(self) -> tuple[int, ...]:
        return tuple(sorted({gpu.sm for gpu in self.gpus}))

    def tags(self) -> list[HardwareTag]:
        """Concrete tags of what this host can run."""
        return [self.cpu_tag] + [HardwareTag("cuda", sms=(sm,)) for sm in self.sms]

    def match(self, request: HardwareTag) -> HardwareTag | None:
        """The concrete tag this host offers for ``request``, or None if it has no such device."""
        if request.device == "any":
            return request
        if request.device == "set":  # runs where any member does
            return next(filter(None, (self.match(HardwareTag(p)) for p in request.platforms)), None)
        if request.device == "cpu":
            return self._match_cpu(request)
        if request.device != "cuda":
            return None  # tpu, rocm: nothing probes them
        if not self.sms:
            return None
        if not request.sms:
            return HardwareTag("cuda", sms=(self.sms[0],))
        return request if set(request.sms) <= set(self.sms) else None

    def _match_cpu(self, request: HardwareTag) -> HardwareTag | None:
        if request.arch and request.arch != self.arch:
            return None
        if request.isa and ISA_LEVELS.index(request.isa) > ISA_LEVELS.index(self.isa or "baseline"):
            return None
        return self.cpu_tag

    def describe(self) -> dict:
        return {
            "hostname": self.hostname, "arch": self.arch, "isa": self.isa,
            "cpu_model": self.cpu_model, "cpus": self.cpus, "memory_mb": self.memory_mb,
            "cpu_tag": str(self.cpu_tag), "microarch": (cpu_target() or {}).get("microarch", ""),
            "gpus": [{"index": g.index, "name": g.name, "sm": g.sm, "memory_mb": g.memory_mb}
                     for g in self.gpus],
            "tags": [str(t) for t in self.tags()],
            "facts": self.facts,
        }


# -- CPU microarchitecture (host-compiled artifacts) ------------------------------------------
#
# An ISA level lumps CPUs together (Skylake-X and Sapphire Rapids are both avx512), while code
# compiled on and for a host (AOTInductor, XLA, text.bin) may use any instruction the build host
# has. So a stage that builds for a ``cpu-...`` tag records the build host's microarchitecture,
# named as archspec names it (the names Spack and compilers use), with its feature set; a runner
# checks it before loading, and refuses a CPU that lacks a feature instead of dying with SIGILL.

CPU_TARGET = "cpu_target"  # the key of that record in a stage's metadata (and artifact.json meta)


def cpu_target() -> dict | None:
    """``{"arch", "microarch", "vendor", "features"}`` of this CPU (None without archspec)."""
    found = _cpu_target()
    return dict(found, features=list(found["features"])) if found else None


@functools.lru_cache(maxsize=1)
def _cpu_target() -> dict | None:
    try:
        import archspec.cpu
    except ImportError:
        return None
    host = archspec.cpu.host()
    return {"arch": str(host.family), "microarch": host.name, "vendor": host.vendor,
            "features": tuple(sorted(host.features))}


def check_cpu_target(recorded: dict | None, what: str) -> None:
    """Refuse to load ``what`` (e.g. "target 'cpu'") here if it was compiled for a CPU whose
    features this one lacks. Records without a CPU target (portable artifacts) always pass."""
    if not recorded:
        return
    here = cpu_target()
    if here is None:
        return  # archspec missing: nothing to compare with (it is a core dependency)
    if recorded.get("arch") and recorded["arch"] != here["arch"]:
        raise IncompatibleHardware(f"{what} was compiled for {recorded['arch']} ({recorded.get('microarch')}), "
                                   f"this machine is {here['arch']}", hint="build it here, or run it on its own kind of CPU")
    missing = sorted(set(recorded.get("features", ())) - set(here["features"]))
    if missing:
        raise IncompatibleHardware(
            f"{what} was compiled for a {recorded.get('microarch')} CPU; this one ({here['microarch']}) lacks "
            f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}: loading it could die with an "
            "illegal instruction", hint="rebuild the target on this machine, or run it on a CPU with those features")


def _cpu_isa(arch: str) -> str | None:
    if arch != "x86_64":
        return None
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "baseline"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if "avx2" in flags else "baseline"


def _cpu_model() -> str:
    """The CPU's marketing name (``model name`` in /proc/cpuinfo; the platform's elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def _memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (AttributeError, OSError, ValueError):
        return 0
