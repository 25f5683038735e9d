"""``exclude`` over the graphs of one artifact (a seq2seq decoder step and its encoder): each
graph gets the nodes a pattern selects in it, and a pattern must match in one graph at least."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")

from buildsys import ManifestError  # noqa: E402
from buildsys_precision.exclusions import expand, expand_each  # noqa: E402


def graph(path, ops: list[str]):
    """A chain of unary nodes ``<Op>_<i>`` over one float input."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node(op, [f"t{i}"], [f"t{i + 1}"], name=f"{op}_{i}") for i, op in enumerate(ops)]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info(f"t{len(ops)}", TensorProto.FLOAT, [2])]))
    onnx.save(model, str(path))
    return path


def test_each_graph_gets_what_the_patterns_select_in_it(tmp_path):
    step = graph(tmp_path / "step.onnx", ["Relu", "Softmax", "Relu"])
    encoder = graph(tmp_path / "encoder.onnx", ["Tanh", "Softmax"])
    assert expand_each([step, encoder], ["op:Softmax", "op:Tanh", "Relu_2"], "exclude") == [
        ["Softmax_1", "Relu_2"], ["Softmax_1", "Tanh_0"]]
    assert expand_each([step, encoder], [], "exclude") == [[], []]


def test_a_pattern_matching_in_no_graph_is_a_manifest_error(tmp_path):
    step = graph(tmp_path / "step.onnx", ["Relu", "Softmax"])
    encoder = graph(tmp_path / "encoder.onnx", ["Tanh"])
    with pytest.raises(ManifestError, match="'op:Sofmax' matches no node") as caught:
        expand_each([step, encoder], ["op:Tanh", "op:Sofmax"], "options.onnx.fp16.exclude")
    assert "op:Softmax" in caught.value.hint
    with pytest.raises(ManifestError, match="'op:Tanh' matches no node"):  # one graph: as before
        expand(step, ["op:Tanh"], "options.onnx.fp16.exclude")


def test_exclude_auto_on_a_graph_with_companion_programs_is_refused_naming_them(tmp_path):
    from buildsys import InputArtifact, StageFailed
    from buildsys_precision.lowering import run_fp16
    from buildsys_precision.options import LowerOptions

    source = InputArtifact("onnx", "fp32", "any", tmp_path, {"model.onnx": tmp_path / "model.onnx"},
                           {"primary": "model.onnx", "programs": {"encoder": {"primary": "encoder.onnx"}}})
    with pytest.raises(StageFailed, match=r"exclude: auto judges one graph's outputs.*\(encoder\)") as caught:
        run_fp16(None, [source], LowerOptions(exclude="auto"))
    assert "exclude: [...]" in caught.value.hint
