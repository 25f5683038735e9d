"""The unmapped-operator diagnosis names only operators the exporter would have to translate."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from buildsys_onnx import diagnose


@torch.library.custom_op("buildsys_diag::twice", mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@twice.register_fake
def _(x):
    return torch.empty_like(x)


class Casting(torch.nn.Module):
    def forward(self, x):  # .to(dtype) records aten._assert_tensor_metadata in the program
        return twice(x.to(torch.float16).float())


def test_checks_the_exporter_drops_are_not_reported_as_unmapped():
    program = torch.export.export(Casting(), (torch.randn(2, 3),))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert "aten._assert_tensor_metadata.default" in targets  # the false positive's ingredient is there
    found = diagnose.unmapped_ops(program, {}, 18)
    assert [u.op for u in found] == ["torch.ops.buildsys_diag.twice.default"]


def test_the_fallback_reading_of_the_exporter_error_skips_them_too():
    error = RuntimeError("target=torch.ops.aten._assert_tensor_metadata.default ... "
                         "target=torch.ops.buildsys_diag.twice.default")
    assert [u.op for u in diagnose.from_exporter_error(error)] == ["torch.ops.buildsys_diag.twice.default"]
