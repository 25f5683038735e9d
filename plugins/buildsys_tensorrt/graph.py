"""What the ONNX graph carries, read before TensorRT sees it: precision, Q/DQ form, operators.

TensorRT takes precision from the graph (strongly typed networks): fp16/bf16 tensors from a
precision-lowering stage, int8 from explicit Q/DQ pairs. A target asking for a precision the
graph does not carry is refused here, naming the stage that provides it, and Q/DQ forms the
parser rejects (asymmetric zero points, uint8) are reported per node before parsing, so the
user sees every offending node at once rather than the parser's first assertion.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from buildsys import StageFailed

PROVIDERS = {"fp16": "onnx.fp16", "bf16": "onnx.bf16", "int8": "onnx.int8"}
QDQ = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class GraphFacts:
    """Counts that say which precisions a graph carries."""

    ops: Counter = field(default_factory=Counter)
    nodes: dict[str, list[str]] = field(default_factory=dict)  # op type -> node names
    dtypes: Counter = field(default_factory=Counter)  # element types of initializers, values and casts
    qdq_nodes: int = 0
    qdq_problems: list[str] = field(default_factory=list)

    def carries(self) -> list[str]:
        """The precisions present: fp32 always (graph I/O), plus fp16/bf16/int8 when seen."""
        found = ["fp32"]
        found += ["fp16"] if self.dtypes.get("float16") else []
        found += ["bf16"] if self.dtypes.get("bfloat16") else []
        found += ["int8"] if self.qdq_nodes else []
        return found

    def to_json(self) -> dict:
        return {"carries": self.carries(), "qdq_nodes": self.qdq_nodes,
                "float_types": {k: v for k, v in sorted(self.dtypes.items()) if k in ("float", "float16", "bfloat16")}}


def inspect(path: Path) -> GraphFacts:
    """Read ``path`` (without external weights) and count what says which precision it carries."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    facts = GraphFacts()
    graph = model.graph
    names = {t.name: t for t in graph.initializer}
    for tensor in graph.initializer:
        facts.dtypes[_type_name(tensor.data_type)] += 1
    for value in [*graph.input, *graph.output, *graph.value_info]:
        facts.dtypes[_type_name(value.type.tensor_type.elem_type)] += 1
    for node in graph.node:
        facts.ops[node.op_type] += 1
        facts.nodes.setdefault(node.op_type, []).append(node.name or node.output[0])
        if node.op_type == "Cast":
            to = next((a.i for a in node.attribute if a.name == "to"), 0)
            facts.dtypes[_type_name(to)] += 1
        if node.op_type in QDQ:
            facts.qdq_nodes += 1
            facts.qdq_problems += _qdq_form(node, names)
    return facts


def _type_name(data_type: int) -> str:
    """``float``, ``float16``, ``bfloat16``, ``int8`` ... (lower-case ONNX element type names)."""
    import onnx

    try:
        return onnx.TensorProto.DataType.Name(data_type).lower()
    except ValueError:
        return f"type{data_type}"


def _qdq_form(node, initializers: dict) -> list[str]:
    """Problems TensorRT has with this Q/DQ node: it needs int8 with zero point 0 (symmetric)."""
    from onnx import numpy_helper

    if len(node.input) < 3 or node.input[2] not in initializers:
        return []  # no zero point, or a computed one: left to the parser, which names the node
    array = numpy_helper.to_array(initializers[node.input[2]])
    label = f"{node.op_type} '{node.name or node.output[0]}'"
    problems = []
    if array.dtype.name != "int8":
        problems.append(f"{label} quantizes to {array.dtype.name}; TensorRT needs int8")
    if array.any():
        problems.append(f"{label} has a non-zero zero point (asymmetric); TensorRT needs symmetric (zero point 0)")
    return problems


def check_precision(facts: GraphFacts, precision: str) -> None:
    """Refuse a target precision the graph does not carry, naming the stage that provides it."""
    if precision in facts.carries():
        return
    stage = PROVIDERS.get(precision, "a precision stage")
    seen = ", ".join(f"{k} x{v}" for k, v in sorted(facts.to_json()["float_types"].items())) or "none"
    what = "no QuantizeLinear/DequantizeLinear nodes" if precision == "int8" else f"no {precision} tensors"
    raise StageFailed(f"the target asks for a {precision} engine, but the input ONNX graph has {what} "
                      f"(float tensors: {seen}); TensorRT builds strongly typed networks, so precision "
                      f"must arrive in the graph", hint=f"build the ONNX input with stage '{stage}' first "
                      f"(a target with precision: {precision} plans it when installed)")


def check_qdq(facts: GraphFacts) -> None:
    """Refuse Q/DQ forms TensorRT rejects, listing every node."""
    if facts.qdq_problems:
        raise StageFailed(f"{len(facts.qdq_problems)} Q/DQ node(s) in a form TensorRT rejects: "
                          + "; ".join(facts.qdq_problems),
                          hint="quantize with symmetric int8 scales (zero point 0), e.g. the onnx.int8 stage "
                               "(nvidia-modelopt); ONNX Runtime's default QDQ output is uint8/asymmetric")
