"""The per-layer report: parsed from TensorRT-RTX's build log (lines copied from a real build)."""

from __future__ import annotations

import json

from buildsys_tensorrt import layers

F = "Strides: [8,1], StrideOrder: [1,0], Datatype: {t}, Format: (Linear) Row major linear format"
RTX_LOG = "\n".join([
    "Layers:",
    "Name: __mye144_0_myl0_0, LayerType: shape_call, Inputs: [], Constants: [], Outputs: [], TacticName: , "
    "StreamId: 0, Metadata: ",
    "Name: __myl_MulMinMaxRounCast_myl0_1, LayerType: kgen, Inputs: [ { Name: x, Dimensions: [-1,8], "
    + F.format(t="Float") + " }], Constants: [ { Name: c, Dimensions: [1], " + F.format(t="Float") + " }], "
    "Outputs: [ { Name: y.1, Dimensions: [-1,8], " + F.format(t="Int8") + " }], TacticName: __myl_MulMinMaxRounCast_0x2e8e, "
    "StreamId: 0, Metadata: [ONNX Layer: q_x]",
    "Name: mm_myl0_2, LayerType: gemm, Inputs: [ { Name: y.1, Dimensions: [-1,8], " + F.format(t="Int8") + " }], "
    "Constants: [ { Name: Wq, Dimensions: [8,4], " + F.format(t="Int8") + " }, { Name: s, Dimensions: [1], "
    + F.format(t="Float") + " }], Outputs: [ { Name: y, Dimensions: [-1,4], " + F.format(t="Float") + " }], "
    "TacticName: __myelin_CASK_STUB, StreamId: 0, Metadata: [ONNX Layer: dq_x][ONNX Layer: dq_w][ONNX Layer: mm]",
    "",
    "I/O Tensors:",
    " Name: x, IOMode: Input, DataType: Float, Dimensions: [-1,8], Location: Device",
])


def test_layers_from_the_rtx_build_log():
    found = layers.from_log(RTX_LOG)
    assert [(layer["name"], layer["type"], layer["precision"]) for layer in found] == [
        ("__mye144_0_myl0_0", "shape_call", "none"),
        ("__myl_MulMinMaxRounCast_myl0_1", "kgen", "fp32"),
        ("mm_myl0_2", "gemm", "int8")]
    gemm = found[2]
    assert gemm["onnx"] == ["dq_x", "dq_w", "mm"] and gemm["tactic"] == "__myelin_CASK_STUB"
    assert gemm["inputs"] == ["Int8"] and gemm["outputs"] == ["Float"]
    assert found[1]["outputs"] == ["Int8"]


def test_summary_counts_layers_per_precision():
    report = layers.summary(layers.from_log(RTX_LOG))
    assert report["count"] == 3 and report["precision_counts"] == {"fp32": 1, "int8": 1, "none": 1}


def test_narrowest_precision_wins():
    assert layers.precision_of(["Float", "Half"]) == "fp16"
    assert layers.precision_of(["Half", "Int8", "Float"]) == "int8"
    assert layers.precision_of(["Int64"]) == "int64"
    assert layers.precision_of([]) == "none"


def test_inspector_json_in_the_shape_enterprise_tensorrt_writes():
    """Enterprise TensorRT is not installed here: this is its documented JSON form, hand-written."""
    text = json.dumps({"Layers": [
        {"Name": "conv1", "LayerType": "CaskConvolution", "TacticName": "sm80_xmma_fprop",
         "Inputs": [{"Name": "x", "Format/Datatype": "Row major linear FP16 format"}],
         "Outputs": [{"Name": "y", "Format/Datatype": "Row major linear FP16 format"}],
         "Metadata": "[ONNX Layer: Conv_0]"},
        "a layer name only"]})
    first, second = layers.from_inspector(text)
    assert (first["precision"], first["tactic"], first["onnx"]) == ("fp16", "sm80_xmma_fprop", ["Conv_0"])
    assert second["name"] == "a layer name only" and second["precision"] == "none"
