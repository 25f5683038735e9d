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
