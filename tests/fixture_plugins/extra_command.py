"""Adds a CLI command through buildsys_add_commands."""

import click

from buildsys import hookimpl


@hookimpl
def buildsys_add_commands(cli):
    @cli.command(name="hello-plugin")
    def hello_plugin():
        """Say hello from a plugin."""
        click.echo("hello from a plugin command")
