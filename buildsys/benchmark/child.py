"""``buildsys bench``, measuring side: ``python -m buildsys.benchmark.child JOB.json``.

Loads the references (``buildsys_bench_references``) and every selected artifact through its
``RunnerSpec``, feeds all of them the same arrays, warms up, times them interleaved and writes
the rows to the job's result file. Before loading each artifact it appends ``load TARGET`` to
the job's progress file, so the driver can tell which one took the process down. Each step is
also printed on stdout as it starts and ends (``say``), one flushed line at a time: the driver
shows them live. A job naming one ``footprint`` variant loads and measures only that one
(``benchmark.footprint``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..errors import BuildsysError, PluginError
from ..hardware import CPU_TARGET, check_cpu_target
from . import footprint, measure
from .protocol import BenchJob


def references(pm, model, root: Path, device: str, wanted: list[str] | None,
               precisions: tuple[str, ...] = ()) -> tuple[list, object | None, list[str]]:
    """(variants, meter, notes) from every plugin's ``buildsys_bench_references``."""
    variants, owners, meter, notes = [], {}, None, []
    args = {"model": model, "root": root, "device": device, "precisions": precisions}
    for impl in pm.hook.buildsys_bench_references.get_hookimpls():  # registration order
        started = time.perf_counter()  # a reference's load: its framework's import and the model's build
        result = impl.function(**{name: args[name] for name in impl.argnames})
        load_s = time.perf_counter() - started
        if not result:
            continue
        meter = meter or result.get("meter")
        notes += list(result.get("notes", []))
        computes_in = result.get("precisions") or {}
        for name, call in result.get("variants", {}).items():
            if name in owners:
                raise PluginError(f"bench reference '{name}' is offered by both plugin '{owners[name]}' "
                                  f"and plugin '{impl.plugin_name}'", hint=f"block one with -p no:{impl.plugin_name}")
            owners[name] = impl.plugin_name
            if wanted is None or name in wanted:
                variants.append(measure.Variant(name, "reference", call, device=device,
                                                precision=computes_in.get(name, "source"),
                                                load_s=load_s))
    return variants, meter, notes


def precisions(job: BenchJob) -> tuple[str, ...]:
    """The precisions of the job's artifacts, in target order, each once."""
    from ..artifacts import read_record

    seen = [read_record(Path(directory))["precision"] for directory in job.targets.values()]
    return tuple(dict.fromkeys(seen))


def artifact_variant(catalog, target: str, directory: Path, device: str, progress: Path) -> measure.Variant:
    """Load one built target through its kind's runner, as validation does."""
    from ..artifacts import input_artifact, read_record
    from ..runnable import runs_on

    record = read_record(directory)
    artifact = input_artifact(directory, record)
    on = "cuda" if record["hardware"].startswith("cuda") or (record["hardware"] == "any" and device == "cuda") else "cpu"
    with progress.open("a") as f:
        f.write(f"load {target}\n")
    started = time.perf_counter()
    check_cpu_target((record.get("meta") or {}).get(CPU_TARGET), f"target '{target}'")
    run = catalog.runners[record["kind"]].load(artifact, on)
    on = runs_on(run, on)
    return measure.Variant(target, record["kind"], run, artifact=True, device=on, precision=record["precision"],
                           load_s=time.perf_counter() - started)


def bounds(manifest, variants: list[measure.Variant]) -> dict[str, tuple[float, float]]:
    """(atol, rtol) per variant for 'fast but wrong', from the manifest's tolerance for its
    precision (a cosine-only tolerance, as int8 has, gives no bound on the element error)."""
    out = {}
    for v in variants:
        precision = v.precision if v.precision in ("fp32", "fp16", "bf16", "int8") else "fp32"
        try:
            tol = manifest.tolerance(precision)
        except KeyError:
            tol = manifest.tolerance("fp32")
        if tol.atol is None and tol.rtol is None:
            out[v.name] = (float("inf"), 0.0)
        else:
            out[v.name] = (tol.atol or 0.0, tol.rtol or 0.0)
    return out


