"""Models named by file: ``framework: onnx`` (an existing .onnx) end to end, and the bad files
each refused with one line, exit 2 (a manifest error), nothing written."""

from __future__ import annotations

import json

import pytest

from buildsys.testing import ProjectDir

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

ONNX_MANIFEST = """
schema: 1
name: fromonnx
version: 1.0.0
model:
  framework: onnx
  entrypoint: {file}
{dims}targets:
  portable: {{format: onnx}}
  ort:      {{format: onnx.ort}}
  int8:     {{format: onnx, precision: int8}}
  fp16:     {{format: onnx, precision: fp16}}
calibration: {{data: calib.py:batches, samples: 16}}
"""
DIMS = "  dims: {batch: {min: 1, opt: 2, max: 8}}\n"
CALIB = """
import numpy as np

def batches():
    rng = np.random.default_rng(7)
    for _ in range(4):
        yield {"tokens": rng.standard_normal((4, 5, 32)).astype(np.float32)}
"""


class TwoLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = torch.nn.Linear(32, 64), torch.nn.Linear(64, 32)

    def forward(self, tokens):
        return self.b(torch.relu(self.a(tokens)))


@pytest.fixture(scope="module")
def onnx_bytes(tmp_path_factory) -> bytes:
    """The two-layer model through torch.onnx (dynamo), batch dynamic: a user's .onnx file."""
    path = tmp_path_factory.mktemp("export") / "two.onnx"
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.onnx.export(TwoLayer().eval(), (torch.randn(2, 5, 32),), dynamo=True, input_names=["tokens"],
                                output_names=["scores"], dynamic_shapes=({0: batch},))
    program.save(str(path))
    return path.read_bytes()


def project_with(root, text: str, files: dict) -> ProjectDir:
    project = ProjectDir(root)
    project.manifest(text, files=files)
    return project


def assert_nothing_written(project: ProjectDir) -> None:
    assert not project.out.exists() or not any(project.out.iterdir()), list(project.out.rglob("*"))
    assert not project.lock().exists()


def test_onnx_file_builds_ort_int8_fp16_validated(tmp_path, onnx_bytes):
    project = project_with(tmp_path / "p", ONNX_MANIFEST.format(file="models/two.onnx", dims=DIMS),
                           {"models/two.onnx": onnx_bytes, "calib.py": CALIB})
    project.cli("build", "manifest.yaml", "-j", "2").assert_ok()
    for target in ("portable", "ort", "int8", "fp16"):
        record = json.loads((project.target_dir("fromonnx", "1.0.0", target) / "artifact.json").read_text())
        assert record["validation"]["status"] == "passed", (target, record["validation"])
        assert record["signature"]["inputs"] == [
            {"name": "tokens", "dtype": "float32", "shape": ["batch", 5, 32], "range": None}]
    portable = json.loads((project.target_dir("fromonnx", "1.0.0", "portable") / "artifact.json").read_text())
    source = onnx.load_from_string(onnx_bytes)
    assert portable["meta"]["opset"] == source.opset_import[0].version
    assert portable["meta"]["ir_version"] == source.ir_version
    assert portable["meta"]["output_names"] == ["scores"]
    assert portable["chain"][1]["stage"] == "onnx.import"
    int8 = json.loads((project.target_dir("fromonnx", "1.0.0", "int8") / "artifact.json").read_text())
    assert int8["meta"]["quantization"]["quantized_nodes"] > 0  # not an fp32 graph under an int8 name
    project.cli("build", "manifest.yaml").assert_nodes(built=0)  # the file's digest is stable: all cached


def test_a_dynamic_dim_without_a_range_names_it_and_the_line_to_add(tmp_path, onnx_bytes):
    project = project_with(tmp_path / "p", ONNX_MANIFEST.format(file="two.onnx", dims=""),
                           {"two.onnx": onnx_bytes, "calib.py": CALIB})
    result = project.cli("build", "manifest.yaml").assert_error(
        2, "manifest.yaml:6:", "input 'tokens' axis 0 is the dynamic dim 'batch'",
        "add under model.dims:  batch: {min: 1, opt: 8, max: 64}")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert_nothing_written(project)


