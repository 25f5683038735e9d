"""Reference outputs (the jitted function on the samples) and the runners for both artifact kinds.

Runners take and return lists of numpy arrays (the manifest's inputs in order, the flattened
outputs in order). Inputs are checked against the exported signature first: a size outside the
dims' bounds would otherwise surface as XLA's "Error refining shapes".
"""

from __future__ import annotations

from buildsys import BackendUnavailable, StageFailed, save_reference

from . import inputs as model_inputs
from .compile import host_device, load_exported, read_archive
from .export import check_inputs, output_names, refuse_wide_dtypes
from .versions import version_of


def to_numpy(array):
    import numpy as np

    array = np.asarray(array)
    return array.astype(np.float32) if array.dtype.name == "bfloat16" else array  # npz cannot hold bf16


def run_reference(ctx, inputs, options) -> dict:
    """``jax.jit(apply)(params, *sample)`` on the CPU for every sample: what artifacts must match.

    On the CPU whatever the host, so the (cached, host-independent) reference is the same
    numbers everywhere.
    """
    import jax

    refuse_wide_dtypes(ctx.model)
    model = ctx.load_model()
    names = output_names(check_inputs(ctx, model))
    samples = model_inputs.samples(ctx.model, ctx.root)
    function = jax.jit(model.apply)
    with jax.default_device(host_device("cpu")):
        outputs = [[to_numpy(o) for o in jax.tree_util.tree_leaves(function(model.params, *s))] for s in samples]
    return save_reference(ctx.out_dir, samples, outputs, [s.name for s in ctx.model.inputs], names)


def check_arrays(arrays, meta: dict) -> None:
    """Raise ``StageFailed`` listing every input that does not fit the artifact's signature."""
    names, shapes, dims = meta["input_names"], meta["input_shapes"], meta["dims"]
    if len(arrays) != len(names):
        raise StageFailed(f"{len(arrays)} input arrays for {len(names)} inputs ({', '.join(names)})")
    problems, seen = [], {}
    for name, array, shape in zip(names, arrays, shapes):
        if len(array.shape) != len(shape):
            problems.append(f"'{name}' has shape {list(array.shape)}, expected {shape}")
            continue
        for axis, (got, want) in enumerate(zip(array.shape, shape)):
            if isinstance(want, int) and got != want:
                problems.append(f"'{name}' axis {axis} is {got}, expected {want}")
            elif isinstance(want, str) and not dims[want][0] <= got <= dims[want][1]:
                problems.append(f"'{name}' axis {axis} ({want}) is {got}, outside {dims[want][0]}..{dims[want][1]}")
            elif isinstance(want, str) and seen.setdefault(want, got) != got:
                problems.append(f"dim '{want}' is {seen[want]} in one input and {got} in '{name}'")
    if problems:
        raise StageFailed("the inputs do not fit the exported signature: " + "; ".join(problems))


def load_stablehlo(artifact, device: str):
    """Run a ``stablehlo`` artifact on ``device`` (cpu or cuda), which it must have been lowered for."""
    import jax

    exported = load_exported(artifact.primary)
    if device not in exported.platforms:
        raise StageFailed(f"the export was lowered for {', '.join(exported.platforms)}, not for {device}")
    target = host_device(device)
    call = jax.jit(exported.call)

    def run(arrays):
        check_arrays(arrays, artifact.meta)
        placed = [jax.device_put(a, target) for a in arrays]
        return [to_numpy(o) for o in jax.tree_util.tree_leaves(call(*placed))]

    run.exported = exported
    return run


def load_executables(path) -> tuple[dict, dict]:
    """(index, {input shapes: loaded executable}) from an ``xla.executable`` archive on this host."""
    import jax
    from jax.experimental.serialize_executable import deserialize_and_load

    index, blobs = read_archive(path)
    here = version_of("jaxlib")
    if index["jaxlib"] != here:
        raise BackendUnavailable(f"the executables were compiled by jaxlib {index['jaxlib']}, this host has {here}",
                                 hint="rebuild the target here, or install that jaxlib")
    device = host_device(index["platform"])
    if device.device_kind != index["device_kind"]:
        raise BackendUnavailable(f"the executables were compiled for {index['device_kind']}, "
                                 f"this host's {index['platform']} device is {device.device_kind}")
    in_tree = jax.tree_util.tree_structure((tuple(range(len(index["inputs"]))), {}))
    out_tree = jax.tree_util.tree_structure(tuple(range(len(index["outputs"]))))
    table = {}
    for entry, blob in zip(index["executables"], blobs):
        key = tuple(tuple(shape) for shape in entry["shapes"])
        table[key] = deserialize_and_load(blob, in_tree, out_tree, backend=index["platform"])
    return index, table


def load_xla(artifact, device: str):
    """Run an ``xla.executable`` artifact: the executable compiled for the inputs' exact shapes."""
    import jax

    index, table = load_executables(artifact.primary)
    target = host_device(index["platform"])

    def run(arrays):
        key = tuple(tuple(a.shape) for a in arrays)
        if key not in table:
            compiled = ", ".join(str([list(s) for s in k]) for k in table)
            raise StageFailed(f"no executable for input shapes {[list(s) for s in key]} (compiled: {compiled})",
                              hint="add the size to options: {xla.compile: {sizes: {DIM: [...]}}}")
        placed = [jax.device_put(a, target) for a in arrays]
        return [to_numpy(o) for o in table[key](*placed)]

    run.executables = table
    return run
