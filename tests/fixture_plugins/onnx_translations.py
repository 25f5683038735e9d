"""Supplies ONNX translations for the custom operators of tests/models/onnx_cases.py."""

from buildsys import hookimpl


@hookimpl
def buildsys_onnx_translations():
    from onnxscript import opset18 as op

    def scale(x, value: float):
        return op.Mul(x, op.CastLike(value, x))

    def shift(x, value: float):
        return op.Add(x, op.CastLike(value, x))

    return {"buildsys_test::scale": scale, "buildsys_test::shift.default": shift}
