"""Case b's plain script: the README's main job without a build system (issue 18's baseline).

What a user would write to get the artifacts ``buildsys build manifests/cnn.yaml`` and
``manifests/encoder.yaml`` produce, calling the same tools the stages call, in one process, one
step after another, with the same settings and the same checks (each artifact run on the same
samples and compared with the eager model), read off the stages' code in ``plugins/``:

- samples: every dim at its min, opt and max (seed 1); export example: each dim at its opt (seed 0);
- ``torch.export`` with one ``Dim`` per manifest dim, saved, loaded back and checked on the samples;
- ``torch.onnx.export`` (dynamo) at the opset the plan chose (25), converted if the exporter
  emitted another, ``onnx.checker`` full check and strict shape inference;
- ONNX Runtime ``extended`` optimization for the CPU provider;
- AOTInductor package for this CPU (libstdc++ linked by name, as the stage does);
- INT8: activation ranges by ONNX Runtime's calibrator (entropy over 2048 bins, or max) on the
  manifest's calibration samples, then modelopt's ONNX PTQ placing symmetric Q/DQ with those
  ranges as a TensorRT calibration cache; the held-out/calibration overlap and range coverage
  checks of the validation;
- fp16: modelopt AutoCast, fp32 I/O;
- TensorRT-RTX engines for sm86+sm89 from the fp32, fp16 and int8 graphs: strongly typed,
  one profile from the manifest's dims, optimization level 3, detailed profiling verbosity;
- (cnn) two Triton repositories around the ONNX graph (onnxruntime_onnx and python backend).

It reads the manifests (YAML) for the model entrypoints, dims, calibration and tolerances, and
imports nothing from buildsys. Per-step times go to stderr (and ``--json``)::

    python bench/main_job_script.py manifests /tmp/out [--json steps.json]
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import shutil
import struct
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

STEPS: list[tuple[str, float]] = []
OPSET = 25  # what `buildsys plan` chose for both models (opset auto: the highest the exporter and consumers take)
FP32 = {"rtol": 1e-4, "atol": 1e-5, "scale": True}
FP16 = {"rtol": 1e-2, "atol": 1e-2, "scale": True}
INT8_MIN_COSINE = 0.99


@contextmanager
def step(name: str):
    started = time.perf_counter()
    yield
    STEPS.append((name, time.perf_counter() - started))
    print(f"  {name}: {STEPS[-1][1]:.2f} s", file=sys.stderr, flush=True)


# -- the manifest's model block -------------------------------------------------------------------


def bounds(spec: dict) -> dict[str, tuple[int, int, int]]:
    return {name: (d["min"], d.get("opt", d["min"]), d["max"]) for name, d in spec["model"]["dims"].items()}


def tensor(inp: dict, sizes: dict, generator):
    import torch

    shape = [sizes[d] if isinstance(d, str) else d for d in inp["shape"]]
    dtype = getattr(torch, inp["dtype"])
    low, high = inp.get("range") or (None, None)
    if dtype.is_floating_point:
        if low is not None:
            return (torch.rand(shape, generator=generator) * (high - low) + low).to(dtype)
        return torch.randn(shape, generator=generator).to(dtype)
    return torch.randint(int(low if low is not None else 0), int(high if high is not None else 100), shape,
                         generator=generator, dtype=dtype)


def samples(spec: dict) -> list[tuple]:
    """Every dim at its min, its opt, its max (seed 1)."""
    import torch

    generator, chosen, out = torch.Generator().manual_seed(1), [], []
    for pick in range(3):
        sizes = {name: b[pick] for name, b in bounds(spec).items()}
        if sizes not in chosen:
            chosen.append(sizes)
            out.append(tuple(tensor(i, sizes, generator) for i in spec["model"]["inputs"]))
    return out


def example(spec: dict) -> tuple:
    import torch

    sizes = {name: min(max(2, opt), high) for name, (low, opt, high) in bounds(spec).items()}
    generator = torch.Generator().manual_seed(0)
    return tuple(tensor(i, sizes, generator) for i in spec["model"]["inputs"])


def entrypoint(root: Path, text: str):
    path, function = text.split(":")
    folder = str((root / path).parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the encoder imports its sibling bert.py
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, root / path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, function)


# -- checks ---------------------------------------------------------------------------------------


def leaves(outputs) -> list:
    if isinstance(outputs, dict):
        return [v for value in outputs.values() for v in leaves(value)]
    if isinstance(outputs, (tuple, list)):
        return [v for value in outputs for v in leaves(value)]
    return [outputs]


def close(name: str, got, want, rule: dict) -> None:
    import numpy as np

    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape or not np.all(np.isfinite(got)):
        raise SystemExit(f"{name}: shape {got.shape} vs {want.shape} or non-finite values")
    if "min_cosine" in rule:
        cosine = float(np.dot(got.ravel(), want.ravel()) / (np.linalg.norm(got) * np.linalg.norm(want)))
        if cosine < rule["min_cosine"]:
            raise SystemExit(f"{name}: cosine {cosine:.5f} < {rule['min_cosine']}")
        return
    atol = rule["atol"] * (max(1.0, float(np.abs(want).max())) if rule.get("scale") else 1.0)
    diff = np.abs(got - want)
    if not np.all(diff <= atol + rule["rtol"] * np.abs(want)):
        raise SystemExit(f"{name}: max abs difference {diff.max():.3g}")


def strided(array):
    import numpy as np

    if array.ndim >= 2 and array.shape[-1] > 1 and array.shape[-2] > 1:
        return np.asfortranarray(array)
    return np.ascontiguousarray(array[..., ::-1])[..., ::-1] if array.ndim and array.shape[-1] > 1 else array


def validate(name: str, run, inputs: list[list], expected: list[list], rule: dict) -> None:
    """The artifact on every sample against eager, then sample 0 laid out non-contiguously."""
    first = None
    for sample, want in zip(inputs, expected):
        got = run(sample)
        first = first if first is not None else got
        for a, b in zip(got, want, strict=True):
            close(name, a, b, rule)
    for a, b in zip(run([strided(x) for x in inputs[0]]), first, strict=True):
        close(f"{name} (strided inputs)", a, b, rule)


def numpy_outputs(tensors) -> list:
    return [t.detach().numpy() for t in leaves(tensors)]


def ort_runner(path: Path, names: list[str]):
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda arrays: session.run(None, {n: np.ascontiguousarray(a) for n, a in zip(names, arrays)})


# -- the steps ------------------------------------------------------------------------------------


class Flat:
    """The model called with the manifest's inputs by name, returning a flat tuple of tensors."""

    @staticmethod
    def wrap(module, names: list[str]):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = module

            def forward(self, *args):
                return tuple(leaves(self.inner(**dict(zip(names, args)))))

        return Wrapped().eval()


