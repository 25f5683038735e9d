"""``buildsys doctor MANIFEST``: will this torch model export? Diagnose without building."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print the diagnosis in the JSON envelope on stdout (buildsys.json_envelope).")
def doctor(manifest, as_json):
    """Load MANIFEST's torch model and try torch.export with its dims, then run the program on
    the default samples (every dim at its min, opt and max) against eager, reporting the cause of
    any failure with its source line, graph breaks and draft-export issues. Builds nothing;
    torch's own logs and graph dumps are kept out of the answer.

    Exit 0 if the model exports, 1 if not.
    """
    from buildsys import BuildsysError, json_envelope, load_manifest

    from . import inputs as model_inputs
    from .export import ExportOptions, check_samples, export_program, graph_breaks, quiet
    from .flat import flat_module
    from .source import load_module

    spec = load_manifest(manifest)
    root = spec.root
    if spec.model.framework != "torch":
        raise click.UsageError(f"doctor diagnoses torch models; this manifest's framework is '{spec.model.framework}'")
    module = load_module(spec.model, root)
    args = model_inputs.example_inputs(spec.model)
    report = {"model": type(module).__name__, "entrypoint": spec.model.entrypoint,
              "parameters": sum(p.numel() for p in module.parameters()),
              "example": {s.name: list(a.shape) for s, a in zip(spec.model.inputs, args)},
              "dynamo": graph_breaks(flat_module(module), args, root)}
    try:
        with quiet():
            program, names = export_program(spec.model, root, module, in_doctor=True)
            check_samples(spec.model, module, program, ExportOptions())  # what the build's round trip runs
        report["export"] = {"ok": True, "outputs": names,
                            "dims": {str(k): str(v) for k, v in program.range_constraints.items()}}
    except BuildsysError as exc:
        report["export"] = {"ok": False, "error": str(exc)}
    code = 0 if report["export"]["ok"] else 1
    if as_json:
        import json

        click.echo(json.dumps(json_envelope("doctor", report, exit_code=code), indent=1, default=str))
    else:
        _print(report)
    if code:
        raise SystemExit(code)


def _print(report: dict) -> None:
    click.echo(f"model      {report['model']} from {report['entrypoint']} ({report['parameters']:,} parameters)")
    click.echo(f"example    {', '.join(f'{name}{shape}' for name, shape in report['example'].items())}")
    for line in report["dynamo"]:
        click.echo(f"dynamo     {line}")
    export = report["export"]
    if not export["ok"]:
        click.echo(export["error"])
        return
    click.echo(f"export     ok: outputs {', '.join(export['outputs'])}; dims "
               + ", ".join(f"{k}: {v}" for k, v in export["dims"].items()))
