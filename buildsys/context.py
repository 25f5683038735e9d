"""What a stage's ``run(ctx, inputs, options)`` receives as ``ctx``. Part of the public API."""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

_PERSISTENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")


@dataclass
class StageContext:
    """The world of one stage run, inside its worker process.

    ``out_dir``: write every output file here (nothing else is kept).
    ``target``: the first target this node serves; ``targets``: all of them (nodes are shared).
    ``hardware``: the concrete tag the output is built for (``any``, ``cpu-x86_64-avx2`` ...).
    ``precision``: the precision the output must carry.
    ``model``: the manifest's ``model:`` block (a ``buildsys.manifest.ModelSpec``).
    ``root``: the manifest's folder, which relative paths in the model block are relative to.
    ``manifest``: name, version and the ``calibration`` and ``validation`` blocks, as a dict.
    """

    out_dir: Path
    stage: str
    node_id: str
    targets: list[str]
    hardware: str
    precision: str
    model: Any
    root: Path
    manifest: dict = field(default_factory=dict)
    _load_model: Callable[[], Any] | None = None
    _runners: dict = field(default_factory=dict)
    _hook: Any = None
    _persistent_root: Path | None = None

    @property
    def target(self) -> str:
        return self.targets[0] if self.targets else ""

    def load_model(self) -> Any:
        """The live model from the manifest's source plugin (imports its framework)."""
        if self._load_model is None:
            raise RuntimeError("this node has no model source")
        return self._load_model()

    @property
    def hook(self):
        """The plugin manager's hook relay, to call backend extension hooks (e.g.
        ``ctx.hook.buildsys_onnx_translations()``) from inside a stage."""
        return self._hook

    def runner(self, kind: str):
        """The ``RunnerSpec`` registered for ``kind`` (to run an input artifact, e.g. to compare)."""
        if kind not in self._runners:
            raise LookupError(f"no runner for kind '{kind}'; runners exist for: {', '.join(sorted(self._runners)) or 'none'}")
        return self._runners[kind]

    def log(self, message: str) -> None:
        """A line for the node's log (kept when the node fails)."""
        print(f"[{self.stage}] {message}", file=sys.stderr, flush=True)

    def progress(self, done: float, total: float, message: str = "") -> None:
        """Report progress of long work; shown beside the node while it runs."""
        print(f"buildsys-progress {done} {total} {message}", file=sys.stderr, flush=True)  # see executor.PROGRESS_PREFIX

    @contextlib.contextmanager
    def persistent_file(self, namespace: str, key: str) -> Iterator[Path]:
        """A file kept across builds outside every node's output, locked while the block runs.

        For state that speeds a stage up without changing what it may produce, such as a
        TensorRT timing cache: it enters no action key and is never an artifact, so the stage
        must work when the file is absent. Yields its path (which may not exist yet) while
        holding an exclusive lock that other builds sharing the store wait on; write it
        atomically (a temporary file beside it, then ``os.replace``). ``namespace`` and ``key``
        are plain names (letters, digits, ``._+-``). When the executor gave no store, the file
        lives in the node's scratch folder and is dropped with it.
        """
        from .fsutil import file_lock

        for value in (namespace, key):
            if not _PERSISTENT_NAME.match(value):
                raise ValueError(f"persistent file name part {value!r} must be letters, digits and ._+-")
        root = self._persistent_root or Path(self.out_dir).parent / "persistent"
        path = root / namespace / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path.with_name(path.name + ".lock")):
            yield path
