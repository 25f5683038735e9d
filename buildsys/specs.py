"""Frozen records that plugins hand to the core through the registration hooks.

A spec describes; it holds no state. The registry that owns them (``buildsys.plugins.Catalog``)
is made once per invocation from the plugin manager.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib.metadata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .errors import BackendUnavailable, BuildsysError

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic import BaseModel


class HardwarePolicy(enum.Enum):
    """How a stage's output is tagged with hardware, and where the stage must run.

    PORTABLE  output runs anywhere; tag ``any`` (ladder stages 2 and 3).
    HOST      output is specific to the machine that built it (e.g. ORT ``all`` level,
              AOTInductor for CPU); the target's hardware must match the host.
    TARGET    output is built for the target's hardware and the build must run there
              (e.g. AOTInductor for CUDA); refused when the host lacks it.
    AHEAD_OF_TIME  output is built for the target's hardware from any host
              (TensorRT-RTX, jax.export lowering).
    INPUT     output runs where its input runs: it packages the input (a Triton model
              repository around an engine); tag the input's, or the target's hardware when
              the input is portable. Built on any host.
    """

    PORTABLE = "portable"
    HOST = "host"
    TARGET = "target"
    AHEAD_OF_TIME = "ahead-of-time"
    INPUT = "input"


@functools.lru_cache(maxsize=None)
def distribution_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (None if absent), read once per process:
    a build asks for the same few a few hundred times (each read parses its METADATA)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_versions(requires) -> dict[str, str]:
    """``{distribution: version}`` of ``requires`` (``Requirement``s), ``missing`` for absent ones."""
    return {r.distribution: r.installed_version() or "missing" for r in requires}


@dataclass(frozen=True)
class Requirement:
    """An importable distribution a stage needs, checked without importing it."""

    distribution: str
    specifier: str = ""
    install: str = ""

    def installed_version(self) -> str | None:
        return distribution_version(self.distribution)

    def check(self) -> str:
        """Return the installed version, or raise ``BackendUnavailable`` with the fix."""
        version = self.installed_version()
        wanted = f"{self.distribution}{self.specifier}"
        hint = self.install or f"pip install '{wanted}'"
        if version is None:
            raise BackendUnavailable(f"{wanted} is not installed", hint=hint)
        if self.specifier and not _satisfies(version, self.specifier):
            raise BackendUnavailable(f"{wanted} is needed, {version} is installed", hint=hint)
        return version


def _satisfies(version: str, specifier: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(specifier).contains(version, prereleases=True)


@dataclass(frozen=True)
class KindSpec:
    """An artifact kind: what a stage produces and a target's ``format`` names.

    ``ladder`` is the compilation-ladder stage (1 eager source .. 4 hardware kernels);
    ``aliases`` are extra names a manifest may use as ``format`` (``aoti`` for ``torch.aoti``).
    """

    name: str
    ladder: int
    description: str = ""
    aliases: tuple[str, ...] = ()
    stored: bool = True


@dataclass(frozen=True)
class SourceSpec:
    """A model loader for one manifest ``framework``.

    ``fingerprint(model, root)`` returns the files whose bytes identify the model (entrypoint
    file(s), weights); the core hashes them with the model block. ``load(model, root)`` returns
    the live model object and is called only inside a worker, by a stage that needs it.

    ``signature(model, root)``, if given, is called when a manifest is planned, in the main
    process, for a model file that declares its own inputs (an ``.onnx`` graph): it returns the
    inputs as ``model.inputs`` entries (``{"name", "dtype", "shape"}``, a symbolic dim named by a
    string), or raises ``ManifestError`` for a file that cannot be the model. The manifest's own
    ``inputs`` win when it gives them; every symbolic dim still needs a range in ``model.dims``.
    It may read the file with its format's library (the core remembers accepted inputs per
    digest of the model block and files, so a no-op rebuild does not call it), never run model
    code. Added in contract 1.4.
    ``describe(model, root)``, if given, returns the model block completed with what the source
    derives from the model's own files (``inputs`` and ``dims`` read from a config, say), the
    manifest's own values winning; the core calls it once when it opens the manifest, so the
    planner, the stages and artifact.json all see the completed block, and remembers an accepted
    answer per digest of the model block, the ``fingerprint`` files, the installed versions of
    ``requires`` and the ``target_kinds`` below (a no-op rebuild does not call it): what it reads
    must be among those files. It reads files only: it runs no model code and imports no ML
    framework. It raises ``BuildsysError`` (exit 2) when
    the model cannot be found or described. Added in contract 1.4. A ``describe`` with a keyword
    parameter ``target_kinds`` gets the kinds the manifest's targets ask for (a frozenset), to
    load the model in the form its consumers need (the Hugging Face source's ``model.attention:
    auto``); the block it returns is hashed, so that choice is in every action key. Contract 1.8.
    ``check_chain(model, stages)``, if given, is called at plan time for each target with the
    (described) model block and the names of the stages its chain runs, in order; it returns
    None, or a one-line reason the target is refused (a model made of several programs that a
    stage in the chain handles only one of). Pure: reads nothing, imports nothing. Added in
    contract 1.7.
    ``companions(model, root)``, if given, returns ``{name: path}``: files of the model's own
    that every artifact built from it carries (a language model's tokenizer), ``name`` the
    relative path each takes inside the artifact (``tokenizer/tokenizer.json``). Called in the
    worker; each path must be one ``fingerprint`` returns. The core copies them into the output
    of every stage of the chain but references and validations (``buildsys.companions``), so
    they are in the artifact's files and checksums and its ``meta.companion_files``. A source
    that starts attaching files to models it built before bumps the versions of the stages
    that consume its kind (their cached outputs lack them). Added in contract 1.7.
    """

    framework: str
    kind: str
    fingerprint: Callable[[Any, "Path"], list["Path"]]
    load: Callable[[Any, "Path"], Any]
    requires: tuple[Requirement, ...] = ()
    signature: Callable[[Any, "Path"], list[dict]] | None = None
    describe: Callable[[Any, "Path"], Any] | None = None
    check_chain: Callable[[Any, tuple[str, ...]], str | None] | None = None
    companions: Callable[[Any, "Path"], dict[str, "Path"]] | None = None


@dataclass(frozen=True)
class StageSpec:
    """One build step: consumes an artifact of one of ``consumes`` and produces ``produces``.

    ``version`` invalidates caches when bumped. ``options`` is a pydantic model (or None);
    the target's ``options.<stage name>`` block is validated against it. ``precision`` is the
    precision the output carries (None: the input's). ``run(ctx, inputs, options)`` writes files
    into ``ctx.out_dir`` and returns a JSON-able dict of metadata (or None). ``primary`` is the
    output file renamed wheel-style when materialised; other files keep their names.

    ``hardware`` is a ``HardwarePolicy``, or a function of the options returning one (ORT's
    ``all`` level is host-specific, ``basic`` is not). ``resolve(options, context)``, if given,
    is called at plan time and returns the options with every "auto" value made concrete, so the
    action key records the choice; ``context`` is a ``PlanContext``. ``extension_hooks`` names
    the backend extension hooks ``run`` calls through ``ctx.hook``: the plugins implementing them
    (and their versions) enter the action key, so adding or upgrading one rebuilds the stage.
    ``output_tag(options)``, if given, returns the output's hardware tag when the options decide
    it (a jax.export lowered for ``platforms: [cpu, cuda]`` is tagged ``cpu.cuda``); the planner
    then uses it instead of the policy's tag, and refuses a target whose ``hardware`` it does
    not cover.

    ``isolated`` (contract 1.5): the stage never shares a worker process with another job (it
    loads native code it cannot unload, or changes process state ``buildsys_worker_reset``
    cannot put back); the local executor runs it in a fresh process even with the warm pool on.
    ``timeout``: seconds the stage may run before its worker is killed and the node fails
    (None: no limit; ``[build] stage_timeout`` gives a default for every stage).
    ``reference(options)`` (contract 1.7), if given and true for the resolved options: the
    planner passes the target's ``reference`` artifact (the held-out samples and the source
    model's outputs on them, which validation compares with; read it with ``load_reference``)
    as the stage's second input, so a stage can judge its own output as validation will
    (``exclude: auto`` searches for the layers to keep in higher precision with it).
    """

    name: str
    consumes: tuple[str, ...]
    produces: str
    run: Callable[..., dict | None]
    version: int = 1
    options: type["BaseModel"] | None = None
    precision: str | None = None
    hardware: HardwarePolicy | Callable[[Any], HardwarePolicy] = HardwarePolicy.PORTABLE
    deterministic: bool = True
    requires: tuple[Requirement, ...] = ()
    primary: str | None = None
    description: str = ""
    resolve: Callable[[Any, "PlanContext"], Any] | None = None
    extension_hooks: tuple[str, ...] = ()
    output_tag: Callable[[Any], str] | None = None
    isolated: bool = False
    timeout: float | None = None
    reference: Callable[[Any], bool] | None = None

    def policy(self, options: Any = None) -> HardwarePolicy:
        """The hardware policy for these (validated) options."""
        return self.hardware if isinstance(self.hardware, HardwarePolicy) else self.hardware(options)

    def check_requirements(self) -> dict[str, str]:
        """Return ``{distribution: version}`` or raise ``BackendUnavailable`` naming the stage."""
        versions = {}
        for requirement in self.requires:
            try:
                versions[requirement.distribution] = requirement.check()
            except BackendUnavailable as exc:
                raise BackendUnavailable(
                    f"stage '{self.name}' needs {exc.message}", hint=exc.hint
                ) from None
        return versions

    def tool_versions(self) -> dict[str, str]:
        """Installed versions of ``requires`` (missing ones as ``missing``), for action keys."""
        return installed_versions(self.requires)

    def usable(self) -> tuple[bool, str]:
        try:
            self.check_requirements()
        except BackendUnavailable as exc:
            return False, str(exc)
        return True, ""


@dataclass(frozen=True)
class PlanContext:
    """What ``StageSpec.resolve`` may look at: facts about the whole manifest, not one chain.

    ``target_kinds``: every kind the manifest's targets ask for (e.g. an ONNX exporter caps
    its opset at what TensorRT parses when a ``tensorrt.plan`` target exists).
    ``hardware``: the hardware the target being planned asks for, as a canonical tag
    (``cuda-sm86.sm89``, ``cpu``, ``cuda``), or None when it names none; lets an
    ahead-of-time builder refuse hardware it cannot serve before anything runs.
    ``runtimes``: the target's ``runtimes:`` (distribution -> PEP 440 specifier): where its
    artifact must load. A stage that honours it declares an option named ``runtimes`` and caps
    what it writes in ``resolve`` (the planner refuses a target whose chain has no such stage).
    ``input_kind``: the kind of the artifact the stage being resolved consumes (a stage that
    takes several kinds picks how to handle it at plan time, so the lock records the choice).
    ``model`` and ``calibration``: the manifest's blocks as JSON-able dicts (``calibration`` is
    None when the manifest has none); ``root``: the manifest's folder. A stage whose output
    depends on files the blocks name (calibration data) hashes them in ``resolve``, so the
    action key changes with the data.
    ``tolerance`` (contract 1.7): the manifest's validation tolerance for the target's
    precision, as the validate stage gets it (a ``Tolerance`` dumped without its defaults).
    """

    target_kinds: frozenset[str] = frozenset()
    hardware: str | None = None
    model: dict = field(default_factory=dict)
    calibration: dict | None = None
    root: "Path | None" = None
    runtimes: dict = field(default_factory=dict)
    input_kind: str | None = None
    tolerance: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunnerSpec:
    """Executes an artifact of ``kind`` on this host (validation, bench).

    ``load(artifact: InputArtifact, device: str)`` returns a callable that takes a list of
    numpy arrays (the manifest's inputs, in order) and returns a list of numpy arrays (the
    outputs, in order). ``device`` is ``cpu`` or ``cuda``. Called inside a worker process.
    The callable may carry ``notes``, a list of lines on how it had to run the artifact on this
    host (a kernel left out, a workaround taken); validation shows them as warnings.
    ``precisions``: the precisions it runs on this host (None: all); an artifact of another
    precision is left unvalidated, with the reason, instead of failing.
    """

    name: str
    kind: str
    load: Callable[..., Callable[..., Any]]
    requires: tuple[Requirement, ...] = ()
    precisions: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RegistrySpec:
    """A model registry for one URL scheme; ``open(url)`` returns a ``buildsys.Registry``.

    ``open`` must be cheap and must not contact the registry: commands open a registry before
    they know whether they will use it (``--dry-run``, a bad argument found later).
    """

    scheme: str
    open: Callable[[str], Any]
    description: str = ""


@dataclass(frozen=True)
class ExecutorSpec:
    """A way to run the DAG; ``create(**options)`` returns a ``buildsys.executor.Executor``.

    ``options`` are the ``[executors.<name>]`` table of ``buildsys.toml`` and the command line's
    ``--address``; an executor rejects those it does not know. See ``buildsys.executor`` for the
    optional ``provides`` (hardware it runs nodes on elsewhere) and ``default_jobs``."""

    name: str
    create: Callable[..., Any]
    description: str = ""


@dataclass(frozen=True)
class InputArtifact:
    """What a stage receives for each input: a stored artifact, or the model source.

    For the source kind ``directory`` is None and ``files`` empty; call ``ctx.load_model()``.
    """

    kind: str
    precision: str
    hardware: str
    directory: "Path | None"
    files: dict[str, "Path"] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def primary(self) -> "Path":
        """The input's main file (the one its producer named primary, else the only one)."""
        name = self.meta.get("primary") or (next(iter(self.files)) if len(self.files) == 1 else None)
        if name is None or name not in self.files:
            raise KeyError(f"{self.kind} input has no primary file; files: {sorted(self.files)}")
        return self.files[name]

    def program(self, name: str) -> "InputArtifact":
        """This artifact as one of its companion programs (``meta.programs``: a seq2seq model's
        ``encoder`` beside its decoder step) sees it, as a runner loads it."""
        return dataclasses.replace(self, meta=program_meta(self.meta, name, f"the {self.kind} artifact"))


#: A program record's keys that describe its signature, not its runner (the rest override the
#: primary's metadata: its file, input and output names, dynamic dims, an engine's profiles ...).
_SIGNATURE_KEYS = ("inputs", "dims")


def program_meta(meta: dict, name: str, owner: str) -> dict:
    """An artifact's metadata as if its companion program ``name`` were the primary: the program's
    record (``meta.programs[name]``, written by the stage that built it) overrides the keys it
    names. ``owner`` names the artifact in the error when it has no such program."""
    programs = meta.get("programs") or {}
    if name not in programs:
        raise BuildsysError(f"{owner} holds no program '{name}'",
                            hint=f"its programs: {', '.join(programs) or 'none besides the primary'}")
    return dict(meta, **{key: value for key, value in programs[name].items() if key not in _SIGNATURE_KEYS})
