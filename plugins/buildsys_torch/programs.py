"""Companion programs: a model whose deployable form is several graphs (a seq2seq model's
encoder beside its decoder step) exports each of them into the same artifact.

The source's module is the primary program (the manifest's inputs, dims, samples and reference
are its); ``module.buildsys_programs()``, when the source defines it, returns the others as
``{name: (module, inputs, dims[, facts])}`` with inputs and dims in the manifest's form (``facts``:
a JSON-able dict recorded with the program, e.g. the ids a generation loop starts from). Each is exported
with the same options to ``<name>.pt2`` and checked against eager on its default samples; the
stage's metadata lists them under ``programs`` (file, inputs, dims, input and output names), the
record downstream stages and runners read.
"""

from __future__ import annotations

from pathlib import Path


def companions(module) -> dict:
    factory = getattr(module, "buildsys_programs", None)
    return factory() if callable(factory) else {}


def export_companions(ctx, module, options, export_program, check_samples) -> dict:
    """``{name: record}`` for every companion program, each saved as ``<name>.pt2`` in the stage's output."""
    import torch

    from . import inputs as model_inputs

    records = {}
    for name, (inner, inputs, dims, *facts) in sorted(companions(module).items()):
        model = ctx.model.for_program(inputs, dims)
        program, outputs = export_program(model, ctx.root, inner, options.strict)
        path = Path(ctx.out_dir) / f"{name}.pt2"
        torch.export.save(program, str(path))
        check_samples(model, inner, torch.export.load(str(path)), options)
        records[name] = {"primary": path.name, "inputs": inputs, "dims": dims,
                         "input_names": [s["name"] for s in inputs], "output_names": outputs,
                         "dynamic_dims": model_inputs.dynamic_dims(model), **(facts[0] if facts else {})}
    return records
