"""``buildsys new-plugin``: start a third-party plugin whose tests pass as generated."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="new-plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(["stage", "registry", "executor"]), default="stage", show_default=True,
              help="What the example hook implementation provides.")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to create the buildsys-NAME folder.")
def new_plugin(name, kind, parent):
    """Create buildsys-NAME/: a plugin distribution (module buildsys_NAME) with a pyproject
    declaring the buildsys entry point, one working example, and tests that subclass the
    contract suites of buildsys.testing.

    \b
    Then:
      cd buildsys-NAME && pip install -e '.[test]' && pytest
    """
    from ..scaffold import generate

    root, files = generate(name, kind, parent)
    click.echo(f"created {root} ({kind} plugin '{name}', module buildsys_{name}):")
    for path in files:
        click.echo(f"  {path.relative_to(root)}")
    click.echo(f"next: cd {root} && pip install -e '.[test]' && pytest")
