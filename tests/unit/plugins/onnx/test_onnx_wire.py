"""The onnx-free reader of .onnx files agrees with onnx on hand-made graphs (inputs, dims,
external data), and refuses bytes that are not protobuf."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")
from onnx import TensorProto, helper, numpy_helper

from buildsys_onnx import source, wire


def model_with(inputs, initializers=(), nodes=None):
    nodes = nodes or [helper.make_node("Identity", [inputs[0].name], ["y"])]
    graph = helper.make_graph(nodes, "g", list(inputs), [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_inputs_dtypes_and_dims_without_onnx(tmp_path):
    w = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    model = model_with([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, None]),
                        helper.make_tensor_value_info("ids", TensorProto.INT64, [0, "seq"]),
                        helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 2])], [w])
    model.graph.input[0].type.tensor_type.shape.dim[2].Clear()  # an axis with neither size nor name
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    found = wire.inputs(wire.graph(path))
    assert found == [("x", TensorProto.FLOAT, ["batch", 3, None]), ("ids", TensorProto.INT64, [0, "seq"])]
    entries = [source._input(*item, "m.onnx") for item in found]
    assert entries[0] == {"name": "x", "dtype": "float32", "shape": ["batch", 3, "x_2"]}
    assert entries[1] == {"name": "ids", "dtype": "int64", "shape": [0, "seq"]}


def test_external_data_locations_match_onnx(tmp_path):
    big = numpy_helper.from_array(np.arange(4096, dtype=np.float32).reshape(64, 64), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 64])
    def model():
        return model_with([x], [big], [helper.make_node("MatMul", ["x", "w"], ["y"])])

    path = tmp_path / "m.onnx"
    onnx.save_model(model(), str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    assert wire.external_locations(wire.graph(path)) == {"weights.bin"}
    loaded = onnx.load(str(path), load_external_data=False)
    assert [p.name for p in source.external_files(loaded, path)] == ["weights.bin"]
    onnx.save(model(), str(tmp_path / "inline.onnx"))  # saving with external data changed the first one
    assert wire.external_locations(wire.graph(tmp_path / "inline.onnx")) == set()


def test_bytes_that_are_not_protobuf_are_refused(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"garbage\n")
    with pytest.raises(wire.WireError):
        wire.graph(path)
