"""``buildsys inspect``: what was built for each target, read back from its artifact.json."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import BuildsysError


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-t", "--target", "targets", multiple=True, help="Show only this target (repeatable).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the artifact.json records (target -> record, null when not built) in the JSON envelope.")
@click.pass_context
def inspect(ctx, manifest, targets, as_json):
    """Show each built target of MANIFEST: file, hardware tag, precision, size, accuracy.

    Accuracy is the validation against the source model on the held-out samples: worst max
    abs / rel error and cosine per output, and the checks plugins added (e.g. INT8 calibration
    coverage). Precision stages show what they did (nodes quantized, ops kept in fp32).
    Targets not built yet are listed as such; exit 0 either way.
    """
    from ..artifacts import built_records
    from .common import emit, open_project

    project = open_project(ctx, manifest)
    m = project.manifest
    names = list(targets) or list(m.targets)
    unknown = [t for t in names if t not in m.targets]
    if unknown:
        raise BuildsysError(f"unknown target(s) {', '.join(unknown)}", hint=f"targets: {', '.join(m.targets)}")
    records = built_records(project.out_root, m, names)
    if as_json:
        return emit(ctx, records)
    for name, record in records.items():
        click.echo("\n".join(describe(name, record)))


def describe(name: str, record: dict | None) -> list[str]:
    if record is None:
        return [f"{name}: not built (run buildsys build -t {name})", ""]
    primary = next((f for f in record.get("files", []) if f.get("role") == "primary"), {})
    size = sum(f.get("size", 0) for f in record.get("files", []))
    lines = [f"{name}: {primary.get('name', '?')}",
             f"  kind {record.get('kind')}  precision {record.get('precision')}  hardware {record.get('hardware')}"
             f"  size {_size(size)}"]
    lines += _validation(record.get("validation") or {})
    lines += _precision(record.get("meta") or {})
    return lines + [""]


def _validation(validation: dict) -> list[str]:
    if validation.get("status") != "passed":
        return [f"  validation: {validation.get('status', 'none')} ({validation.get('reason', '')})"]
    lines = [f"  validation: passed on {validation.get('samples')} held-out sample(s), runner "
             f"{validation.get('runner')}, tolerance {validation.get('tolerance')}"]
    for out in validation.get("outputs", []):
        lines.append(f"    {out.get('name')}: max_abs {out.get('max_abs', 0):.3g}  max_rel {out.get('max_rel', 0):.3g}"
                     f"  cosine {out.get('cosine', 0):.6f}")
    for check in validation.get("checks", []):
        summary = f" ({check['summary']})" if check.get("summary") else ""
        lines.append(f"    check {check.get('check')}: {'passed' if check.get('passed') else 'FAILED'}{summary}")
        lines += [f"      warning: {w}" for w in check.get("warnings", [])]
    return lines


def _precision(meta: dict) -> list[str]:
    lines = []
    quant, cal = meta.get("quantization"), meta.get("calibration")
    if quant and cal:
        acts = quant.get("activations", {})
        lines.append(f"  int8: {quant.get('quantized_nodes')} {'/'.join(quant.get('op_types', []))} node(s) quantized, "
                     f"{len(quant.get('left_out_nodes', []))} left out; calibrator {cal.get('calibrator')} "
                     f"({cal.get('method')}) on {cal.get('samples')} sample(s) of {cal.get('data')}")
        if acts.get("tensors"):
            lines.append(f"    activation ranges: {acts['tensors']} tensor(s), amax {acts['amax_min']:.3g} .. "
                         f"{acts['amax_max']:.3g} (median {acts['amax_median']:.3g})")
        if quant.get("left_out_nodes"):
            lines.append(f"    left out: {', '.join(quant['left_out_nodes'][:8])}"
                         f"{' ...' if len(quant['left_out_nodes']) > 8 else ''}")
    lowering = meta.get("lowering")
    if lowering:
        kept = ", ".join(f"{op} x{n}" for op, n in lowering.get("nodes_fp32_by_op", {}).items()) or "none"
        lines.append(f"  {lowering.get('precision')}: {lowering.get('nodes_low')} node(s) lowered, kept fp32: {kept}; "
                     f"{lowering.get('casts')} cast(s)")
    lines += _auto(meta.get("exclude_auto"))
    counts = (meta.get("layers") or {}).get("precision_counts")
    if counts:  # an engine's per-layer report: were int8 / fp16 kernels really chosen?
        layers = ", ".join(f"{p} {n}" for p, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        lines.append(f"  engine layers by precision: {layers}; {len(meta.get('profiles', []))} profile(s)")
    lines += [f"  warning: {w}" for w in meta.get("warnings", [])]
    return lines


def _auto(record: dict | None) -> list[str]:
    """``exclude: auto``'s search: what it kept and each round's metric."""
    if not record:
        return []
    verdict = "met" if record.get("passed") else "did NOT meet"
    lines = [f"  exclude: auto {verdict} tolerance {record.get('tolerance')} in round {record.get('chosen_round')} "
             f"of {record.get('rounds')}; kept {len(record.get('kept_nodes', []))} layer(s) in higher precision: "
             f"{', '.join(record.get('kept', [])) or 'none'}"]
    for r in record.get("history", []):
        metric = ", ".join(f"{k} {r[k]:.6g}" for k in ("cosine", "max_abs", "top1") if k in r)
        lines.append(f"    round {r['round']}: {r['kept']} kept (+{', '.join(r.get('added', [])) or 'none'}): "
                     f"{metric or r.get('problem', '')} {'passes' if r.get('passed') else 'fails'}")
    return lines


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
