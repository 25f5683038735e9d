"""The ONNX Runtime runner on int8 Q/DQ graphs: on x86 CPUs without VNNI, ORT's fused u8 x s8
kernels sum products in int16 pairs and saturate on full-range weights, so the runner runs the
graph as written there (fusions off) and says so; elsewhere it runs ORT's defaults."""

from __future__ import annotations

import pytest

from buildsys import InputArtifact

np = pytest.importorskip("numpy")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from buildsys_onnx import runtime  # noqa: E402

AVX2_ONLY = "processor : 0\nflags : fpu sse2 avx avx2 fma\n"
VNNI = "processor : 0\nflags : fpu sse2 avx avx2 avx512f avx512_vnni\n"


@pytest.mark.parametrize("cpuinfo, saturates", [(AVX2_ONLY, True), (VNNI, False),
                                                ("flags : avx2 avx_vnni\n", False), ("", False)])
def test_saturating_cpus_are_those_without_vnni(cpuinfo, saturates):
    assert runtime.saturating_int8_cpu(cpuinfo) is saturates


def qdq_matmul(path):
    """x (fp32) -> Q/DQ -> MatMul with a full-range int8 weight (|q| = 127) -> y."""
    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 128, size=(64, 8)).astype(np.int8)
    weight[0] = 127
    inits = [numpy_helper.from_array(weight, "w_q"), numpy_helper.from_array(np.float32(0.01), "w_s"),
             numpy_helper.from_array(np.int8(0), "zp"), numpy_helper.from_array(np.float32(10 / 127), "x_s")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_s", "zp"], ["x_q"]),
             helper.make_node("DequantizeLinear", ["x_q", "x_s", "zp"], ["x_dq"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "zp"], ["w_dq"]),
             helper.make_node("MatMul", ["x_dq", "w_dq"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, path)
    return weight.astype(np.float64) * 0.01


@pytest.mark.parametrize("saturating", [True, False])
def test_runner_runs_int8_as_written_on_saturating_cpus_and_says_so(tmp_path, monkeypatch, saturating):
    weight = qdq_matmul(tmp_path / "model.onnx")
    monkeypatch.setattr(runtime, "saturating_int8_cpu", lambda: saturating)
    artifact = InputArtifact(kind="onnx", precision="int8", hardware="any", directory=tmp_path,
                             files={"model.onnx": tmp_path / "model.onnx"}, meta={"primary": "model.onnx"})
    run = runtime.load_runner(artifact, "cpu")
    assert bool(run.notes) is saturating
    if saturating:
        assert "AVX2 without VNNI" in run.notes[0] and "reduce_range" in run.notes[0]
        x = np.full((4, 64), 9.9, dtype=np.float32)  # large activations: where int16 pairs overflow
        x_dq = np.round(x / (10 / 127)).clip(-128, 127) * (10 / 127)
        np.testing.assert_allclose(run([x])[0], x_dq @ weight, rtol=1e-4)


def test_a_graph_too_new_for_this_onnxruntime_says_so_and_how_to_cap_it(tmp_path):
    from buildsys import BuildsysError

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 99  # from a future onnx
    onnx.save(model, str(tmp_path / "m.onnx"))
    artifact = InputArtifact("onnx", "fp32", "any", tmp_path, {"m.onnx": tmp_path / "m.onnx"},
                             {"primary": "m.onnx", "opset": 13, "ir_version": 99})
    with pytest.raises(BuildsysError) as caught:
        runtime.load_runner(artifact, "cpu")
    assert "cannot load this graph (opset 13, IR version 99)" in caught.value.message
    assert "runtimes: {onnxruntime: '>=" in caught.value.hint
