"""``framework: onnx``: an existing ``.onnx`` file, named by ``model.entrypoint``, as the source.

The graph declares its inputs (names, dtypes, symbolic dims): ``signature`` reads them at plan
time, and refuses a file that is missing, not ONNX, or fails ``onnx.checker`` (a manifest
error: nothing is built from it). ``onnx.import`` copies the checked graph (and its external
data, as ``model.onnx.data``) into an ``onnx`` artifact every ONNX consumer builds from;
``onnx.reference`` runs the file itself in ONNX Runtime fp32 on the CPU, on the manifest's
samples or on samples synthesised from the dtypes and dims with a fixed seed.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import ManifestError, StageFailed, load_samples, save_reference

from . import diagnose, wire

PRIMARY = "model.onnx"
DATA = "model.onnx.data"
# ONNX TensorProto element types buildsys can feed (onnx.TensorProto.DataType values)
DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
          10: "float16", 11: "float64", 16: "bfloat16"}


# -- the source: fingerprint and signature (plan time, main process) ----------------------------


def model_path(model, root: Path) -> Path:
    """The ``.onnx`` file ``model.entrypoint`` names, refused unless it is a file."""
    if not model.entrypoint:
        raise ManifestError("framework 'onnx' needs model.entrypoint: the .onnx file, relative to the manifest",
                            hint="e.g. 'entrypoint: models/net.onnx'")
    path = (Path(root) / model.entrypoint).resolve()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ManifestError(f"model.entrypoint: ONNX file '{model.entrypoint}' {what} (looked in {root})",
                            hint="name an .onnx file, relative to the manifest's folder")
    return path


def read_graph(path: Path, entrypoint: str):
    """The graph's protobuf bytes, read without onnx, or a one-line ManifestError."""
    try:
        return wire.graph(path)
    except (wire.WireError, OSError) as exc:
        raise ManifestError(f"model.entrypoint: '{entrypoint}' is not a readable ONNX model ({exc})",
                            hint="give an .onnx file saved with onnx.save (a ModelProto)") from None


def external_files(proto, path: Path) -> list[Path]:
    """The external data files the graph's initializers name, beside ``path`` (a loaded ModelProto)."""
    names = set()
    for tensor in _tensors(proto.graph):
        if tensor.data_location == 1:  # EXTERNAL
            names.update(e.value for e in tensor.external_data if e.key == "location")
    return [(path.parent / name).resolve() for name in sorted(names)]


def _tensors(graph):
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            for sub in [attr.g, *attr.graphs] if attr.HasField("g") else attr.graphs:
                yield from _tensors(sub)


def fingerprint(model, root: Path) -> list[Path]:
    """The .onnx and the external data files it names (read without importing onnx)."""
    path = model_path(model, root)
    locations = wire.external_locations(read_graph(path, model.entrypoint))
    return [path, *((path.parent / name).resolve() for name in sorted(locations))]


def signature(model, root: Path) -> list[dict]:
    """The graph's inputs as ``model.inputs`` entries, once the file passed ``onnx.checker``.

    Imports onnx for the checker; the core remembers the answer per file digest, so only the
    first plan of a file pays for it."""
    path = model_path(model, root)
    graph = read_graph(path, model.entrypoint)
    _check(path, model.entrypoint)
    return [_input(name, elem_type, dims, model.entrypoint) for name, elem_type, dims in wire.inputs(graph)]


def _check(path: Path, entrypoint: str) -> None:
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ManifestError(f"model.entrypoint: '{entrypoint}' is not a readable ONNX model "
                            f"({type(exc).__name__}: {_first_line(exc)})",
                            hint="give an .onnx file saved with onnx.save (a ModelProto)") from None
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise ManifestError(f"model.entrypoint: '{entrypoint}' fails onnx.checker: {_first_line(exc)}",
                            hint="repair or re-export the graph; buildsys builds only from valid ONNX") from None


