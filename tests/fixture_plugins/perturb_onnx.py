"""A broken optimizer: an onnx -> onnx stage that adds noise to every weight matrix (seeded), so
the graph still runs and stays finite but computes another model (garbage tokens)."""

from buildsys import StageSpec, hookimpl


def perturb(ctx, inputs, options):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(inputs[0].primary))
    rng = np.random.default_rng(0)
    for tensor in model.graph.initializer:
        weights = numpy_helper.to_array(tensor)
        if weights.ndim >= 2 and weights.dtype == np.float32:
            noisy = weights + rng.normal(0, float(weights.std()) + 1e-3, weights.shape).astype(np.float32)
            tensor.CopyFrom(numpy_helper.from_array(noisy, tensor.name))
    onnx.save(model, str(ctx.out_dir / "model.onnx"))
    return dict(inputs[0].meta, primary="model.onnx", external_data=False)


@hookimpl
def buildsys_register_stages():
    return [StageSpec("fixture.perturb", consumes=("onnx",), produces="onnx", run=perturb, primary="model.onnx")]
