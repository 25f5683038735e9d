"""``buildsys bench`` and ``buildsys report``: measure every artifact here, then show them."""

from __future__ import annotations

from pathlib import Path

import click


def _batches(ctx, param, value: str) -> list[int]:
    try:
        batches = [int(b) for b in value.split(",") if b.strip()]
    except ValueError:
        raise click.BadParameter("comma-separated positive integers, e.g. 1,8,32") from None
    if not batches or min(batches) < 1:
        raise click.BadParameter("comma-separated positive integers, e.g. 1,8,32")
    return batches


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-t", "--target", "targets", multiple=True, help="Bench only this target (repeatable).")
@click.option("--batch", "batches", default="1,8", callback=_batches, show_default=True,
              help="Comma-separated batch sizes; other dims at their opt.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where references and portable artifacts run (auto: cuda when this host has a GPU).")
@click.option("--reference", "references", multiple=True,
              help="Time only these references (eager, torch.compile ...; repeatable) [default: all offered].")
@click.option("--build", "build_first", is_flag=True, help="Build the targets first (a no-op when cached).")
@click.option("--seconds", default=10.0, show_default=True, type=click.FloatRange(0.01),
              help="About how long the timed phase lasts (sets the rounds).")
@click.option("--rounds", default=0, type=click.IntRange(0), help="Interleaved rounds (overrides --seconds).")
@click.option("--burst", default=10, show_default=True, type=click.IntRange(1),
              help="Back-to-back calls per variant, batch and round.")
@click.option("--settle", default=3, show_default=True, type=click.IntRange(0),
              help="First calls of each burst not counted.")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(1), help="Warm-up calls per variant and batch.")
@click.option("--wait-quiet", default=0.0, type=click.FloatRange(0),
              help="Wait up to this many seconds for other processes to go idle before timing.")
@click.option("--memory", type=click.Choice(["separate", "shared"]), default="separate", show_default=True,
              help="separate: load each variant again alone in a fresh process for its memory and cold start "
                   "(one more process per variant); shared: only the peaks read in the timing process, where "
                   "every variant loaded so far is resident.")
@click.option("--json", "as_json", is_flag=True, help="Print the result document in the JSON envelope on stdout.")
@click.pass_context
def bench(ctx, manifest, targets, batches, device, references, build_first, seconds, rounds, burst, settle,
          warmup, wait_quiet, memory, as_json):
    """Time every built artifact of MANIFEST that has a runner here, beside the model's references.

    \b
    References come from the model's framework plugin: eager, torch.compile, and on a GPU
    torch.compile reduce-overhead. Every variant gets the same inputs (manifest dtypes, other
    dims at their opt); each is warmed up, then all run interleaved in shuffled bursts so drift
    hits them alike. Reported: median and p95 latency, items/s, ratio vs eager, memory (each
    variant alone in a fresh process: host peak RSS over the process's baseline; device memory
    on GPU in the timing process), cold start (load, first call), kernels per forward on GPU,
    and the max difference from eager's outputs. Targets that cannot run here are listed with
    the reason. What it is doing is printed on stderr as it goes. Results go to
    <out>/<name>/<version>/bench-<host>.json and to the cache; `buildsys report` shows them.
    """
    from ..benchmark import session, tables
    from ..benchmark.measure import Timing
    from .common import open_project

    if settle >= burst:
        raise click.BadParameter("--settle must be smaller than --burst", param_hint="--settle")
    project = open_project(ctx, manifest, progress=build_first, quiet=True)
    if build_first:
        _build(project, list(targets) or None)
    options = session.BenchOptions(list(targets) or None, batches, device, list(references) or None,
                                   Timing(rounds, seconds, burst, settle, warmup, wait_quiet), memory)
    doc = session.run(project, options, ctx.find_root().obj["plugin"], log=lambda line: click.echo(line, err=True))
    paths = session.store(project, doc)
    if as_json:
        from .common import emit

        emit(ctx, doc)
        return
    click.echo(tables.render(doc))
    click.echo(f"stored: {paths[0]}", err=True)


def _build(project, targets) -> None:
    from ..builder import BuildOptions, build as run_build

    run_build(project, BuildOptions(targets=targets, jobs=None, executor=None))


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.html and report.png [default: <out>/<name>/<version>/].")
@click.option("--layers", is_flag=True,
              help="Add each reduced-precision target's layers adding the most error (runs the comparison "
                   "'buildsys debug' runs, from the build cache; failed validations included).")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True,
              help="With --layers: how many nodes per target.")
@click.pass_context
def report(ctx, manifest, output, layers, top):
    """Write one self-contained HTML page comparing MANIFEST's artifacts (and a PNG plot).

    \b
    Per stored bench result (one per host): a pick per batch (none when the run was NOISY),
    latency by batch, accuracy vs latency and size vs latency charts (inline SVG), every
    variant at every batch in a sortable table with its own memory and cold start, and what
    was not timed and why. Per target: hardware tag, precision, size, build time, validation,
    and provenance (digest, tool versions, opset, build host). Reads only what build and
    bench stored; the page needs no other file and fetches nothing. --layers adds, per int8 /
    fp16 / bf16 target, the top diverging nodes (op, node, module path, source line, error,
    cosine) against the fp32 graph it was lowered from.
    """
    from .. import report as report_mod
    from ..benchmark import session
    from ..debugging import layer_reports
    from .common import open_project

    project = open_project(ctx, manifest)
    m = project.manifest
    out_dir = output or project.out_root / m.name / m.version
    reports = layer_reports(project) if layers else None
    page, png, problem = report_mod.write(project, session.load_results(project), out_dir, layers=reports, top=top)
    click.echo(str(page))
    if png:
        click.echo(str(png))
    elif problem:
        click.echo(problem, err=True)
