"""``torch.fp16`` / ``torch.bf16``: a torch.exported program lowered to half precision.

The program's graph is rewritten, not the user's module: every float32 parameter, buffer and
tensor constant becomes the lowered dtype, and every float32 the graph names (``dtype=`` of a
factory or a cast, the dtype its input assertions check) becomes it too; the result is exported
again with the manifest's dynamic dims. Inputs and outputs keep the manifest's dtypes: a float32
input is cast on entry and a float32 output cast back on exit, so the artifact's signature (and
every caller) stays as it was, and the artifact is tagged with the precision it computes in.
A model built in half precision inside its entrypoint needs no stage: declare its inputs' dtype.
A ``torch.aoti`` target with ``precision: fp16`` compiles the lowered program.
"""

from __future__ import annotations

import contextlib

from buildsys import import_modules

from . import inputs as model_inputs

PT2 = "model.pt2"
DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def run_lower(ctx, inputs, options, precision: str):
    import torch

    from .exported import load_program

    import_modules(ctx.model.imports, ctx.root)  # they register the program's custom operators
    source = inputs[0]
    program = load_program(source.primary, source.primary.name)
    dtype = getattr(torch, DTYPES[precision])
    out_dtypes = [getattr(getattr(arg, "meta", {}).get("val"), "dtype", None) for arg in _outputs(program.graph)]
    module = program.module()
    counts = lower_graph(module, dtype)
    ctx.progress(0, 1, f"exporting the {precision} program")
    lowered = export_on(ctx.model, edge_casts(module, dtype, out_dtypes), "cpu", dynamic=True,
                        context=size_oblivious())
    torch.export.save(lowered, str(ctx.out_dir / PT2))
    meta = source.meta
    return {"primary": PT2, "input_names": meta.get("input_names"), "output_names": meta.get("output_names"),
            "dynamic_dims": meta.get("dynamic_dims"), "lowered": dict(counts, dtype=DTYPES[precision]),
            **({"loaded_as": meta["loaded_as"]} if meta.get("loaded_as") else {})}


def _outputs(graph) -> list:
    output = next(n for n in graph.nodes if n.op == "output")
    args = output.args[0]
    return list(args) if isinstance(args, (tuple, list)) else [args]


def lower_graph(gm, dtype) -> dict[str, int]:
    """Rewrite ``gm`` (an unlifted program module) to compute in ``dtype``; return what changed:
    ``tensors`` (parameters, buffers, constants converted) and ``nodes`` (dtype arguments, and
    float scalars beyond ``dtype``'s finite range: float32's minimum, the mask value models use,
    becomes ``dtype``'s, where CUDA refuses to convert it — "cannot be converted to type c10::Half
    without overflow" — and the CPU silently makes it -inf)."""
    import math

    import torch

    largest = torch.finfo(dtype).max

    def lowered(value):
        if value is torch.float32:
            return dtype
        if isinstance(value, float) and math.isfinite(value) and abs(value) > largest:
            return math.copysign(largest, value)
        return value

    tensors = 0
    for _, param in list(gm.named_parameters()):
        if param.dtype == torch.float32:
            param.data = param.data.to(dtype)
            tensors += 1
    for name, buffer in list(gm.named_buffers()):
        if buffer.dtype == torch.float32:
            _set(gm, name, buffer.to(dtype))
            tensors += 1
    nodes = 0
    for node in gm.graph.nodes:
        if node.op == "get_attr":
            value = _get(gm, node.target)
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter) \
                    and value.dtype == torch.float32:
                _set(gm, node.target, value.to(dtype))
                tensors += 1
        elif node.op == "call_function":
            args = tuple(lowered(a) for a in node.args)
            kwargs = {k: lowered(v) for k, v in node.kwargs.items()}
            if args != tuple(node.args) or kwargs != dict(node.kwargs):
                node.args, node.kwargs = args, kwargs
                nodes += 1
    gm.recompile()
    return {"tensors": tensors, "nodes": nodes}


def _get(module, target: str):
    for part in target.split("."):
        module = getattr(module, part)
    return module


def _set(module, target: str, value) -> None:
    *path, name = target.split(".")
    for part in path:
        module = getattr(module, part)
    if name in getattr(module, "_buffers", {}):
        module._buffers[name] = value
    else:
        setattr(module, name, value)


def _edge_casts_class():
    import torch

    class EdgeCasts(torch.nn.Module):
        """float32 inputs cast to the lowered dtype on entry, float32 outputs cast back on exit."""

        def __init__(self, inner, dtype, out_dtypes):
            super().__init__()
            self.inner = inner
            self.dtype = dtype
            self.out_dtypes = out_dtypes

        def forward(self, *args):
            args = tuple(a.to(self.dtype) if a.dtype == torch.float32 else a for a in args)
            outputs = self.inner(*args)
            flat = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
            cast = tuple(o.to(torch.float32) if want == torch.float32 and o.dtype == self.dtype else o
                         for o, want in zip(flat, self.out_dtypes))
            return cast if isinstance(outputs, (tuple, list)) else cast[0]

    return EdgeCasts


def positional(module):
    """``module`` behind a ``forward(*inputs)`` (the form ``inputs.dynamic_shapes`` describes).
    A program's module refuses ``train()``/``eval()``: the wrapper never calls them."""
    import torch

    class Positional(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(*args)

    return Positional(module)


def edge_casts(inner, dtype, out_dtypes):
    """``inner`` behind float32 edges (the class is made on first use: torch is imported late)."""
    return _edge_casts_class()(inner, dtype, out_dtypes)


def export_on(model, module, device: str, dynamic: bool, context=None):
    """``torch.export`` of ``module`` (a ``forward(*inputs)``) on the manifest ``model``'s example
    inputs moved to ``device``, with its dynamic dims unless ``dynamic`` is False, inside
    ``context`` (a source's export context) if given."""
    import contextlib

    import torch

    from .attention import opaque, restore

    args = tuple(t.to(device) for t in model_inputs.example_inputs(model))
    shapes = model_inputs.dynamic_shapes(model) if dynamic else None
    opaque(module)  # a program's attention traced as one call again (attention.py)
    with torch.no_grad(), context if context is not None else contextlib.nullcontext():
        program = torch.export.export(module, args, dynamic_shapes=shapes)
    restore(program)
    return program


@contextlib.contextmanager
def size_oblivious():
    """torch's size-oblivious shape reasoning while a program is exported again. The program
    already holds its shape checks (runtime asserts); traced anew, each becomes a guard reasoned
    from the trace's sizes, which torch takes as >= 2 — so ``total >= past + seq`` of a generation
    step turned into ``total >= 4`` and the step refused the ranges it was built for."""
    import torch.fx.experimental._config as shapes

    previous = shapes.backed_size_oblivious
    shapes.backed_size_oblivious = True
    try:
        yield
    finally:
        shapes.backed_size_oblivious = previous


def run_fp16(ctx, inputs, options):
    return run_lower(ctx, inputs, options, "fp16")


def run_bf16(ctx, inputs, options):
    return run_lower(ctx, inputs, options, "bf16")
