"""``buildsys debug``: which layers of a reduced-precision target lose its accuracy."""

from __future__ import annotations

import click

from .common import JSON, MANIFEST


@click.command()
@MANIFEST
@click.option("-t", "--target", required=True, help="The reduced-precision target (int8, fp16, bf16 ONNX) to debug.")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Show this many nodes (all of them go into --json).")
@JSON
@click.pass_context
def debug(ctx, manifest, target, top, as_json):
    """Rank the layers of TARGET by how much error its reduced precision adds.

    TARGET's artifact (e.g. an INT8 Q/DQ or fp16 ONNX graph) and the fp32 graph it was lowered
    from both run on ONNX Runtime's CPU provider, as written (no fusions), on the held-out
    samples its validation uses, with every intermediate tensor exposed. Tensors are matched by
    the fp32 graph's names (inserted Cast / QuantizeLinear / DequantizeLinear are skipped). Each
    node's added error is the relative error of its output, ||reduced - fp32|| / ||fp32||, minus
    the largest of its inputs': a node that clips, overflows or rounds badly adds its own, one
    that merely passes error on adds about none. "inf" marks a non-finite output (fp16 overflow).

    Columns: added and total error, max abs error, cosine, op type, node name, and the model's
    module path and source line where the exporter recorded them. Keep a node in higher
    precision with its module path in 'exclude:' (calibration block for int8, options.onnx.fp16
    for fp16), or let 'exclude: auto' choose.

    Reads the build cache: build the target first (a failed validation keeps what this needs;
    it also prints the first three nodes). A target without reduced precision is an error
    (exit 2); one not built is exit 10.

    \b
    Examples:
      buildsys debug manifests/minilm.yaml -t int8
      buildsys debug manifests/cnn.yaml -t fp16 --top 5 --json
    """
    from ..debugging import layer_report
    from ..layers import summary, table
    from .common import emit, open_project

    report = layer_report(open_project(ctx, manifest, json=as_json), target)
    if as_json:
        return emit(ctx, report)
    click.echo(f"{target}: {report['precision']} vs its fp32 graph, {report['compared']} tensor(s) compared on "
               f"{report['samples']} held-out sample(s)")
    click.echo(report["measure"])
    click.echo("\n".join(table(report, top)))
    click.echo(summary(report))