@pytest.mark.parametrize("case, fragment", [
    ("corrupt", "'two.onnx' is not a readable ONNX model"),
    ("unchecked", "'two.onnx' fails onnx.checker"),
    ("missing", "'two.onnx' does not exist"),
])
def test_a_bad_onnx_file_is_one_line_exit_2_nothing_written(tmp_path, onnx_bytes, case, fragment):
    files = {"calib.py": CALIB}
    if case == "corrupt":
        files["two.onnx"] = onnx_bytes[: len(onnx_bytes) // 3] + b"\xff" * 64
    elif case == "unchecked":
        model = onnx.load_from_string(onnx_bytes)
        model.graph.node[0].input[0] = "no_such_value"  # an edge from nowhere: onnx.checker refuses it
        files["two.onnx"] = model.SerializeToString()
    project = project_with(tmp_path / "p", ONNX_MANIFEST.format(file="two.onnx", dims=DIMS), files)
    result = project.cli("build", "manifest.yaml").assert_error(2, "manifest.yaml:6:", fragment)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert_nothing_written(project)


# -- framework: torch.exported ----------------------------------------------------------------

PT2_MANIFEST = """
schema: 1
name: frompt2
version: 1.0.0
model:
  framework: torch.exported
  entrypoint: two.pt2
{extra}  inputs: [{{name: tokens, dtype: float32, shape: [batch, 5, 32]}}]
  dims: {{batch: {{min: 1, opt: 2, max: 8}}}}
targets:
  exported: {{format: torch.exported}}
  onnx:     {{format: onnx}}
"""
OPS = """
import torch

@torch.library.custom_op("buildsys_tests::twice", mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2

@twice.register_fake
def _(x):
    return torch.empty_like(x)
"""


@pytest.fixture(scope="module")
def pt2_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("pt2") / "two.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(TwoLayer().eval(), (torch.randn(2, 5, 32),), dynamic_shapes=({0: batch},)),
                      str(path))
    return path.read_bytes()


def test_pt2_builds_exported_and_onnx_validated(tmp_path, pt2_bytes):
    project = project_with(tmp_path / "p", PT2_MANIFEST.format(extra=""), {"two.pt2": pt2_bytes})
    project.cli("build", "manifest.yaml", "-j", "2").assert_ok()
    for target in ("exported", "onnx"):
        record = json.loads((project.target_dir("frompt2", "1.0.0", target) / "artifact.json").read_text())
        assert record["validation"]["status"] == "passed", (target, record["validation"])
    exported = json.loads((project.target_dir("frompt2", "1.0.0", "exported") / "artifact.json").read_text())
    assert exported["chain"][1]["stage"] == "torch.import"
    assert exported["meta"]["output_names"] == ["output"] and exported["meta"]["custom_ops"] == []
    primary = next(f for f in exported["files"] if f["role"] == "primary")
    assert (project.target_dir("frompt2", "1.0.0", "exported") / primary["name"]).read_bytes() == pt2_bytes


def test_a_pt2_names_its_own_inputs_dims_and_ranges(tmp_path):
    """No inputs in the manifest: names, dtypes, shapes and each dim's range come from the program
    (read at plan time without torch); a dim shared by two inputs is one dim; the manifest's dims
    still override a range."""

    class Masked(torch.nn.Module):
        def forward(self, tokens, mask):
            return (tokens * mask[..., None].float()).sum(1)

    batch, seq = torch.export.Dim("batch", min=1, max=16), torch.export.Dim("seq", min=2, max=40)
    program = torch.export.export(Masked(), (torch.randn(3, 7, 4), torch.ones(3, 7, dtype=torch.int64)),
                                  dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}))
    torch.export.save(program, str(tmp_path / "masked.pt2"))
    text = ("schema: 1\nname: named\nversion: '1'\nmodel:\n  framework: torch.exported\n  entrypoint: masked.pt2\n"
            "{dims}targets:\n  exported: {{format: torch.exported}}\n  onnx: {{format: onnx}}\n")
    project = project_with(tmp_path / "p", text.format(dims=""), {"masked.pt2": (tmp_path / "masked.pt2").read_bytes()})
    project.cli("build", "manifest.yaml").assert_ok()
    for target in ("exported", "onnx"):
        record = json.loads((project.target_dir("named", "1", target) / "artifact.json").read_text())
        assert record["validation"]["status"] == "passed", (target, record["validation"])
        assert record["signature"]["inputs"] == [
            {"name": "tokens", "dtype": "float32", "shape": ["tokens_dim0", "tokens_dim1", 4], "range": None},
            {"name": "mask", "dtype": "int64", "shape": ["tokens_dim0", "tokens_dim1"], "range": None}]
        assert record["signature"]["dims"]["tokens_dim0"] == {"min": 1, "opt": 3, "max": 16}
        assert record["signature"]["dims"]["tokens_dim1"] == {"min": 2, "opt": 7, "max": 40}
    narrowed = project_with(tmp_path / "q", text.format(dims="  dims: {tokens_dim0: {min: 1, opt: 2, max: 4}}\n"),
                            {"masked.pt2": (tmp_path / "masked.pt2").read_bytes()})
    narrowed.cli("build", "manifest.yaml", "-t", "exported").assert_ok()
    record = json.loads((narrowed.target_dir("named", "1", "exported") / "artifact.json").read_text())
    assert record["signature"]["dims"]["tokens_dim0"] == {"min": 1, "opt": 2, "max": 4}


