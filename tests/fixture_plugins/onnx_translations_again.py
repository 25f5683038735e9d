"""Translates an operator that fixture_plugins.onnx_translations translates too: a clash."""

from buildsys import hookimpl


@hookimpl
def buildsys_onnx_translations():
    import torch
    from onnxscript import opset18 as op

    def scale(x, value: float):
        return op.Mul(x, op.CastLike(value, x))

    return {torch.ops.buildsys_test.scale.default: scale}
