"""The Triton plugin's pure parts: batch dim rules, config text, model names, and how the
python backend's model.py groups and splits batched requests (with a stand-in session)."""

from __future__ import annotations

import pytest

from buildsys.manifest import ModelSpec
from buildsys_triton import config, python_model
from buildsys_triton.options import RepositoryOptions, check_model_name
from buildsys_triton.signature import Tensor

np = pytest.importorskip("numpy")


def model(shapes: dict[str, list], dims: dict) -> ModelSpec:
    return ModelSpec(framework="torch", entrypoint="m.py:build", dims=dims,
                     inputs=[{"name": n, "dtype": "float32", "shape": s} for n, s in shapes.items()])


BATCH = {"batch": {"min": 1, "opt": 4, "max": 16}, "seq": {"min": 1, "max": 128}}
OUT = [Tensor("y", "float32", (-1, 10))]


@pytest.mark.parametrize("shapes, dims, outputs, expected", [
    ({"a": ["batch", "seq"], "b": ["batch", "seq"]}, BATCH, OUT, 16),
    ({"a": ["batch", 3]}, {"batch": {"buckets": [1, "2-8", 32]}}, None, 32),   # buckets: the largest
    ({"a": ["batch", 3]}, {"batch": {"min": 2, "max": 8}}, OUT, 0),             # Triton batches from 1
    ({"a": ["batch", 3], "b": ["seq", 3]}, BATCH, OUT, 0),                       # no common first dim
    ({"a": [1, 3]}, {}, OUT, 0),                                                 # static
    ({"a": ["batch", 3]}, BATCH, [Tensor("y", "float32", (10,))], 0),           # an output without it
])
def test_max_batch_size(shapes, dims, outputs, expected):
    assert config.max_batch_size(model(shapes, dims), outputs) == expected


def test_dims_leave_out_the_batch_axis_only_when_batched():
    assert config.dims(["batch", "seq", 8], batched=True) == [-1, 8]
    assert config.dims(["batch", "seq", 8], batched=False) == [-1, -1, 8]


def test_an_unbatched_config_parses_with_full_dims_and_no_dynamic_batching():
    text_format = pytest.importorskip("google.protobuf.text_format")
    pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    spec = model({"a": ["batch", 3]}, {"batch": {"min": 2, "max": 8}})
    how = config.serving("onnx", "auto")
    inputs = [Tensor("a", "float32", ("batch", 3))]
    cfg = config.model_config("m", how, spec, [Tensor("y", "float16", (-1, 2))], "cpu", "fp16",
                              RepositoryOptions(), inputs)
    parsed = text_format.Parse(config.render(cfg), pb2.ModelConfig())
    assert parsed.max_batch_size == 0 and not parsed.HasField("dynamic_batching")
    assert list(parsed.input[0].dims) == [-1, 3] and parsed.output[0].data_type == pb2.TYPE_FP16
    assert parsed.input[0].name == inputs[0].name


@pytest.mark.parametrize("kind, backend, platform", [
    ("onnx", "auto", "onnxruntime_onnx"), ("onnx.ort", "onnxruntime_onnx", "onnxruntime_onnx"),
    ("tensorrt.plan", "auto", "tensorrt_plan"), ("onnx", "python", None), ("torch.aoti", "auto", None),
    ("stablehlo", "auto", None)])
def test_serving(kind, backend, platform):
    assert config.serving(kind, backend).platform == platform


def test_the_tensorrt_accelerator_only_where_triton_applies_it():
    onnx = config.serving("onnx", "auto")
    assert config.execution_accelerator(onnx, "tensorrt", True, "fp16")["parameters"] == {"precision_mode": "FP16"}
    with pytest.raises(ValueError, match="on a GPU only"):
        config.execution_accelerator(onnx, "tensorrt", False, "fp32")
    with pytest.raises(ValueError, match="FP32 or FP16, not int8"):
        config.execution_accelerator(onnx, "tensorrt", True, "int8")


@pytest.mark.parametrize("name", ["resnet50", "cnn_v2", "bert.base-1", "_x", "a+b"])
def test_names_triton_serves(name):
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", ".x", "a/b", "a\\b", "a b", "a..b", "é", "x" * 129, "a?b"])
def test_names_triton_would_refuse(name):
    with pytest.raises(ValueError, match="cannot name a Triton model"):
        check_model_name(name)


class Doubler:
    """A stand-in for a buildsys.load session: records how it was called."""

    def __init__(self):
        self.calls = []

    def run(self, feed):
        self.calls.append({k: v.shape for k, v in feed.items()})
        return {"y": feed["x"] * 2}


def test_grouped_requests_run_as_one_call_and_split_back():
    served = python_model.TritonPythonModel()
    served.batched, served.inputs, served.session = True, ["x"], Doubler()
    feeds = [{"x": np.full((n, 3), n, np.float32)} for n in (1, 3, 2)]
    results = served._run(feeds)
    assert served.session.calls == [{"x": (6, 3)}]
    assert [r["y"].tolist() for r in results] == [(f["x"] * 2).tolist() for f in feeds]


def test_requests_of_other_shapes_run_one_by_one():
    served = python_model.TritonPythonModel()
    served.batched, served.inputs, served.session = True, ["x"], Doubler()
    results = served._run([{"x": np.ones((1, 3), np.float32)}, {"x": np.ones((2, 5), np.float32)}])
    assert served.session.calls == [{"x": (1, 3)}, {"x": (2, 5)}] and results[1]["y"].shape == (2, 5)


def test_outputs_are_handed_over_writeable_and_contiguous():
    frozen = np.arange(6, dtype=np.float32).reshape(2, 3)
    frozen.flags.writeable = False  # as JAX returns them: DLPack in the stub refuses these
    strided = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    for array in (frozen, strided):
        out = python_model.exportable(array)
        assert out.flags.writeable and out.flags.c_contiguous and np.array_equal(out, array)
        np.from_dlpack(out)  # what the stub does with it


#: python_model.py's sha256 for each stage version: editing the file without bumping
#: buildsys_triton.STAGE_VERSION would leave cached repositories with the old model.py.
MODEL_PY = {2: "02723335b3046e9a32ccdcb69b4a2312ba8e8f0e7816f485977184da6fff79ff"}


def test_model_py_changes_bump_the_stage_version():
    import hashlib
    from pathlib import Path

    import buildsys_triton

    digest = hashlib.sha256(Path(python_model.__file__).read_bytes()).hexdigest()
    assert MODEL_PY.get(buildsys_triton.STAGE_VERSION) == digest, (
        "python_model.py changed: bump buildsys_triton.STAGE_VERSION and record its new sha256 here")