def test_a_pt2_with_a_custom_op_loads_once_its_module_is_named_under_imports(tmp_path):
    import importlib.util

    ops_file = tmp_path / "ops.py"
    ops_file.write_text(OPS)
    spec = importlib.util.spec_from_file_location("buildsys_tests_ops", ops_file)
    ops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ops)

    class WithOp(TwoLayer):
        def forward(self, tokens):
            return ops.twice(super().forward(tokens))

    pt2 = tmp_path / "two.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(WithOp().eval(), (torch.randn(2, 5, 32),), dynamic_shapes=({0: batch},)),
                      str(pt2))
    files = {"two.pt2": pt2.read_bytes(), "ops.py": OPS}
    text = PT2_MANIFEST.format(extra="").replace("  onnx:     {format: onnx}\n", "")
    without = project_with(tmp_path / "without", text, files)
    result = without.cli("build", "manifest.yaml")
    assert result.exit_code == 1, result.stderr
    assert ("cannot load two.pt2: it calls custom operator(s) buildsys_tests::twice, which no imported module "
            "registers") in result.stderr and "model.imports" in result.stderr
    assert "error when deserializing" not in result.stderr
    with_imports = project_with(tmp_path / "with", PT2_MANIFEST.format(extra="  imports: [ops.py]\n")
                                .replace("  onnx:     {format: onnx}\n", ""), files)
    with_imports.cli("build", "manifest.yaml").assert_ok()  # loaded, and validated in its own worker
    record = json.loads((with_imports.target_dir("frompt2", "1.0.0", "exported") / "artifact.json").read_text())
    assert record["validation"]["status"] == "passed" and record["meta"]["custom_ops"] == ["buildsys_tests::twice"]


