"""The hand-offs between ``buildsys bench`` and its measuring processes (``benchmark.child``).

``session`` writes a ``BenchJob``; the child reads it, appends a line to ``progress`` before each
risky step (``load TARGET`` before loading an artifact, so a runtime that takes the process down
is named), prints what it is doing on stdout one line at a time (``session`` shows each line as
it comes) and writes its result to ``result``: the timing document, or for a job that names one
``footprint`` variant, a ``Footprint``. One writer, one reader, a version each.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_JOB_VERSION = 2
FOOTPRINT_VERSION = 1


@dataclass(frozen=True)
class BenchJob:
    manifest: str
    plugins: tuple[str, ...]
    targets: dict[str, str]  # target -> its artifact directory
    device: str
    batches: tuple[int, ...]
    references: tuple[str, ...] | None
    timing: dict = field(default_factory=dict)
    progress: str = ""
    result: str = ""
    #: "": time every variant together; a variant's name: measure that one alone (its memory
    #: and cold start in a fresh process); ``targets`` or ``references`` then name only it.
    footprint: str = ""

    def write(self, path: Path) -> None:
        data = {"version": BENCH_JOB_VERSION, "manifest": self.manifest, "plugins": list(self.plugins),
                "targets": self.targets, "device": self.device, "batches": list(self.batches),
                "references": list(self.references) if self.references is not None else None,
                "timing": self.timing, "progress": self.progress, "result": self.result,
                "footprint": self.footprint}
        Path(path).write_text(json.dumps(data))

    @classmethod
    def read(cls, path: Path) -> BenchJob:
        data = json.loads(Path(path).read_text())
        if data.get("version") != BENCH_JOB_VERSION:
            raise ValueError(f"bench job version {data.get('version')!r}, this buildsys reads {BENCH_JOB_VERSION}")
        references = data["references"]
        return cls(data["manifest"], tuple(data["plugins"]), dict(data["targets"]), data["device"],
                   tuple(data["batches"]), tuple(references) if references is not None else None,
                   dict(data["timing"]), data["progress"], data["result"], data["footprint"])


@dataclass(frozen=True)
class Footprint:
    """One variant measured alone in a fresh process: what it costs to load and first run.

    Memory is host RSS over ``baseline_bytes`` (the process's RSS once Python, numpy, buildsys,
    the plugins and the inputs are in, before the variant's runtime is imported): ``load_peak``
    while loading it, ``peak[batch]`` while running ``calls`` calls at that batch (batches in
    ascending order, peak reset before each). ``load_s`` includes importing its runtime;
    ``first_call_s[batch]`` is its first call at that batch's shape.
    """

    variant: str
    baseline_bytes: int
    load_s: float
    load_peak_bytes: int | None
    first_call_s: dict[int, float]
    peak_bytes: dict[int, int | None]
    calls: int
    source: str  # where the peaks come from: "VmHWM (reset per phase)" or "ru_maxrss (never reset)"

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(dict(self.to_json(), version=FOOTPRINT_VERSION)))

    def to_json(self) -> dict:
        data = asdict(self)
        data["first_call_s"] = {str(b): s for b, s in self.first_call_s.items()}
        data["peak_bytes"] = {str(b): v for b, v in self.peak_bytes.items()}
        return data

    @classmethod
    def from_json(cls, data: dict) -> Footprint:
        return cls(data["variant"], data["baseline_bytes"], data["load_s"], data["load_peak_bytes"],
                   {int(b): s for b, s in data["first_call_s"].items()},
                   {int(b): v for b, v in data["peak_bytes"].items()}, data["calls"], data["source"])

    @classmethod
    def from_result(cls, data: dict) -> Footprint:
        """From what ``write`` wrote (its version checked)."""
        if data.get("version") != FOOTPRINT_VERSION:
            raise ValueError(f"footprint version {data.get('version')!r}, this buildsys reads {FOOTPRINT_VERSION}")
        return cls.from_json(data)
