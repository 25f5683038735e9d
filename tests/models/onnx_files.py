"""Small ONNX graphs written with onnx.helper (no torch, no export): sources for ``framework: onnx``."""

from __future__ import annotations


def mlp(batch="batch", opset: int = 18) -> bytes:
    """y = relu(x @ w1) @ w2 with x: [batch, 8] (``batch`` a symbolic dim, or an int: static)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((16, 4)).astype(np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="buildsys-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