def say(line: str) -> None:
    """One line of progress for the driver, which shows it as it comes (stdout is a pipe)."""
    print(line, flush=True)


def main(job_path: str) -> int:
    from .. import manifest as manifest_mod, plugins

    job = BenchJob.read(Path(job_path))
    progress = Path(job.progress)
    progress.write_text("start\n")
    manifest = manifest_mod.load(job.manifest)
    pm = plugins.load(plugins.PluginConfig.from_options(job.plugins))
    catalog = plugins.Catalog.collect(pm)
    if job.footprint:
        return measure_footprint(job, manifest, pm, catalog, progress)
    variants, meter, notes = load_variants(job, manifest, pm, catalog, progress)
    with progress.open("a") as f:
        f.write("time all\n")
    result = measure_all(manifest, variants, meter or measure.CpuMeter(), job)
    result["notes"] = notes
    Path(job.result).write_text(json.dumps(result, default=str))
    return 0


def load_variants(job: BenchJob, manifest, pm, catalog, progress: Path) -> tuple[list, object | None, list[str]]:
    """The references, then every artifact of the job, each announced before it loads."""
    wanted = list(job.references) if job.references is not None else None
    say(f"loading references ({', '.join(wanted) if wanted is not None else 'every one offered'}) ...")
    variants, meter, notes = references(pm, manifest.model, manifest.root, job.device, wanted, precisions(job))
    if variants:
        say(f"references: {', '.join(v.name for v in variants)} (loaded in {variants[0].load_s:.2f} s)")
    for i, (target, directory) in enumerate(job.targets.items(), 1):
        say(f"loading target {i}/{len(job.targets)}: {target} ...")
        variants.append(artifact_variant(catalog, target, Path(directory), job.device, progress))
        say(f"loading target {i}/{len(job.targets)}: {target} ({variants[-1].kind} on {variants[-1].device}) "
            f"in {variants[-1].load_s:.2f} s")
    if not variants:
        raise BuildsysError("nothing to time: no reference and no runnable artifact",
                            hint="install the model framework's plugin (e.g. buildsys[torch]) or build a target")
    return variants, meter, notes


def measure_footprint(job: BenchJob, manifest, pm, catalog, progress: Path) -> int:
    """Load only ``job.footprint`` (an artifact of ``job.targets`` or a reference) in this fresh
    process and write its ``Footprint``."""
    name = job.footprint
    inputs = {b: measure.make_inputs(manifest.model, b) for b in job.batches}  # before the baseline

    def load():
        if name in job.targets:
            return artifact_variant(catalog, name, Path(job.targets[name]), job.device, progress).run
        found = [v for v in references(pm, manifest.model, manifest.root, job.device, [name], precisions(job))[0]
                 if v.name == name]
        if not found:
            raise BuildsysError(f"no bench reference named '{name}' is offered any more")
        return found[0].run

    footprint.measure(name, load, inputs, say).write(Path(job.result))
    return 0


def measure_all(manifest, variants, meter, job: BenchJob) -> dict:
    timing = measure.Timing(**job.timing)
    batches = list(job.batches)
    inputs = {b: measure.make_inputs(manifest.model, b) for b in batches}
    diffs = measure.warm_up(variants, inputs, timing.warmup, meter, log=say)
    times, info = measure.time_variants(variants, inputs, timing, meter, log=say)
    baseline = "eager" if any(v.name == "eager" for v in variants) else variants[0].name
    rows = measure.summarize(variants, times, diffs, batches, bounds(manifest, variants), baseline)
    return {"rows": rows, "baseline": baseline, "inputs": measure.describe_inputs(manifest.model, inputs),
            "meter": getattr(meter, "name", type(meter).__name__), "memory": getattr(meter, "memory", ""), **info}


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1]))
    except BuildsysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