def export(spec: dict, module, out: Path, inputs, expected, rule):
    import torch

    names = [i["name"] for i in spec["model"]["inputs"]]
    dims = {n: torch.export.Dim(n, min=lo, max=hi) for n, (lo, _, hi) in bounds(spec).items() if hi > lo}
    shapes = (tuple({axis: dims[d] for axis, d in enumerate(i["shape"]) if d in dims}
                    for i in spec["model"]["inputs"]),)
    with torch.no_grad():
        program = torch.export.export(Flat.wrap(module, names), example(spec), dynamic_shapes=shapes)
    (out / "exported").mkdir(parents=True)
    torch.export.save(program, str(out / "exported" / "model.pt2"))
    loaded = torch.export.load(str(out / "exported" / "model.pt2")).module()

    def run(arrays):
        with torch.no_grad():
            return numpy_outputs(loaded(*[torch.from_numpy(a.copy()) for a in arrays]))

    validate("exported", run, inputs, expected, rule)
    return program, shapes


def to_onnx(spec: dict, program, out: Path, output_names: list[str]) -> Path:
    import onnx
    import torch

    names = [i["name"] for i in spec["model"]["inputs"]]
    exported = torch.onnx.export(program, dynamo=True, opset_version=OPSET, verbose=False)
    rename(exported.model.graph, names, output_names)
    model = exported.model_proto
    if next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) != OPSET:
        model = onnx.version_converter.convert_version(model, OPSET)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    (out / "onnx").mkdir()
    onnx.save_model(model, str(out / "onnx" / "model.onnx"))
    return out / "onnx" / "model.onnx"


