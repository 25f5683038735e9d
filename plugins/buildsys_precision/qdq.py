"""Reading an explicit-quantization (Q/DQ) ONNX graph: what was quantized, with which scales,
and how held-out activations compare with the calibrated ranges.

Only symmetric INT8 is produced here (zero point 0), so a QuantizeLinear's calibrated range is
``[-127 * scale, 127 * scale]``: values beyond it are clipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

QMAX = 127.0
#: A held-out activation this many times a max-calibrated range, or this share of values
#: clipped (any method), is reported: the calibration data did not cover what the model sees.
RANGE_RATIO_WARN = 2.0
CLIPPED_SHARE_WARN = 0.01


def constants(graph) -> dict[str, Any]:
    """Initializers and Constant-node values by tensor name, as numpy arrays."""
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def summarize(model, values: dict, op_types: list[str], excluded: list[str]) -> dict:
    """Quantized and left-out nodes of ``op_types``, and a summary of the Q/DQ scales;
    ``values`` is ``constants(model.graph)``."""
    import numpy as np

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    quantized, left_out = [], []
    for node in graph.node:
        if node.op_type not in op_types:
            continue
        fed = any(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear" for i in node.input)
        (quantized if fed else left_out).append(node.name)
    weights, activations = _scales(graph, values)
    act_scales = np.array([s for _, s in activations], dtype=np.float64)
    return {
        "op_types": list(op_types),
        "quantized_nodes": len(quantized),
        "left_out_nodes": left_out,
        "excluded_by_manifest": [n for n in excluded],
        "quantize_linear": sum(1 for n in graph.node if n.op_type == "QuantizeLinear"),
        "dequantize_linear": sum(1 for n in graph.node if n.op_type == "DequantizeLinear"),
        "weights": {"tensors": len(weights), "per_channel": sum(1 for _, n in weights if n > 1)},
        "activations": {
            "tensors": len(activations),
            "amax_min": float(act_scales.min() * QMAX) if act_scales.size else None,
            "amax_median": float(np.median(act_scales) * QMAX) if act_scales.size else None,
            "amax_max": float(act_scales.max() * QMAX) if act_scales.size else None,
        },
        "quantized": quantized,
    }


#: Ops that carry a model's weights and compute; what an INT8 graph leaves of them in float is
#: what its speed-up misses (recurrent layers, einsums, attention kernels ...).
HEAVY = ("MatMul", "Gemm", "Conv", "ConvTranspose", "LSTM", "GRU", "RNN", "Einsum", "Attention",
         "MultiHeadAttention", "MatMulNBits")
_PASS_THROUGH = ("DequantizeLinear", "QuantizeLinear", "Transpose", "Cast", "Reshape", "Identity", "Unsqueeze")


def weight_coverage(model, values: dict, quantized: list[str]) -> dict:
    """How much of the model's weights the quantized nodes hold: per heavy op type, nodes and
    weight elements quantized vs all (a weight is an initializer feeding the node, through
    Q/DQ, casts, transposes or reshapes)."""
    import numpy as np

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    done = set(quantized)

    def weight_of(name: str, depth: int = 0) -> int:
        if name in values:
            return int(np.size(values[name]))
        node = producers.get(name)
        if node is None or depth > 4 or node.op_type not in _PASS_THROUGH or not node.input:
            return 0
        return weight_of(node.input[0], depth + 1)

    by_op: dict[str, dict] = {}
    for node in graph.node:
        if node.op_type not in HEAVY:
            continue
        row = by_op.setdefault(node.op_type, {"nodes": 0, "quantized_nodes": 0, "weights": 0, "quantized_weights": 0})
        size = sum(weight_of(i) for i in node.input if i)
        row["nodes"] += 1
        row["weights"] += size
        if node.name in done:
            row["quantized_nodes"] += 1
            row["quantized_weights"] += size
    total = sum(r["weights"] for r in by_op.values())
    share = sum(r["quantized_weights"] for r in by_op.values()) / total if total else None
    return {"by_op": by_op, "weights": total, "quantized_share": share}


def weight_coverage_warning(cover: dict, op_types: list[str]) -> str | None:
    """One line when most of the model's weights stay in float (None otherwise)."""
    share = cover.get("quantized_share")
    if share is None or share >= 0.5:
        return None
    missed = sorted(((op, r["weights"] - r["quantized_weights"], r["nodes"] - r["quantized_nodes"])
                     for op, r in cover["by_op"].items() if r["weights"] > r["quantized_weights"]),
                    key=lambda t: -t[1])
    what = "; ".join(f"{op}: {nodes} node(s), {elements / cover['weights']:.0%} of the weights"
                     for op, elements, nodes in missed[:4])
    return (f"INT8 covers only {share:.0%} of the model's weights; left in float: {what} — "
            f"this stage quantizes {'/'.join(op_types)} (calibration.op_types), so most of the compute "
            "keeps its original precision")


