"""The highest ai.onnx opset this onnxruntime loads with default session options.

ORT refuses models stamped with an opset newer than the last *released* one its bundled ONNX
knows ("Opset N is under development"), even where kernels for N exist, so loading is the test.
Feeds the ORT_MAX table of plugins/buildsys_onnx/opsets.py.
"""

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper


def loads(opset: int) -> bool:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return True
    except Exception:
        return False


accepted = [v for v in range(7, onnx.defs.onnx_opset_version() + 3) if loads(v)]
print(f"onnxruntime {ort.__version__} (onnx {onnx.__version__}): loads opset {min(accepted)}..{max(accepted)}")
