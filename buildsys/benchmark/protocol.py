"""The hand-off between ``buildsys bench`` and its measuring process (``benchmark.child``).

``session`` writes a ``BenchJob``; the child reads it, appends a line to ``progress`` before each
risky step (``load TARGET`` before loading an artifact, so a runtime that takes the process down
is named), prints what it is doing on stdout one line at a time (``session`` shows each line as
it comes) and writes its result document to ``result``. One writer, one reader, a version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

BENCH_JOB_VERSION = 1


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

    def write(self, path: Path) -> None:
        data = {"version": BENCH_JOB_VERSION, "manifest": self.manifest, "plugins": list(self.plugins),
                "targets": self.targets, "device": self.device, "batches": list(self.batches),
                "references": list(self.references) if self.references is not None else None,
                "timing": self.timing, "progress": self.progress, "result": self.result}
        Path(path).write_text(json.dumps(data))

    @classmethod
    def read(cls, path: Path) -> BenchJob:
        data = json.loads(Path(path).read_text())
        if data.get("version") != BENCH_JOB_VERSION:
            raise ValueError(f"bench job version {data.get('version')!r}, this buildsys reads {BENCH_JOB_VERSION}")
        references = data["references"]
        return cls(data["manifest"], tuple(data["plugins"]), dict(data["targets"]), data["device"],
                   tuple(data["batches"]), tuple(references) if references is not None else None,
                   dict(data["timing"]), data["progress"], data["result"])