def _scales(graph, values) -> tuple[list[tuple[str, int]], list[tuple[str, float]]]:
    """(weight tensor, scale count) and (activation tensor, scale) for every Q/DQ pair."""
    import numpy as np

    weights, activations = [], []
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 2:
            continue
        scale = values.get(node.input[1])
        if scale is None:
            continue
        source = node.input[0]
        if source in values:  # a constant weight (fp32 -> Q, or int8 stored -> DQ)
            weights.append((source, int(np.size(scale))))
        elif node.op_type == "QuantizeLinear":
            activations.append((source, float(np.max(np.abs(scale)))))
    return weights, activations


def activation_ranges(model, values: dict) -> dict[str, dict]:
    """``{tensor: {"amax": float, "consumers": [node names]}}`` for every quantized activation;
    ``values`` is ``constants(model.graph)``."""
    graph = model.graph
    _, activations = _scales(graph, values)
    quantize_of = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    dq_source = {n.output[0]: quantize_of.get(n.input[0]) for n in graph.node if n.op_type == "DequantizeLinear"}
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for tensor in node.input:
            source = dq_source.get(tensor)
            if source is not None and node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
                consumers.setdefault(source, []).append(node.name)
    return {tensor: {"amax": scale * QMAX, "consumers": sorted(set(consumers.get(tensor, [])))}
            for tensor, scale in activations}


def observe(model_path: Path, tensors: list[str], feeds: list[dict[str, Any]]) -> dict[str, dict]:
    """Max |x| and the share of values beyond ``amax`` for ``tensors`` over ``feeds``.

    The graph gets those tensors as extra outputs and runs unoptimized on ONNX Runtime's CPU
    provider, so fusions cannot remove them.
    """
    import numpy as np
    import onnx

    from .layerwise import exposed_session

    session = exposed_session(onnx.load(str(model_path)), tensors)
    seen: dict[str, list] = {t: [] for t in tensors}
    for feed in feeds:
        for tensor, value in zip(tensors, session.run(tensors, feed)):
            seen[tensor].append(np.abs(np.asarray(value, dtype=np.float64)).ravel())
    return {t: np.concatenate(v) if v else np.zeros(0) for t, v in seen.items()}


def coverage(ranges: dict[str, dict], observed: dict[str, Any]) -> list[dict]:
    """Per quantized activation: calibrated amax, held-out max, ratio and clipped share, worst first."""
    import numpy as np

    rows = []
    for tensor, info in ranges.items():
        values = observed.get(tensor)
        if values is None or values.size == 0 or info["amax"] <= 0:
            continue
        peak = float(values.max())
        rows.append({"tensor": tensor, "consumers": info["consumers"], "amax": info["amax"], "held_out_max": peak,
                     "ratio": peak / info["amax"], "clipped": float(np.mean(values > info["amax"]))})
    return sorted(rows, key=lambda r: (-r["clipped"], -r["ratio"]))


def outliers(rows: list[dict], method: str) -> list[dict]:
    """Activations the calibration did not cover. Entropy and percentile ranges clip the tail
    on purpose, so for them only the clipped share counts; a max range should hold everything."""
    limit = RANGE_RATIO_WARN if method == "max" else float("inf")
    return [r for r in rows if r["ratio"] > limit or r["clipped"] > CLIPPED_SHARE_WARN]


def describe(row: dict) -> str:
    layer = ", ".join(row["consumers"][:2]) or row["tensor"]
    return (f"{layer} (input '{row['tensor']}': held-out max |x| {row['held_out_max']:.3g} vs calibrated "
            f"{row['amax']:.3g}, {row['ratio']:.1f}x; {100 * row['clipped']:.1f}% clipped)")