def _input(name: str, elem_type, dims, entrypoint: str) -> dict:
    if elem_type not in DTYPES:
        raise ManifestError(f"model.entrypoint: input '{name}' of '{entrypoint}' is not a tensor of a "
                            f"dtype buildsys feeds ({', '.join(sorted(set(DTYPES.values())))})",
                            hint="declare model.inputs yourself, or export the graph with tensor inputs")
    shape = [d if d is not None else f"{name}_{axis}" for axis, d in enumerate(dims)]
    return {"name": name, "dtype": DTYPES[elem_type], "shape": shape}


def load(model, root: Path) -> Path:
    """The live "model" of an ONNX source is its file: stages read it themselves."""
    return model_path(model, root)


# -- stages ---------------------------------------------------------------------------------------


def run_import(ctx, inputs, options) -> dict:
    """``onnx.file`` -> ``onnx``: the checked graph as model.onnx (+ model.onnx.data)."""
    import onnx

    from .export import check, over_protobuf_limit, save

    path = Path(ctx.load_model())
    proto = onnx.load(str(path), load_external_data=False)
    had_external = bool(external_files(proto, path))  # loading the data forgets where it came from
    onnx.external_data_helper.load_external_data_for_model(proto, str(path.parent))
    external = had_external or over_protobuf_limit(proto)
    if not over_protobuf_limit(proto):
        check(proto)
    save(proto, Path(ctx.out_dir), external)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    dims = {s.name: {str(a): d for a, d in enumerate(s.shape) if isinstance(d, str)} for s in ctx.model.inputs}
    return {"primary": PRIMARY, "tool_tag": f"opset{opset}", "opset": opset, "ir_version": proto.ir_version,
            "producer": " ".join(filter(None, (proto.producer_name, proto.producer_version))),
            "external_data": (Path(ctx.out_dir) / DATA).exists(), "dynamic_dims": dims,
            "input_names": [s.name for s in ctx.model.inputs],
            "output_names": [o.name for o in proto.graph.output], "ops": diagnose.count_ops(proto)}


def run_reference(ctx, inputs, options) -> dict:
    """The source graph in ONNX Runtime, fp32 on the CPU: what every artifact is compared with."""
    import onnxruntime as ort

    session_options = ort.SessionOptions()
    session_options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(ctx.load_model()), session_options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise StageFailed(f"ONNX Runtime cannot load the source graph: {_first_line(exc)}") from None
    samples = reference_samples(ctx.model, ctx.root)
    names = [s.name for s in ctx.model.inputs]
    outputs = [session.run(None, dict(zip(names, sample))) for sample in samples]
    return save_reference(ctx.out_dir, samples, outputs, names, [o.name for o in session.get_outputs()])


def reference_samples(model, root: Path, seed: int = 1) -> list[list]:
    """The manifest's samples, else every dim at its min, opt and max (deduplicated), seeded."""
    import numpy as np

    produced = load_samples(model, root)
    if produced is not None:
        return [[np.asarray(v) for v in sample] for sample in produced]
    rng = np.random.default_rng(seed)
    bounds = {name: _bounds(dim) for name, dim in model.dims.items()}
    chosen, samples = [], []
    for pick in (0, 1, 2):
        sizes = {name: b[pick] for name, b in bounds.items()}
        if sizes not in chosen:
            chosen.append(sizes)
            samples.append([_array(spec, [sizes.get(d, d) for d in spec.shape], rng) for spec in model.inputs])
    return samples


def _bounds(dim) -> tuple[int, int, int]:
    ranges = dim.ranges()
    return ranges[0][0], ranges[0][1] if len(ranges) == 1 else ranges[-1][0], ranges[-1][2]


def _array(spec, shape: list[int], rng):
    import numpy as np

    if spec.dtype in ("float32", "float16", "float64", "bfloat16"):
        low, high = spec.range or (None, None)
        values = rng.standard_normal(shape) if low is None else rng.uniform(low, high, shape)
        return values.astype("float32" if spec.dtype == "bfloat16" else spec.dtype)
    if spec.dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    low, high = (int(spec.range[0]), int(spec.range[1])) if spec.range else (0, 100)
    return rng.integers(low, high, shape).astype(np.dtype(spec.dtype))


def _first_line(exc: BaseException) -> str:
    """The exception's text on one line (onnx.checker spreads one sentence over several)."""
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__
