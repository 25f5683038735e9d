"""Tiny ONNX graphs for the TensorRT tests, made with onnx.helper (no torch, milliseconds).

Every graph maps ``x: float32[batch, 8]`` to ``y: float32[batch, 4]`` through a MatMul, so one
manifest model block (``MODEL``) describes them all; they differ in what precision they carry
and in what TensorRT's parser makes of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

RNG = np.random.RandomState(0)
WEIGHTS = RNG.randn(8, 4).astype(np.float32)


def model_block(batch=(1, 2, 4), buckets=None, inputs=(("x", ["batch", 8]),)):
    """A stand-in for the manifest's model block (``inputs`` with named shapes, ``dims``)."""
    from buildsys.manifest import ModelSpec

    dims = {"batch": {"buckets": list(buckets)} if buckets else dict(zip(("min", "opt", "max"), batch))}
    return ModelSpec.model_validate({
        "framework": "onnx", "entrypoint": "model.onnx",
        "inputs": [{"name": name, "dtype": "float32", "shape": list(shape)} for name, shape in inputs],
        "dims": dims})


def _save(path: Path, nodes, initializers, opset: int = 17, domains=(), x_shape=("batch", 8)) -> Path:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", T.FLOAT, [x_shape[0], 4])], initializers)
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    model = helper.make_model(graph, opset_imports=opsets)
    onnx.save(model, str(path))
    return Path(path)


def fp32(path: Path, x_shape=("batch", 8)) -> Path:
    return _save(path, [helper.make_node("MatMul", ["x", "W"], ["m"], name="mm"),
                        helper.make_node("Relu", ["m"], ["y"], name="relu")],
                 [numpy_helper.from_array(WEIGHTS, "W")], x_shape=x_shape)


def fp16(path: Path) -> Path:
    """The shape of an AutoCast graph: cast in, fp16 weights and MatMul, cast out."""
    return _save(path, [helper.make_node("Cast", ["x"], ["xh"], to=T.FLOAT16, name="cast_in"),
                        helper.make_node("MatMul", ["xh", "W"], ["m"], name="mm"),
                        helper.make_node("Relu", ["m"], ["r"], name="relu"),
                        helper.make_node("Cast", ["r"], ["y"], to=T.FLOAT, name="cast_out")],
                 [numpy_helper.from_array(WEIGHTS.astype(np.float16), "W")])


def _qdq(zero_point, weights_quantized: bool = True) -> tuple[list, list]:
    scale = np.float32(np.abs(WEIGHTS).max() / 127)
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "zp"], ["xq"], name="q_x"),
             helper.make_node("DequantizeLinear", ["xq", "xs", "zp"], ["xd"], name="dq_x")]
    inits = [numpy_helper.from_array(np.array(0.02, np.float32), "xs"), numpy_helper.from_array(zero_point, "zp")]
    if weights_quantized:
        quantized = np.clip(np.round(WEIGHTS / scale), -127, 127).astype(np.int8)
        nodes.append(helper.make_node("DequantizeLinear", ["Wq", "ws", "wzp"], ["W"], name="dq_w"))
        inits += [numpy_helper.from_array(quantized, "Wq"), numpy_helper.from_array(np.array(scale), "ws"),
                  numpy_helper.from_array(np.array(0, np.int8), "wzp")]
    else:
        inits.append(numpy_helper.from_array(WEIGHTS, "W"))
    return nodes + [helper.make_node("MatMul", ["xd", "W"], ["y"], name="mm")], inits


def int8(path: Path) -> Path:
    """Explicit symmetric int8 Q/DQ on the activation and the weights (what TensorRT wants)."""
    nodes, inits = _qdq(np.array(0, np.int8))
    return _save(path, nodes, inits)


def asymmetric(path: Path) -> Path:
    """ONNX Runtime's default form: uint8 with a non-zero zero point, which TensorRT rejects."""
    nodes, inits = _qdq(np.array(128, np.uint8), weights_quantized=False)
    return _save(path, nodes, inits)


def unsupported(path: Path) -> Path:
    """Two nodes of operators the parser has no importer for (a custom-domain op and CumProd)."""
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"], name="mm"),
             helper.make_node("FancyOp", ["m"], ["f"], name="fancy", domain="my.domain"),
             helper.make_node("CumProd", ["f", "axis"], ["y"], name="cumprod")]
    return _save(path, nodes, [numpy_helper.from_array(WEIGHTS, "W"),
                               numpy_helper.from_array(np.array(1, np.int64), "axis")],
                 opset=26, domains=("my.domain",))
