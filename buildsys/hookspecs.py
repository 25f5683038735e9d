"""The buildsys plugin contract: every hook a plugin may implement, and nothing else.

A plugin is a module (or object) with functions named after these hooks and decorated with
``buildsys.hookimpl``. Plugins are found through the ``buildsys`` entry-point group; the
builtins in ``buildsys.builtin.DEFAULT_PLUGINS`` use the same hooks. An implementation may
accept fewer arguments than a spec lists (pluggy passes only those it names), which is how the
contract grows without breaking plugins: arguments are only ever added. A function whose name
starts with ``buildsys_`` but matches no hook here is an error at load time.

Registration hooks are collect-all: every plugin's list is gathered, and a name registered by
two plugins is an error naming both. They are called once per invocation, in the CLI process
and again in each worker process, so they must be cheap: import heavy frameworks inside the
callables the specs carry, never at module import or registration time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .graph import Graph, Node
    from .hardware import Host
    from .records import NodeOutcome
    from .specs import (
        ExecutorSpec,
        InputArtifact,
        KindSpec,
        RegistrySpec,
        RunnerSpec,
        SourceSpec,
        StageSpec,
    )

PROJECT = "buildsys"

#: Version of this contract. Minor bumps add hooks or arguments; a major bump removes some.
#: A plugin declares the versions it supports with a module attribute, a PEP 440 specifier set
#: such as ``BUILDSYS_CONTRACT = ">=1.1,<2"``; loading one that excludes this version fails
#: with an error naming the plugin (see ``buildsys.plugins.check_contract``).
CONTRACT_VERSION = "1.9"  # 1.9: companion programs for stages: InputArtifact.program(name),
# ModelSpec.for_program(inputs, dims); a program record's keys override the primary's metadata.
# 1.8: SourceSpec.describe may take target_kinds; buildsys.WorkerPool and
# PoolSettings (a warm worker pool for executor plugins: the Ray executor's).
# 1.7: buildsys_compare_layers; bench references get the timed targets'
# precisions; SourceSpec.check_chain; SourceSpec.companions (files every artifact of the model
# carries, meta.companion_files); StageSpec.reference (the reference artifact as a second input)
# and PlanContext.tolerance (exclude: auto judges its candidates as validation will).
# 1.6: validation checks take run, ctx; HardwarePolicy.INPUT;
# PlanContext.input_kind

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------------------------
# Registration: what a plugin provides. Called once per process after all plugins are loaded.
# --------------------------------------------------------------------------------------------


@hookspec
def buildsys_register_kinds() -> list[KindSpec]:
    """Declare artifact kinds this plugin's stages produce or its sources load.

    Called once per invocation. Return a list of ``KindSpec``. A target's ``format`` must name
    a kind or one of its ``aliases``; a kind named by two plugins is an error.
    """


@hookspec
def buildsys_register_sources() -> list[SourceSpec]:
    """Declare model sources, one per manifest ``model.framework`` value.

    Called once per invocation. Return a list of ``SourceSpec``; its ``kind`` is the ladder
    stage 1 kind the planner starts every chain from. Two plugins claiming one framework is an
    error. A source whose model file declares its inputs gives ``signature`` (contract 1.4): the
    core then fills ``model.inputs`` from it when the manifest gives none. A source whose models
    need files of their own beside the graph (a tokenizer) gives ``companions`` (contract 1.7):
    the core copies them into every artifact built from it (``buildsys.companions``).
    """


@hookspec
def buildsys_register_stages() -> list[StageSpec]:
    """Declare build stages.

    Called once per invocation. Return a list of ``StageSpec``. The planner chains stages by
    kind (shortest path from the source kind to the target's kind and precision). Stage names
    are global: two plugins registering one name is an error naming both.

    A stage's ``run`` may share its worker process with other jobs of the build (the local
    executor's warm pool): since contract 1.5 a stage that loads native code it cannot unload,
    or changes process state no ``buildsys_worker_reset`` can put back, declares
    ``StageSpec(isolated=True)`` and gets a fresh process; ``StageSpec.timeout`` (seconds)
    bounds how long its worker may run.

    An input may hold companion programs beside its primary graph (``meta.programs``: a seq2seq
    model's encoder beside its decoder step; a source's ``check_chain`` refuses stages that drop
    them). Since contract 1.9 a stage that builds one file per program reads each through
    ``input.program(name)`` (the input as that program's runner would see it) and
    ``ctx.model.for_program(record["inputs"], record["dims"])`` (the model block with its inputs
    and dims), and returns ``programs: {name: record}`` in its metadata: the input's record with
    the keys it changed (``primary``, an engine's ``profiles`` ...), which override the primary's
    metadata whenever that program is loaded.
    """


@hookspec
def buildsys_register_runners() -> list[RunnerSpec]:
    """Declare runners that execute an artifact kind on this host, for validation and bench.

    Called once per invocation. Return a list of ``RunnerSpec``; at most one per kind.
    """


@hookspec
def buildsys_register_registries() -> list[RegistrySpec]:
    """Declare model registries by URL scheme (``file``, ``mlflow+http``, ``oci`` ...).

    Called once per invocation. Return a list of ``RegistrySpec``; one plugin per scheme.
    ``spec.open(url)`` is called when a command names a URL of that scheme and returns a
    ``buildsys.Registry`` (publish with ``dry_run``/``progress``/``alias``, pull, list, exists);
    import the registry's client library there or later, never at registration. A registry
    passes ``buildsys.testing.RegistryContract``.
    """


@hookspec
def buildsys_register_executors() -> list[ExecutorSpec]:
    """Declare executors that run the build DAG (``local`` is builtin; ``ray`` ...).

    Called once per invocation. Return a list of ``ExecutorSpec``; one plugin per name.
    """


# --------------------------------------------------------------------------------------------
# Host: what this machine is and which tool versions go into cache keys.
# --------------------------------------------------------------------------------------------


@hookspec
def buildsys_probe_hardware(host: Host) -> None:
    """Add facts about this machine to ``host`` (GPUs and compute capability, CPU ISA ...).

    Called once per invocation, lazily, the first time hardware matters. Mutate ``host``
    (``host.add_gpu(...)``, ``host.facts[key] = value``); the return value is ignored.
    Must not fail when the probed device or library is absent: record nothing instead.
    """


@hookspec
def buildsys_tool_versions() -> dict[str, str]:
    """Return ``{tool: version}`` for framework versions recorded in the lockfile.

    Called once per build. Must not import heavy frameworks: read versions with
    ``importlib.metadata``. A stage's own ``requires`` enter its action key regardless.
    """


# --------------------------------------------------------------------------------------------
# Extension hooks: a stage calls them inside its worker process, through ``ctx.hook``, so that
# other plugins can extend it. A backend declares its own through ``buildsys_addhooks``.
# --------------------------------------------------------------------------------------------


@hookspec(historic=True)
def buildsys_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    """Add hook specifications of a backend's own (its extension hooks) to the plugin manager.

    Called once for each plugin that implements it, as it is registered (a historic hook: a
    plugin registered later is still called), before any other hook runs. Call
    ``pluginmanager.add_hookspecs(module)`` with a module of functions decorated with
    ``buildsys.hookspec``; other plugins then implement those hooks as they would core ones. A
    stage that calls an extension hook (through ``ctx.hook``) lists it in
    ``StageSpec.extension_hooks``, so the plugins implementing it enter its action key; the
    hook's reference is rendered into docs/plugins.md with the core's. The ``onnx`` plugin's
    ``buildsys_onnx_translations`` is one. A plugin implementing an extension hook of a backend
    that is not loaded is an error at load time, naming it (as a misspelt hook is). Added in
    contract 1.3 (the ONNX translations hook moved from the core contract to the onnx plugin).
    """


@hookspec
def buildsys_validation_checks(artifact: InputArtifact, samples: list[list[Any]],
                               expected: list[list[Any]], names: dict[str, list[str]],
                               run: Any = None, ctx: Any = None) -> dict | None:
    """Add checks of an artifact to its validation (e.g. calibration coverage of an INT8 graph).

    Called by the builtin ``validate`` stage inside its worker, after it compared the
    artifact's outputs with the reference (whether or not they matched), through ``ctx.hook``. ``artifact`` is the
    ``InputArtifact`` validated (its ``meta`` holds what its stages recorded); ``samples[i][j]``
    is input ``j`` of held-out sample ``i`` and ``expected[i][k]`` the source model's output
    ``k`` on it (numpy arrays); ``names`` is ``{"inputs": [...], "outputs": [...]}``.
    ``run`` is the runner callable the outputs came from (what ``RunnerSpec.load(artifact,
    device)`` returned: a list of numpy arrays in input order in, a list in output order out), so
    a check can drive the artifact itself (a generation loop); ``ctx`` the validate stage's
    ``buildsys.StageContext`` (``ctx.model``, ``ctx.root``, ``ctx.load_model()``, ``ctx.precision``).
    Both added in contract 1.6.

    Return None when the check does not apply to this artifact, or a dict::

        {"check": "int8-coverage", "passed": bool, "warnings": [str, ...], "details": {...},
         "summary": str}   # optional: one line ``buildsys inspect`` shows beside the verdict (1.6)

    Collect-all: every applicable result is stored in the validation report (and artifact.json)
    under ``checks``; warnings are shown to the user, and added to the failure message when the
    outputs did not match (they often say why); a result with ``passed: False`` fails the
    target. Import heavy frameworks inside the
    implementation. The validate stage declares this hook in ``StageSpec.extension_hooks``:
    adding or upgrading a plugin implementing it re-validates. Added in contract 1.2.
    """


@hookspec(firstresult=True)
def buildsys_compare_layers(artifact: InputArtifact, baseline: InputArtifact, samples: list[list[Any]],
                            names: dict[str, list[str]], root: Any = None) -> dict | None:
    """Compare a reduced-precision artifact with the fp32 artifact it was lowered from, layer by
    layer, and rank the layers by how much error each adds.

    Called by the builtin ``validate`` stage inside its worker when the validation of a target
    whose precision is not fp32 failed (its summary goes into the failure message, its table into
    the node's log), and by ``buildsys debug`` in the CLI process. ``artifact`` is the reduced
    artifact, ``baseline`` the nearest fp32 artifact of the same kind in the target's chain (the
    input of its precision stage); ``samples[i][j]`` is input ``j`` of held-out sample ``i``
    (numpy arrays); ``names`` is ``{"inputs": [...], "outputs": [...]}``; ``root`` the manifest's
    folder (to print source lines relative to it).

    Return None when this plugin cannot compare these artifacts (another kind), else a dict::

        {"samples": int, "compared": int, "measure": str,
         "nodes": [{"node", "op_type", "module", "source", "tensor", "added", "error",
                    "max_abs", "cosine", "nonfinite"}, ...]}   # most error added first

    ``module`` is the model's module path where the exporter recorded it (None otherwise),
    ``added`` and ``error`` are floats, or the string ``"inf"`` for a non-finite output
    (``buildsys.layers`` formats it). Raise ``BuildsysError`` when the artifact cannot be run
    here (e.g. bf16 on ONNX Runtime's CPU provider). Stops at the first non-None result.
    Import heavy frameworks inside the implementation. Added in contract 1.7.
    """


# --------------------------------------------------------------------------------------------
# Benchmarks: called by ``buildsys bench`` in its measuring process (never by a build).
# --------------------------------------------------------------------------------------------


@hookspec
def buildsys_bench_references(model: Any, root: Any, device: str, precisions: tuple[str, ...]) -> dict | None:
    """Supply the reference variants every artifact is timed against (eager, compiled ...).

    Called by ``buildsys bench`` once per run, inside the subprocess that does the timing
    (never in the CLI process, never during a build), for the manifest's ``model`` block
    (``model.framework`` says whose model it is; ``root`` is the manifest's folder, what
    ``SourceSpec.load(model, root)`` takes). ``device`` is ``cpu`` or ``cuda``: where the
    references must run. ``precisions`` are those of the artifacts being timed (``fp32``,
    ``fp16``, ``bf16``, ``int8`` ...; empty when only references are timed): offer references
    that compute at a reduced one too (e.g. the module in fp16), or an fp16 artifact is only
    ever compared with fp32 eager (added in contract 1.7; take the argument only if you use it).
    Return None when the model is not this plugin's framework, or::

        {"variants": {name: callable, ...}, "meter": meter_or_None, "notes": [str, ...]}

    ``variants`` in order; each callable takes the manifest's inputs as a list of numpy arrays
    (the same arrays every artifact gets, in manifest order and dtype) and returns the outputs
    as a list of numpy arrays, like a ``RunnerSpec`` runner. Include ``"eager"``: ratios are
    taken against it. A callable may compile on its first call (that call is timed apart).

    ``meter`` (optional) measures on ``device`` when plain wall clock and host RSS cannot:
    an object with ``name`` and ``memory`` (what it reports, as text), ``time(call, arrays,
    device) -> seconds`` for one call (e.g. CUDA events), ``peak_memory(call, arrays, device)
    -> bytes | None`` (e.g. ``torch.cuda.max_memory_allocated`` after a reset) and
    ``kernels(call, arrays, device) -> int | None`` (device kernels launched by one call, from
    a profiler: did fusion happen?). For variants on ``cpu`` a meter should fall back to the
    wall clock. The first meter returned is used for every variant. ``notes`` (optional) are
    shown with the results: say which references were left out on this device and why.
    ``"precisions": {name: "fp16", ...}`` (optional) says which variants compute at a reduced
    precision: their distance from ``eager`` is judged by that precision's tolerance, not
    fp32's, before a row is flagged wrong (unnamed variants: fp32).

    Collect-all: variants of every plugin are merged (a name given twice is an error naming
    both plugins). Import heavy frameworks inside the implementation. Added in contract 1.2.
    """


# --------------------------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------------------------


@hookspec
def buildsys_configure(pluginmanager: pluggy.PluginManager, settings: dict[str, Any]) -> None:
    """Set up for one command: called once in the CLI process (never in a worker), after the
    plugins are loaded and before the command does its work.

    ``settings`` says what the command wants: ``command`` (its name, e.g. ``build``),
    ``progress`` (True when it builds and wants progress reported), ``quiet`` (only failures and
    warnings) and ``json`` (machine-readable output on stdout: report on stderr only). A plugin
    may register further plugin objects on ``pluginmanager``, e.g. a reporter implementing the
    lifecycle hooks; the builtin ``terminal`` plugin does exactly that (``-p no:terminal``
    blocks it). Return values are ignored. Added in contract 1.3.
    """


@hookspec
def buildsys_add_commands(cli: click.Group) -> None:
    """Add click commands to the ``buildsys`` group.

    Called once when the CLI starts, after the builtin commands are added. A command name that
    already exists is an error naming the plugin. Import heavy modules inside the command.
    """


# --------------------------------------------------------------------------------------------
# Worker processes: called in a pooled worker (buildsys.WorkerPool: the local executor's, and the
# Ray executor's in each Ray worker), between the jobs it runs.
# --------------------------------------------------------------------------------------------


@hookspec
def buildsys_worker_reset() -> None:
    """Called in a pooled worker process after each job, once the core has put back the working
    directory, ``os.environ``, ``sys.path`` and the user's modules: put your framework's
    process-wide state back as a fresh process would have it (global RNG seeds, compile and
    tracing caches, global defaults such as the default dtype), so the next job builds exactly
    what it would in a process of its own. Only plugins whose framework the job imported have
    anything to do: check ``sys.modules`` rather than importing it.

    Return value ignored. Raising retires the worker (the next job gets a fresh process). A
    stage whose state cannot be put back declares ``StageSpec(isolated=True)`` instead and
    never shares a process. Added in contract 1.5.
    """


# --------------------------------------------------------------------------------------------
# Lifecycle notifications: called in the driver process, in order, for progress and tracing.
# Return values are ignored; an exception here aborts the build.
# --------------------------------------------------------------------------------------------


@hookspec
def buildsys_build_started(graph: Graph, host: Host, jobs: int) -> None:
    """Called once after planning, before any node runs.

    ``graph`` is the planned DAG (nodes in execution order); ``jobs`` the parallelism.
    """


@hookspec
def buildsys_stage_started(node: Node) -> None:
    """Called when a node is dispatched to a worker (not for cache hits)."""


@hookspec
def buildsys_stage_progress(node: Node, done: float, total: float, message: str) -> None:
    """Called while a node runs, each time its stage calls ``ctx.progress(done, total, message)``.

    Reported by the executor as it sees them (the local executor polls every worker's log), so
    calls may be coalesced or arrive late; ``done <= total`` is not guaranteed.
    """


@hookspec
def buildsys_stage_finished(node: Node, outcome: NodeOutcome) -> None:
    """Called once per node when it is settled.

    ``outcome.status`` is ``built``, ``cached``, ``failed`` or ``skipped``; ``outcome.error``
    holds the one-line reason for the last two; ``outcome.seconds`` the wall time.
    """


@hookspec
def buildsys_build_finished(outcomes: dict[str, NodeOutcome], ok: bool) -> None:
    """Called once when every node is settled, before artifacts and the lock are written.

    ``outcomes`` maps node id to outcome; ``ok`` is False if any node failed.
    """


def all_hook_names() -> list[str]:
    """The names of every hook declared here, in declaration order."""
    return [name for name, value in globals().items()
            if name.startswith("buildsys_") and callable(value)]


__all__: list[Any] = ["CONTRACT_VERSION", "PROJECT", "all_hook_names", "hookimpl", "hookspec"]
