"""A stage with a bug: it rewrites its input file in place (as some converters do to the path
they are given) before writing its output."""

from buildsys import KindSpec, StageSpec, hookimpl


def shout(ctx, inputs, options):
    source = inputs[0].primary
    text = source.read_text()
    with open(source, "w") as f:  # in place: the input is a hard link into the build cache
        f.write(text.upper())
    (ctx.out_dir / "loud.txt").write_text(text.upper())
    return {"primary": "loud.txt"}


@hookimpl
def buildsys_register_kinds():
    return [KindSpec("fixture.loud", 3, "shouted text")]


@hookimpl
def buildsys_register_stages():
    return [StageSpec("fixture.shout", consumes=("text",), produces="fixture.loud", run=shout)]
