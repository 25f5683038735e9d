"""A stage with a bug: its ``run`` raises a plain Python exception, not a BuildsysError."""

from buildsys import KindSpec, StageSpec, hookimpl


def divide(ctx, inputs, options):
    ctx.log("about to divide by the number of wheels on a boat")
    return {"ratio": 1 / 0}


@hookimpl
def buildsys_register_kinds():
    return [KindSpec("fixture.ratio", 3, "a number nobody can compute")]


@hookimpl
def buildsys_register_stages():
    return [StageSpec("fixture.divide", consumes=("text",), produces="fixture.ratio", run=divide)]