def rename(graph, inputs: list[str], outputs: list[str]) -> None:
    """Graph inputs and outputs named as in the manifest; an internal value already holding a
    wanted name (the encoder's ``embedding`` node) is moved aside first."""
    import onnx_ir as ir

    values = {v.name: v for v in graph.inputs}
    for node in ir.traversal.RecursiveGraphIterator(graph):
        values.update({v.name: v for v in node.outputs if v.name})
    for value, wanted in [*zip(graph.inputs, inputs), *zip(graph.outputs, outputs)]:
        clash = values.get(wanted)
        if clash is not None and clash is not value:
            clash.name = f"{wanted}__internal"
        value.name = wanted


def ort_optimize(source: Path, out: Path) -> Path:
    import onnxruntime as ort

    (out / "onnx-ort").mkdir()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out / "onnx-ort" / "model.onnx")
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return out / "onnx-ort" / "model.onnx"


def aoti(out: Path, inputs, expected, rule) -> None:
    import torch

    (out / "aoti-cpu").mkdir()
    package = str(out / "aoti-cpu" / "model.pt2")
    program = torch.export.load(str(out / "exported" / "model.pt2"))
    torch._inductor.aoti_compile_and_package(program, package_path=package, inductor_configs={
        "max_autotune": False, "aot_inductor.custom_op_libs": [":libstdc++.so.6"]})
    compiled = torch._inductor.aoti_load_package(package)

    def run(arrays):
        with torch.no_grad():
            return numpy_outputs(compiled(*[torch.from_numpy(a.copy()) for a in arrays]))

    validate("aoti-cpu", run, inputs, expected, rule)


def calibration(spec: dict, root: Path) -> list[dict]:
    """Exactly ``calibration.samples`` samples from the manifest's entrypoint, batch by batch."""
    block = spec["calibration"]
    batches, count = [], 0
    for batch in entrypoint(root, block["data"])():
        take = min(len(next(iter(batch.values()))), block["samples"] - count)
        batches.append({k: v[:take] for k, v in batch.items()})
        count += take
        if count >= block["samples"]:
            return batches
    raise SystemExit("not enough calibration data")


def ranges(source: Path, batches: list[dict], method: str) -> dict[str, float]:
    """Symmetric activation ranges of Conv/MatMul/Gemm inputs/outputs by ONNX Runtime's calibrator."""
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(self.batches, None)

    extra = {"symmetric": True, **({"num_bins": 2048, "num_quantized_bins": 128} if method == "entropy" else {})}
    how = {"max": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy}[method]
    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(source, ["Conv", "MatMul", "Gemm"], augmented_model_path=f"{tmp}/a.onnx",
                                       calibrate_method=how, extra_options=extra)
        calibrator.collect_data(Reader())
        data = calibrator.compute_data()
        del calibrator
    return {name: float(max(np.max(np.abs(data[name].range_value[0])), np.max(np.abs(data[name].range_value[1]))))
            for name in data}


def int8(spec: dict, source: Path, out: Path, amax: dict, batches: list[dict]) -> Path:
    import numpy as np
    import onnx

    block = spec["calibration"]
    (out / "int8").mkdir()
    cache = out / "int8" / "calibration.cache"
    cache.write_text("\n".join(["TRT-8501-EntropyCalibration2"] + [
        f"{name}: {struct.pack('!f', max(amax[name], 1e-12) / 127.0).hex()}" for name in sorted(amax)]) + "\n")
    nodes = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node]
    exclude = [n for n in nodes if any(fnmatch.fnmatchcase(n, p) for p in block.get("exclude") or [])]
    data = {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}
    from modelopt.onnx.quantization import quantize

    with tempfile.TemporaryDirectory() as tmp:  # modelopt writes over the file it is given
        copy = Path(tmp) / "model.onnx"
        shutil.copyfile(source, copy)
        quantize(str(copy), quantize_mode="int8", calibration_data=data, calibration_method="max",
                 calibration_cache_path=str(cache), calibration_shapes=",".join(
                     f"{n}:{'x'.join(map(str, a.shape))}" for n, a in data.items()),
                 calibration_eps=["cpu"], op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                 nodes_to_exclude=exclude or None, high_precision_dtype="fp32",
                 output_path=str(out / "int8" / "model.onnx"), log_level="WARNING")
    return out / "int8" / "model.onnx"


