"""jax.export diagnostics in-process: which of inputs, dims or a platform is to blame."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from buildsys import StageFailed
from buildsys.manifest import ModelSpec
from buildsys_jax import export
from buildsys_jax.source import as_model

jax = pytest.importorskip("jax")  # the jax extra is installed in CI: this never skips there
jnp = jax.numpy
np = pytest.importorskip("numpy")

HERE = Path(__file__).resolve().parent


def context(shape=("batch", 4), dims=None, dtype="float32"):
    model = ModelSpec.model_validate({
        "framework": "jax", "entrypoint": "m.py:build",
        "inputs": [{"name": "x", "dtype": dtype, "shape": list(shape)}],
        "dims": dims or {"batch": {"min": 1, "opt": 4, "max": 8}}})
    return SimpleNamespace(model=model, root=HERE)  # this folder holds the "user code" below


def needs_three(params, x):
    return jnp.zeros((x.shape[0] - 3,)) + x.sum()


def test_a_good_function_exports_with_bounded_symbolic_dims():
    model = as_model((lambda p, x: {"z": x @ p, "s": x.sum(-1)}, np.ones((4, 2), np.float32)), "m.py:build")
    ctx = context()
    assert export.output_names(export.check_inputs(ctx, model)) == ["s", "z"]
    exported = export.export_model(ctx, model, ("cpu", "tpu"))
    assert exported.platforms == ("cpu", "tpu") and [str(a) for a in exported.in_avals] == ["float32[batch,4]"]
    assert "batch <= 8" in exported.mlir_module()


def test_output_names_for_tuples_and_single_arrays():
    one = jax.ShapeDtypeStruct((2,), jnp.float32)
    assert export.output_names(one) == ["output"]
    assert export.output_names((one, {"a": one})) == ["output_0", "output_1.a"]


def test_inputs_that_do_not_fit_the_function():
    model = as_model((lambda p, x: x @ p, np.ones((4, 2), np.float32)), "m.py:build")
    with pytest.raises(StageFailed) as info:
        export.check_inputs(context(shape=("batch", 5)), model)
    assert "does not accept the manifest's inputs (x: float32[4, 5])" in str(info.value)
    assert "test_jax_export.py" in str(info.value)  # the user's line


def test_a_dim_range_the_function_cannot_honour_names_the_dims_and_the_line():
    model = as_model((needs_three, {}), "m.py:build")
    with pytest.raises(StageFailed) as info:
        export.export_model(context(), model, ("cpu",))
    message = str(info.value)
    assert "for every size the manifest's dims allow (batch: 1..8)" in message and "inconclusive" in message
    assert "test_jax_export.py" in message and "x.shape[0] - 3" in message
    # the same function with the range it needs exports
    export.export_model(context(dims={"batch": {"min": 4, "max": 8}}), model, ("cpu",))


def test_an_operation_a_platform_cannot_lower_names_the_platform():
    model = as_model(lambda x: jnp.linalg.eig(x @ x.T)[0].real, "m.py:build")
    ctx = context(shape=(4, 4), dims={})
    export.export_model(ctx, model, ("cpu",))
    with pytest.raises(StageFailed) as info:
        export.export_model(ctx, model, ("cpu", "tpu"))
    message = str(info.value)
    assert "cannot lower the function for tpu" in message and "'eig' not found for platform tpu" in message
    assert "drop that platform" in message and "cpu:" not in message


def test_64_bit_inputs_are_refused_not_narrowed():
    with pytest.raises(StageFailed, match=r"x \(int64\): JAX computes in 32 bits"):
        export.refuse_wide_dtypes(context(dtype="int64").model)