@pytest.mark.parametrize("case, fragment", [
    ("pickle", "'two.pt2' is not a torch.export ExportedProgram"),
    ("zip", "'two.pt2' is not a torch.export ExportedProgram"),
    ("unbounded", "input 'tokens' axis 0 is the dynamic dim 'tokens_dim0', which the program leaves without an "
                  "upper bound (add under model.dims:  tokens_dim0: {min: 1, opt: 2, max: 64})"),
    ("missing", "'two.pt2' does not exist"),
])
def test_a_bad_pt2_is_one_line_exit_2_nothing_written(tmp_path, pt2_bytes, case, fragment):
    files = {}
    if case == "pickle":
        torch.save({"weight": torch.ones(2)}, str(tmp_path / "state.pt"))
        files["two.pt2"] = (tmp_path / "state.pt").read_bytes()
    elif case == "zip":
        files["two.pt2"] = b"not a zip"
    elif case == "unbounded":
        program = torch.export.export(TwoLayer().eval(), (torch.randn(2, 5, 32),),
                                      dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
        torch.export.save(program, str(tmp_path / "open.pt2"))
        files["two.pt2"] = (tmp_path / "open.pt2").read_bytes()
    text = PT2_MANIFEST.format(extra="")
    if case == "unbounded":
        text = text.replace("  inputs: [{name: tokens, dtype: float32, shape: [batch, 5, 32]}]\n", "") \
            .replace("  dims: {batch: {min: 1, opt: 2, max: 8}}\n", "")
    project = project_with(tmp_path / "p", text, files)
    result = project.cli("build", "manifest.yaml").assert_error(2, "manifest.yaml:6:", fragment)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert_nothing_written(project)


def test_the_onnx_example_manifest_builds_validated(tmp_path):
    """manifests/tiny-cnn-onnx.yaml, as the README shows it: no Python model code is run."""
    import shutil
    from pathlib import Path

    manifests = Path(__file__).resolve().parents[2] / "manifests"
    project = ProjectDir(tmp_path / "p")
    project.root.mkdir(parents=True)
    shutil.copy(manifests / "tiny-cnn-onnx.yaml", project.root / "manifest.yaml")
    shutil.copytree(manifests / "models", project.root / "models", ignore=shutil.ignore_patterns("__pycache__"))
    project.cli("build", "manifest.yaml", "-j", "2").assert_ok()
    for target in ("onnx", "onnx-ort", "int8", "fp16"):
        record = json.loads((project.target_dir("tiny-cnn-onnx", "1.0.0", target) / "artifact.json").read_text())
        assert record["validation"]["status"] == "passed", (target, record["validation"])
    trt = json.loads((project.target_dir("tiny-cnn-onnx", "1.0.0", "trt-fp16") / "artifact.json").read_text())
    assert trt["kind"] == "tensorrt.plan" and trt["hardware"] == "cuda-sm86.sm89"  # built ahead of time, no GPU


def test_onnx_external_data_is_fingerprinted_and_carried(tmp_path, onnx_bytes):
    model = onnx.load_from_string(onnx_bytes)
    folder = tmp_path / "p" / "models"
    folder.mkdir(parents=True)
    onnx.save_model(model, str(folder / "two.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="two.weights", size_threshold=0)
    text = ONNX_MANIFEST.format(file="models/two.onnx", dims=DIMS).split("  ort:")[0]  # the portable target only
    project = project_with(tmp_path / "p", text, {"calib.py": CALIB})
    project.cli("build", "manifest.yaml").assert_ok()
    record = json.loads((project.target_dir("fromonnx", "1.0.0", "portable") / "artifact.json").read_text())
    assert record["validation"]["status"] == "passed" and record["meta"]["external_data"] is True
    assert {f["name"] for f in record["files"]} >= {"model.onnx.data"}
    weights = folder / "two.weights"  # other weights, same graph file: the source changed, so it rebuilds
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x80\x3f")
    project.cli("build", "manifest.yaml").assert_nodes(built=["onnx.import", "onnx.reference", "validate"])


MODEL_WITH_OP = OPS + """

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(8, 8)

    def forward(self, x):
        return twice(self.a(x))


def build():
    return Net().eval()
"""
TORCH_WITH_OP = """
schema: 1
name: withop
version: 1.0.0
model:
  framework: torch
  entrypoint: models/net.py:build
{extra}  inputs: [{{name: x, dtype: float32, shape: [batch, 8]}}]
  dims: {{batch: {{min: 1, opt: 2, max: 4}}}}
targets:
  exported: {{format: torch.exported}}
"""


def test_a_torch_model_with_a_custom_op_validates_once_imports_names_its_module(tmp_path):
    """The .pt2 of a model registering its own operator is validated in another worker, which
    must import that module first: without model.imports, one line naming the operator and the fix."""
    files = {"models/net.py": MODEL_WITH_OP}
    without = project_with(tmp_path / "without", TORCH_WITH_OP.format(extra=""), files)
    result = without.cli("build", "manifest.yaml")
    assert result.exit_code == 1 and "Traceback" not in result.stderr, result.stderr
    assert "it calls custom operator(s) buildsys_tests::twice, which no imported module registers" in result.stderr
    assert "model.imports" in result.stderr and "error when deserializing" not in result.stderr
    with_imports = project_with(tmp_path / "with", TORCH_WITH_OP.format(extra="  imports: [models/net.py]\n"), files)
    with_imports.cli("build", "manifest.yaml").assert_ok()
    record = json.loads((with_imports.target_dir("withop", "1.0.0", "exported") / "artifact.json").read_text())
    assert record["validation"]["status"] == "passed"


HEAVY = {"torch", "onnx", "onnxruntime", "onnxscript"}


def cli_imports(project: ProjectDir, trace, *args: str) -> set[str]:
    """The ML frameworks the ``buildsys`` CLI process (not its workers) imported."""
    project.cli(*args, env={"BUILDSYS_TRACE_IMPORTS": str(trace)}).assert_ok()
    entries = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    [cli] = [e for e in entries if e["process"] == "cli"]
    return {m.split(".")[0] for m in cli["modules"]} & HEAVY


def test_file_sources_plan_and_rebuild_without_importing_a_framework(tmp_path, onnx_bytes, pt2_bytes):
    """The graph's inputs are remembered per file digest: only the first plan of an .onnx reads
    it with onnx (for onnx.checker); a .pt2 is checked as a zip archive, without torch."""
    text = ONNX_MANIFEST.format(file="two.onnx", dims=DIMS).split("  ort:")[0]
    project = project_with(tmp_path / "onnx", text, {"two.onnx": onnx_bytes, "calib.py": CALIB})
    assert cli_imports(project, tmp_path / "cold.jsonl", "build", "manifest.yaml") == {"onnx"}  # the checker
    assert cli_imports(project, tmp_path / "noop.jsonl", "build", "manifest.yaml") == set()
    pt2 = project_with(tmp_path / "pt2", PT2_MANIFEST.format(extra=""), {"two.pt2": pt2_bytes})
    assert cli_imports(pt2, tmp_path / "plan.jsonl", "plan", "manifest.yaml") == set()
