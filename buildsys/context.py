"""What a stage's ``run(ctx, inputs, options)`` receives as ``ctx``. Part of the public API."""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .jobs import progress_line

if TYPE_CHECKING:
    from .jobs import JobSpec

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
    # Set by ``create`` (and so by ``for_job``) only: what the stage reaches through methods.
    _load_model: Callable[[], Any] | None = field(default=None, init=False, repr=False)
    _runners: dict = field(default_factory=dict, init=False, repr=False)
    _hook: Any = field(default=None, init=False, repr=False)
    _persistent_root: Path | None = field(default=None, init=False, repr=False)

    @classmethod
    def create(cls, *, out_dir: Path, stage: str, node_id: str, targets: list[str], hardware: str,
               precision: str, model: Any = None, root: Path, manifest: dict | None = None,
               load_model: Callable[[], Any] | None = None, runners: dict | None = None, hook: Any = None,
               persistent_root: Path | None = None) -> StageContext:
        """A context with its private parts: ``load_model`` (what ``load_model()`` returns),
        ``runners`` (kind -> ``RunnerSpec``), ``hook`` (the plugin manager's hook relay) and
        ``persistent_root`` (where ``persistent_file`` keeps files). The worker makes every
        context here; a plugin's unit tests may too."""
        ctx = cls(out_dir=Path(out_dir), stage=stage, node_id=node_id, targets=list(targets), hardware=hardware,
                  precision=precision, model=model, root=Path(root), manifest=dict(manifest or {}))
        ctx._load_model, ctx._runners, ctx._hook = load_model, dict(runners or {}), hook
        ctx._persistent_root = Path(persistent_root) if persistent_root else None
        return ctx

    @classmethod
    def for_job(cls, job: JobSpec, catalog: Any, hook: Any) -> StageContext:
        """The context of the stage ``job`` runs, with the plugins' ``catalog`` and ``hook``."""
        from .manifest import ModelSpec

        model = ModelSpec.model_validate(job.source.model)
        root = Path(job.source.root)
        source = catalog.source(model.framework)
        return cls.create(out_dir=Path(job.out_dir), stage=job.stage, node_id=job.node, targets=list(job.targets),
                          hardware=job.hardware, precision=job.precision, model=model, root=root,
                          manifest=job.source.manifest, load_model=lambda: source.load(model, root),
                          runners=catalog.runners, hook=hook, persistent_root=job.persistent)

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
        print(progress_line(done, total, message), file=sys.stderr, flush=True)

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
