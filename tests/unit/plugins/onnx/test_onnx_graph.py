"""The ONNX plugin's graph helpers on hand-made graphs: opset conversion and its blockers,
dim renaming, external data, error messages. onnx only; no torch, no export."""

from __future__ import annotations

import pytest

from buildsys import StageFailed

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from buildsys_onnx import diagnose, export, naming  # noqa: E402


def graph_model(nodes, inputs, outputs, opset: int, initializers=()):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(initializers)),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def reduce_model():
    """ReduceMean-18 whose axes come from a graph input: no adapter can take it below 18."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["s0", 4])
    axes = helper.make_tensor_value_info("axes", TensorProto.INT64, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["s0", 1])
    return graph_model([helper.make_node("ReduceMean", ["x", "axes"], ["y"])], [x, axes], [y], 18)


def test_ensure_opset_converts_what_it_can():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["s0", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["s0", 4])
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [x], [y], 18)
    assert export.default_opset(export.ensure_opset(model, 14)) == 14
    assert export.ensure_opset(model, 18) is model


def test_a_blocked_conversion_names_the_operator_and_the_step():
    with pytest.raises(StageFailed) as info:
        export.ensure_opset(reduce_model(), 17)
    assert "cannot be converted to opset 17" in str(info.value)
    assert "ReduceMean (changed in opset 18; converting to 17 fails" in str(info.value)


def test_an_operator_missing_at_the_target_is_named_with_its_first_opset():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [4], [1.0] * 4)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    model = graph_model([helper.make_node("LayerNormalization", ["x", "scale"], ["y"])], [x], [y], 18, [scale])
    assert diagnose.conversion_blockers(model, 16) == ["LayerNormalization (does not exist before opset 17)"]


def test_an_operator_newer_than_the_stamp_blocks_going_up():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    model = graph_model([helper.make_node("Gelu", ["x"], ["y"])], [x], [y], 18)  # as the exporter leaves it
    with pytest.raises(StageFailed, match=r"Gelu \(an opset-20 operator in an opset-18 graph"):
        export.ensure_opset(model, 26)


def test_io_renaming_moves_a_clashing_internal_value_aside():
    import onnx_ir as ir

    x = helper.make_tensor_value_info("input_ids", TensorProto.FLOAT, [2, 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 4]) for n in ("relu_1", "input_ids")]
    nodes = [helper.make_node("Relu", ["input_ids"], ["embedding"]), helper.make_node("Relu", ["embedding"], ["relu_1"])]
    model = ir.serde.deserialize_model(graph_model(nodes, [x], outs, 18))
    naming.name_io(model, ["ids"], ["embedding", "echo"])  # "embedding" is an internal value; "echo" passes the input through
    proto = ir.serde.serialize_model(model)
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["ids"]
    assert [o.name for o in proto.graph.output] == ["embedding", "echo"]
    assert [n.op_type for n in proto.graph.node] == ["Relu", "Relu", "Identity"]
    assert proto.graph.node[0].output == ["embedding_1"] and proto.graph.node[1].input == ["embedding_1"]


def test_dims_are_renamed_everywhere_and_verified():
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["s77", 3])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["2*s77", 3])
    model = graph_model([helper.make_node("Concat", ["images", "images"], ["out"], axis=0)], [x], [y], 18)
    dims = naming.name_dynamic_dims(model, {"images": {"0": "batch"}})
    assert dims == {"images": {"0": "batch"}}
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "2*batch"


def test_a_specialised_dim_is_an_error():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [x],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], 18)
    with pytest.raises(StageFailed, match="input 'x' axis 0 is 1, expected dynamic dim 'batch'"):
        naming.name_dynamic_dims(model, {"x": {"0": "batch"}})


def test_external_data_holds_large_tensors_and_keeps_small_ones_inline(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 512])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 512])

    def model():
        weight = helper.make_tensor("w", TensorProto.FLOAT, [512], [0.5] * 512)  # 2 KiB, as float_data
        axes = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
        nodes = [helper.make_node("Mul", ["x", "w"], ["t"]), helper.make_node("Mul", ["t", "one"], ["y"])]
        return graph_model(nodes, [x], [y], 18, [weight, axes])

    for folder in ("ext", "auto"):
        (tmp_path / folder).mkdir()
    assert export.write(model(), tmp_path / "ext", True) is True
    assert (tmp_path / "ext" / export.DATA).stat().st_size == 2048
    saved = onnx.load(str(tmp_path / "ext" / export.PRIMARY), load_external_data=False)
    assert [t.data_location for t in saved.graph.initializer] == [1, 0]  # w external, the scalar inline
    assert export.write(model(), tmp_path / "auto", "auto") is False  # far below 2 GB
    assert not (tmp_path / "auto" / export.DATA).exists()


def test_unmapped_message_lists_every_operator_and_the_ways_out():
    found = [diagnose.Unmapped("torch.ops.a.b.default", 2, ["m.py:3 in forward: x = b(x)"], "no decomposition"),
             diagnose.Unmapped("torch.ops.a.c.default", 1, ["m.py:4 in forward: y = c(x)"])]
    text = diagnose.unmapped_message(found, 20, 28)
    assert "2 operator(s) at opset 20" in text and "torch.ops.a.b.default (2 nodes); exporter: no decomposition" in text
    assert "at m.py:4 in forward: y = c(x)" in text and "up to 28 here" in text
    assert "buildsys_onnx_translations" in text and "rewrite the model" in text
    assert "none here" in diagnose.unmapped_message(found, 28, 28)