def int8_checks(path: Path, amax: dict, batches: list[dict], inputs: list[list], names: list[str]) -> None:
    """No held-out sample is a calibration sample; the held-out activations of the quantized
    inputs against their calibrated ranges (the graph run unoptimized, those tensors exposed)."""
    import hashlib

    import numpy as np
    import onnx
    import onnxruntime as ort

    def rows(arrays):
        return {hashlib.sha256(b"".join(np.ascontiguousarray(a[r]).tobytes() for a in arrays)).hexdigest()
                for r in range(len(arrays[0]))}

    seen = set().union(*(rows([b[n] for n in names]) for b in batches))
    if set().union(*(rows(sample) for sample in inputs)) & seen:
        raise SystemExit("int8: held-out samples are calibration samples")
    model = onnx.load(str(path))
    quantized = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"} & set(amax)
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in sorted(quantized) if t not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outside = 0
    for sample in inputs:
        values = session.run(sorted(quantized), dict(zip(names, sample)))
        outside += sum(float(np.abs(v).max()) > amax[t] for t, v in zip(sorted(quantized), values))
    print(f"  int8: {len(quantized)} quantized activations, {outside} held-out peaks outside their range",
          file=sys.stderr)


def fp16(source: Path, out: Path) -> Path:
    import onnx
    from modelopt.onnx.autocast import convert_to_mixed_precision

    model = convert_to_mixed_precision(str(source), low_precision_type="fp16", keep_io_types=True,
                                       providers=["cpu"])
    del model.graph.value_info[:]
    (out / "fp16").mkdir()
    onnx.save(model, str(out / "fp16" / "model.onnx"))
    return out / "fp16" / "model.onnx"


def engine(spec: dict, source: Path, target: Path) -> None:
    """A TensorRT-RTX engine for sm86 and sm89, strongly typed, one profile over the manifest's dims."""
    import tensorrt_rtx as trt

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.lines = []

        def log(self, severity, message):
            self.lines.append(message)

    logger = Logger()
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(source)):
        raise SystemExit(f"TensorRT-RTX parser rejected {source}")
    config = builder.create_builder_config()
    config.builder_optimization_level = 3
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    config.num_compute_capabilities = 2
    config.set_compute_capability(trt.ComputeCapability.SM86, 0)
    config.set_compute_capability(trt.ComputeCapability.SM89, 1)
    dims = bounds(spec)
    profile = builder.create_optimization_profile()
    for inp in spec["model"]["inputs"]:
        triple = [[dims[d][k] if isinstance(d, str) else d for d in inp["shape"]] for k in range(3)]
        profile.set_shape(inp["name"], *triple)
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise SystemExit(f"TensorRT-RTX could not build {target}: {logger.lines[-3:]}")
    target.mkdir()
    (target / "model.plan").write_bytes(bytes(plan))


def triton(name: str, spec: dict, source: Path, out: Path, python: bool) -> Path:
    """A Triton repository around the ONNX graph: onnxruntime_onnx, or the python backend."""
    import onnx

    graph = onnx.load(str(source), load_external_data=False).graph
    types = {1: "TYPE_FP32", 7: "TYPE_INT64"}
    tensors = [(v.name, types[v.type.tensor_type.elem_type],
                [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim][1:])
               for v in list(graph.input) + list(graph.output)]
    repo = out / ("triton-py" if python else "triton")
    version = repo / (f"{name}_py" if python else name) / "1"
    version.mkdir(parents=True)
    served = version / "artifact" / "model.onnx" if python else version / "model.onnx"
    served.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, served)
    if python:
        (version / "model.py").write_text("import onnxruntime  # serves artifact/model.onnx\n")
    blocks = [f'  {{ name: "{n}" data_type: {t} dims: {d} }}' for n, t, d in tensors]
    inputs = len(graph.input)
    (version.parent / "config.pbtxt").write_text(
        f'name: "{version.parent.name}"\n' + ('backend: "python"\n' if python else 'platform: "onnxruntime_onnx"\n')
        + f"max_batch_size: {bounds(spec)['batch'][2]}\ninput [\n" + ",\n".join(blocks[:inputs])
        + "\n]\noutput [\n" + ",\n".join(blocks[inputs:]) + "\n]\n")
    return served


