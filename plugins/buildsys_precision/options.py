"""Options of the precision stages, validated from a target's ``options.<stage>`` block."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: What TensorRT's ONNX parser and ONNX Runtime both accept as INT8 Q/DQ: the weights and
#: activations feeding these ops; the rest of the graph stays in high precision.
DEFAULT_OP_TYPES = ("Conv", "MatMul", "Gemm")


class Int8Options(BaseModel):
    """``onnx.int8``: explicit, symmetric INT8 Q/DQ from calibration on ``calibration.data``.

    ``calibrator``: who places the Q/DQ nodes on the ranges buildsys computed (any method):
    ``modelopt`` (nvidia-modelopt ONNX PTQ, TensorRT's placement rules) or ``ort``
    (onnxruntime.quantization with TensorRT-compatible settings: symmetric, no bias Q/DQ). ``high_precision``: the dtype modelopt leaves
    the unquantized ops in (fp16 suits TensorRT; fp32 suits ONNX Runtime on CPU).
    ``calibration`` is filled in by the planner (the manifest's block and the data's digest);
    it is not a user option.
    """

    model_config = ConfigDict(extra="forbid")
    calibrator: Literal["modelopt", "ort"] = "modelopt"
    high_precision: Literal["fp32", "fp16"] = "fp32"
    calibration: dict | None = Field(default=None, description="set by the planner")
    tolerance: dict | None = Field(default=None, description="set by the planner: validation's, for exclude: auto")


class LowerOptions(BaseModel):
    """``onnx.fp16`` / ``onnx.bf16``: precision lowering with modelopt AutoCast.

    ``keep_io_types`` keeps the graph's inputs and outputs fp32 (callers need not convert);
    ``exclude`` stays fp32: op types (``op:Softmax``), node-name globs or module path globs
    (``encoder.layer.*.intermediate.dense``; see ``exclusions.py``), or ``auto``: the layers
    adding the most error, kept until the target's validation tolerance holds, within
    ``auto_rounds`` rounds (see ``auto.py``); ``exclude_op_types`` / ``exclude_nodes`` are the
    older forms (op types, exact node names).
    """

    model_config = ConfigDict(extra="forbid")
    keep_io_types: bool = True
    exclude_op_types: list[str] = []
    exclude_nodes: list[str] = []
    exclude: list[str] | Literal["auto"] = []
    auto_rounds: int = Field(default=4, ge=1, le=12, description="exclude: auto's bound: rounds 1, 2, 3 ... keep "
                             "1, 2, 4 ... more of the worst layers")
    reference: Literal["random", "calibration"] = Field(default="random", description=(
        "inputs AutoCast runs the fp32 graph on to find what must stay fp32: random (AutoCast's own, "
        "every dynamic dim 1), or the manifest's calibration batches, for graphs random inputs break "
        "(token ids, a KV-cache step whose attention_mask length is past + seq)"))
    calibration: dict | None = Field(default=None, description="set by the planner")
    tolerance: dict | None = Field(default=None, description="set by the planner: validation's, for exclude: auto")
