"""``buildsys doctor MANIFEST``: will this torch model export? Diagnose without building."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
def doctor(manifest):
    """Load MANIFEST's torch model and try torch.export with its dims, reporting the cause of any
    failure with its source line, graph breaks and draft-export issues. Builds nothing.

    Exit 0 if the model exports, 1 if not.
    """
    from buildsys import BuildsysError, load_manifest

    from . import inputs as model_inputs
    from .export import export_program, graph_breaks
    from .flat import flat_module
    from .source import load_module

    spec = load_manifest(manifest)
    root = spec.root
    if spec.model.framework != "torch":
        raise click.UsageError(f"doctor diagnoses torch models; this manifest's framework is '{spec.model.framework}'")
    module = load_module(spec.model, root)
    click.echo(f"model      {type(module).__name__} from {spec.model.entrypoint} "
               f"({sum(p.numel() for p in module.parameters()):,} parameters)")
    args = model_inputs.example_inputs(spec.model)
    click.echo(f"example    {', '.join(f'{s.name}{list(a.shape)}' for s, a in zip(spec.model.inputs, args))}")
    for line in graph_breaks(flat_module(module), args, root):
        click.echo(f"dynamo     {line}")
    try:
        program, names = export_program(spec.model, root, module)
    except BuildsysError as exc:
        click.echo(str(exc))
        raise SystemExit(1) from None
    click.echo(f"export     ok: outputs {', '.join(names)}; dims "
               + ", ".join(f"{k}: {v}" for k, v in program.range_constraints.items()))
