"""``buildsys bench``, driver side: pick what can run here, time it in a subprocess, store it.

The CLI process imports no ML framework: it reads artifact.json files, decides which targets
have a runner on this host (and says why the others are skipped), then runs
``python -m buildsys.benchmark.child`` which loads every variant and times them together. A
runtime that crashes the process while loading an artifact (AOTInductor on some torch/CUDA
builds segfaults) costs that artifact, not the run: the child records what it is loading, and
the run is retried without it, listing it as skipped with the signal. Then (``--memory
separate``, the default) each variant that was timed is loaded again alone in a fresh process
for its memory and cold start (``benchmark.footprint``): in the shared process a peak RSS
holds every variant loaded before it. Every child's progress is shown line by line as it comes.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..artifacts import built_records, target_dir
from ..errors import BuildsysError
from ..fsutil import atomic_write
from ..hashing import canonical, sha256_text
from .measure import Timing
from .process import run_child
from .protocol import BenchJob, Footprint

#: 2: ``memory_mode``, ``footprints`` (each variant alone), ``tools``, ``host.cpu_model``, and
#: ``failed`` on a skipped target that crashed the process. Readers take 1 as well.
RESULT_SCHEMA = 2
MAX_CRASHES = 4


@dataclass(frozen=True)
class BenchOptions:
    targets: list[str] | None = None
    batches: list[int] = field(default_factory=lambda: [1, 8])
    device: str = "auto"                  # auto | cpu | cuda
    references: list[str] | None = None  # None: every reference the plugins offer
    timing: Timing = Timing()
    memory: str = "separate"              # separate: each variant's memory in its own process | shared


@dataclass
class Selection:
    """What a bench run will time on this host, and what it leaves out (with the reason)."""

    device: str
    targets: dict[str, dict]  # target -> its artifact.json record
    skipped: list[dict]
    notes: list[str]


def select(project, options: BenchOptions) -> Selection:
    """Built targets with a usable runner here; every other target listed with the reason."""
    manifest = project.manifest
    device = choose_device(project.host, options.device)
    names = _target_names(manifest, options.targets)
    records = built_records(project.out_root, manifest, names)
    missing = [t for t, record in records.items() if record is None]
    if missing and (options.targets or len(missing) == len(names)):
        raise BuildsysError(
            f"target(s) {', '.join(missing)} of {manifest.path.name} not built in {project.out_root}",
            hint=f"build it first: buildsys build {manifest.path} {' '.join('-t ' + t for t in missing)}"
                 " (or pass --build to bench)")
    skipped = [{"target": t, "kind": manifest.targets[t].format, "reason": "not built (buildsys build, or bench --build)"} for t in missing]
    runnable = {}
    for target in (t for t in names if t not in missing):
        reason = why_not_runnable(project, records[target], device)
        if reason:
            skipped.append({"target": target, "kind": records[target]["kind"], "reason": reason})
        else:
            runnable[target] = records[target]
    return Selection(device, runnable, skipped, device_notes(project.host, device))


def _target_names(manifest, requested: list[str] | None) -> list[str]:
    names = list(requested or manifest.targets)
    unknown = [t for t in names if t not in manifest.targets]
    if unknown:
        raise BuildsysError(f"unknown target(s) {', '.join(unknown)}", hint=f"targets: {', '.join(manifest.targets)}")
    return names


def choose_device(host, requested: str) -> str:
    if requested == "cuda" and not host.gpus:
        raise BuildsysError("--device cuda asked for, but this host has no GPU (buildsys host)",
                            hint="run bench on a GPU machine, or leave --device at auto")
    if requested != "auto":
        return requested
    return "cuda" if host.gpus else "cpu"


def device_notes(host, device: str) -> list[str]:
    if host.gpus:
        return [] if device == "cuda" else ["GPU present but --device cpu: GPU variants not run"]
    return ["no GPU on this host: GPU variants skipped (CUDA references such as torch.compile "
            "reduce-overhead, CUDA-event timing, device memory, kernels per forward)"]


def why_not_runnable(project, record: dict, device: str) -> str:
    """Why this artifact cannot be timed here ('' when it can)."""
    from ..runnable import refusal

    problem = refusal(project.host, project.catalog.runners, record, device, "--device")
    return problem.message if problem is not None else ""


# -- running the measuring process ---------------------------------------------------------------


def run(project, options: BenchOptions, plugin_options: tuple[str, ...] = (),
        log: Callable[[str], Any] = lambda line: None) -> dict:
    """Time every selected variant; return the result document (not yet stored)."""
    selection = select(project, options)
    result, crashed = time_all(project, options, plugin_options, selection, log)
    doc = document(project, options, selection, result, crashed)
    if options.memory == "separate":
        names = list(dict.fromkeys(r["variant"] for r in doc["rows"]))
        doc["footprints"], problems = footprints(project, options, plugin_options, selection, names, log)
        doc["notes"] += problems
    return doc


def time_all(project, options, plugin_options, selection: Selection, log) -> tuple[dict, list[dict]]:
    """The timing child's result, and the targets whose runtime crashed it while loading (the
    others are timed again without them)."""
    crashed: list[dict] = []
    for _ in range(MAX_CRASHES + 1):
        targets = {t: d for t, d in selection.targets.items() if t not in {c["target"] for c in crashed}}
        log(f"timing {len(targets)} artifact(s) beside the references in one process ...")
        outcome, result = _run_child(project, options, plugin_options, targets, selection.device, "", log)
        if result is not None:
            return result, crashed
        if outcome.loading in targets:
            crashed.append({"target": outcome.loading, "kind": targets[outcome.loading]["kind"], "failed": True,
                            "reason": f"the runtime crashed the process while loading it ({outcome.how})"})
            log(f"{outcome.loading}: {crashed[-1]['reason']}; timing the others again without it")
            continue
        raise BuildsysError(f"the bench process failed ({outcome.how}) while {outcome.stage}:\n"
                            + outcome.stderr_tail, hint="rerun with --traceback for the full error")
    raise BuildsysError(f"the bench process crashed {MAX_CRASHES + 1} times; giving up",
                        hint="bench fewer targets with -t")


def footprints(project, options, plugin_options, selection: Selection, names: list[str],
               log) -> tuple[dict[str, dict], list[str]]:
    """Each variant loaded and run alone in a fresh process: ``{variant: Footprint JSON}``, and a
    note for each that could not be measured (the timing already succeeded: not an error)."""
    measured, problems = {}, []
    for i, name in enumerate(names, 1):
        log(f"memory {i}/{len(names)}: {name}, alone in a fresh process ...")
        targets = {name: selection.targets[name]} if name in selection.targets else {}
        outcome, result = _run_child(project, options, plugin_options, targets, selection.device, name, log)
        if result is None:
            problems.append(f"memory and cold start of {name} not measured: its process ended with "
                            f"{outcome.how} while {outcome.stage}")
            continue
        measured[name] = Footprint.from_result(result).to_json()
    return measured, problems


def _run_child(project, options, plugin_options, targets, device, footprint, log) -> tuple:
    """(``ChildExit``, its result JSON or None)."""
    with tempfile.TemporaryDirectory(prefix="buildsys-bench-") as tmp:
        manifest = project.manifest
        directories = {t: str(target_dir(project.out_root, manifest.name, manifest.version, t)) for t in targets}
        references = (footprint,) if footprint and not targets else \
            tuple(options.references) if options.references is not None else None
        job = BenchJob(manifest=str(manifest.path.resolve()), plugins=tuple(plugin_options), targets=directories,
                       device=device, batches=tuple(options.batches), references=references,
                       timing=dataclasses.asdict(options.timing), progress=str(Path(tmp) / "progress"),
                       result=str(Path(tmp) / "result.json"), footprint=footprint)
        outcome = run_child(job, Path(tmp) / "job.json", log)
        if outcome.returncode == 0 and Path(job.result).is_file():
            return outcome, json.loads(Path(job.result).read_text())
        return outcome, None


# -- the result document and where it is kept ----------------------------------------------------


def host_id(host, device: str) -> str:
    """hostname + the device measured on: results of different machines never overwrite."""
    tag = next((str(t) for t in host.tags() if str(t).startswith("cuda")), None) if device == "cuda" else None
    raw = f"{host.hostname or 'host'}-{tag or host.cpu_tag}"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in raw)


def document(project, options: BenchOptions, selection: Selection, result: dict, crashed: list[dict]) -> dict:
    manifest = project.manifest
    artifacts = {}
    for target, record in selection.targets.items():
        artifacts[target] = {"kind": record["kind"], "precision": record.get("precision"),
                             "hardware": record.get("hardware"),
                             "action_key": (record.get("chain") or [{}])[-1].get("action_key")}
    host = dict(project.host.describe(), id=host_id(project.host, selection.device), cpu_model=cpu_model())
    return {"schema": RESULT_SCHEMA, "name": manifest.name, "version": manifest.version,
            "manifest": manifest.path.name, "host": host, "tools": bench_tools(project, selection),
            "device": selection.device, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "batches": options.batches, "method": dataclasses.asdict(options.timing), "artifacts": artifacts,
            "memory_mode": options.memory, "footprints": {},
            "skipped": selection.skipped + crashed, "notes": selection.notes + result.pop("notes", []), **result}


def bench_tools(project, selection: Selection) -> dict[str, str]:
    """The versions of the tools that ran the variants here: the runners' plugins' and the
    model framework's (the references)."""
    owners = {project.catalog.owners.get(("runners", r["kind"])) for r in selection.targets.values()}
    owners.add(project.catalog.owners.get(("sources", project.manifest.model.framework)))
    return project.tool_versions(owners - {None})


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` where there is none)."""
    import platform

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or None
    names = (line.split(":", 1)[1].strip() for line in text.splitlines()
             if line.split(":", 1)[0].strip() in ("model name", "Model", "cpu model") and ":" in line)
    return next(names, None)


def result_paths(project, doc: dict) -> tuple[Path, Path]:
    """(beside the artifacts, in the store). The store copy is keyed by the artifacts' action
    keys and the host, not by the lockfile: it survives a lock rewrite and finds a rerun."""
    manifest = project.manifest
    beside = project.out_root / manifest.name / manifest.version / f"bench-{doc['host']['id']}.json"
    digest = sha256_text(canonical({"artifacts": doc["artifacts"], "host": doc["host"]["id"],
                                    "batches": doc["batches"]}))[:16]
    cached = project.store.root / "bench" / manifest.name / manifest.version / f"{doc['host']['id']}-{digest}.json"
    return beside, cached


def store(project, doc: dict) -> list[Path]:
    paths = result_paths(project, doc)
    text = json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n"
    for path in paths:
        atomic_write(path, text)
    return list(paths)


def load_results(project) -> list[dict]:
    """Every stored bench result of this manifest's name and version (one per host), newest
    first; falls back to the store when the artifact root holds none."""
    manifest = project.manifest
    found = sorted((project.out_root / manifest.name / manifest.version).glob("bench-*.json"))
    if not found:
        found = sorted((project.store.root / "bench" / manifest.name / manifest.version).glob("*.json"))
    docs = [json.loads(p.read_text()) for p in found]
    return sorted(docs, key=lambda d: d.get("created", ""), reverse=True)