# -- one model ------------------------------------------------------------------------------------


def prepare(manifest: Path, out: Path) -> dict:
    """The first half for one model: up to the calibration ranges. Every model's ranges are
    computed before modelopt runs: its quantize patches ONNX Runtime's calibrators for the rest
    of the process (measured here: the encoder's ranges came out empty after the CNN's quantize).
    The build has no such order: each stage runs in a worker process of its own."""
    import torch

    spec = yaml.safe_load(manifest.read_text())
    root, name = manifest.parent, spec["name"]
    out = out / name
    names = [i["name"] for i in spec["model"]["inputs"]]
    fp32 = dict(FP32, **(spec.get("validation", {}).get("fp32") or {}), scale="fp32" not in spec.get("validation", {}))
    with step(f"{name}: load model, eager reference"):
        module = entrypoint(root, spec["model"]["entrypoint"])().eval()
        held_out = samples(spec)
        with torch.no_grad():
            expected = [numpy_outputs(module(**dict(zip(names, s)))) for s in held_out]
            raw = module(**dict(zip(names, held_out[0])))
        output_names = list(raw) if isinstance(raw, dict) else ["output"]
        inputs = [[t.numpy() for t in s] for s in held_out]
    with step(f"{name}: torch.export + save/load + validate"):
        program, _ = export(spec, module, out, inputs, expected, fp32)
    with step(f"{name}: onnx export + checks + validate"):
        onnx_path = to_onnx(spec, program, out, output_names)
        validate("onnx", ort_runner(onnx_path, names), inputs, expected, fp32)
    with step(f"{name}: onnx.ort extended + validate"):
        validate("onnx-ort", ort_runner(ort_optimize(onnx_path, out), names), inputs, expected, fp32)
    with step(f"{name}: int8 calibration ranges ({spec['calibration']['method']})"):
        batches = calibration(spec, root)
        amax = ranges(onnx_path, batches, spec["calibration"]["method"])
    return dict(spec=spec, name=name, out=out, names=names, fp32=fp32, inputs=inputs, expected=expected,
                onnx_path=onnx_path, batches=batches, amax=amax)


def finish(job: dict) -> None:
    """The second half for one model: INT8 Q/DQ, fp16, engines, repositories, AOTInductor."""
    spec, name, out, names, fp32 = job["spec"], job["name"], job["out"], job["names"], job["fp32"]
    inputs, expected, onnx_path = job["inputs"], job["expected"], job["onnx_path"]
    with step(f"{name}: int8 modelopt Q/DQ + validate + checks"):
        int8_path = int8(spec, onnx_path, out, job["amax"], job["batches"])
        validate("int8", ort_runner(int8_path, names), inputs, expected, {"min_cosine": INT8_MIN_COSINE})
        int8_checks(int8_path, job["amax"], job["batches"], inputs, names)
    with step(f"{name}: fp16 AutoCast + validate"):
        fp16_path = fp16(onnx_path, out)
        validate("fp16", ort_runner(fp16_path, names), inputs, expected, FP16)
    for precision, path in (("fp32", onnx_path), ("fp16", fp16_path), ("int8", int8_path)):
        with step(f"{name}: TensorRT-RTX {precision} engine"):
            engine(spec, path, out / f"trt-{precision}")
    if "triton" in spec["targets"]:
        for python in (False, True):
            with step(f"{name}: triton{'-py' if python else ''} repository + validate"):
                served = triton(name, spec, onnx_path, out, python)
                validate("triton", ort_runner(served, names), inputs, expected, fp32)
    with step(f"{name}: AOTInductor compile + validate"):
        aoti(out, inputs, expected, fp32)


def main() -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", type=Path, help="the folder holding cnn.yaml and encoder.yaml")
    parser.add_argument("out", type=Path)
    parser.add_argument("--json", type=Path, help="write the per-step times here")
    parser.add_argument("--models", nargs="+", default=["cnn", "encoder"])
    args = parser.parse_args()
    with step("import torch, onnx, onnxruntime"):
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import torch  # noqa: F401
    jobs = [prepare((args.manifests / f"{name}.yaml").resolve(), args.out) for name in args.models]
    for job in jobs:
        finish(job)
    print(f"in-script time {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(STEPS, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
