"""The jax source and the input helpers, in-process: what an entrypoint may return, weights,
compile sizes, and the runners' input checks."""

from __future__ import annotations

import pytest

from buildsys import BackendUnavailable, BuildsysError, StageFailed
from buildsys.manifest import ModelSpec
from buildsys_jax import inputs, source
from buildsys_jax.runtime import check_arrays

np = pytest.importorskip("numpy")
pytest.importorskip("jax")  # the jax extra is installed in CI: this never skips there


def apply(params, x):
    return x @ params["w"]


PARAMS = {"w": np.ones((3, 2), np.float32), "layers": [{"b": np.zeros(2, np.float32)}]}


def test_a_pair_and_a_bare_function_are_models():
    model = source.as_model((apply, PARAMS), "m.py:build")
    assert model.params is PARAMS and model(np.ones((1, 3), np.float32)).tolist() == [[3.0, 3.0]]
    bare = source.as_model(lambda x: x + 1, "m.py:bare")
    assert bare.params == {} and bare.bound()(1) == 2


@pytest.mark.parametrize("produced,fragment", [
    (PARAMS, "returned a dict (parameters alone?)"),
    ((PARAMS, apply), "returned (params, function): the function comes first"),
    ((apply, PARAMS, 3), "returned a tuple of 3 (function, dict, int)"),
    ("model", "returned a str"),
])
def test_wrong_structures_say_what_was_expected(produced, fragment):
    with pytest.raises(BuildsysError) as info:
        source.as_model(produced, "m.py:build")
    assert fragment in str(info.value) and "m.py:build" in str(info.value)


def test_params_must_be_arrays():
    with pytest.raises(BuildsysError) as info:
        source.check_params({"w": np.ones(2), "name": "mlp", "layers": [object()]}, "m.py:build")
    assert "'name' is a str" in str(info.value) and "'layers/0' is a object" in str(info.value)
    source.check_params({"w": np.ones(2), "scale": 1.5}, "m.py:build")


def test_weights_replace_leaves_by_path(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **{"w": np.full((3, 2), 2, np.float32), "layers/0/b": np.ones(2, np.float32)})
    loaded = source.apply_weights(PARAMS, source.read_weights(path))
    assert loaded["w"].tolist() == [[2, 2]] * 3 and loaded["layers"][0]["b"].tolist() == [1, 1]


def test_mismatched_weights_list_every_problem(tmp_path):
    arrays = {"w": np.ones((3, 2), np.float64), "layers/0/c": np.ones(2, np.float32)}
    with pytest.raises(BuildsysError) as info:
        source.apply_weights(PARAMS, arrays)
    message = str(info.value)
    assert "missing 1: layers/0/b" in message and "unexpected 1: layers/0/c" in message
    assert "w: file float64[3, 2] != params float32[3, 2]" in message


def test_weight_formats(tmp_path):
    from safetensors.numpy import save_file

    save_file({"w": np.ones((3, 2), np.float32)}, str(tmp_path / "w.safetensors"))
    assert source.read_weights(tmp_path / "w.safetensors")["w"].shape == (3, 2)
    (tmp_path / "w.pkl").write_bytes(b"x")
    with pytest.raises(BuildsysError, match="unsupported format '.pkl'"):
        source.read_weights(tmp_path / "w.pkl")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    import zipfile
    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as archive:  # an .npz holding a pickle: never loaded
        archive.write(tmp_path / "obj.npy", "obj.npy")
    with pytest.raises(BuildsysError, match="cannot read weights pickled.npz"):
        source.read_weights(tmp_path / "pickled.npz")


def test_msgpack_weights_need_flax(tmp_path):
    pytest.importorskip("msgpack")
    try:
        import flax  # noqa: F401
    except ImportError:
        (tmp_path / "w.msgpack").write_bytes(b"\x80")
        with pytest.raises(BackendUnavailable, match="pip install flax"):
            source.read_weights(tmp_path / "w.msgpack")
    else:
        from flax.serialization import msgpack_serialize

        (tmp_path / "w.msgpack").write_bytes(msgpack_serialize({"layers": {"0": {"b": np.ones(2, np.float32)}}}))
        assert source.read_weights(tmp_path / "w.msgpack")["layers/0/b"].tolist() == [1, 1]


MODEL = ModelSpec.model_validate({
    "framework": "jax", "entrypoint": "m.py:build",
    "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", "seq", 4]},
               {"name": "ids", "dtype": "int32", "shape": ["batch", "seq"], "range": [0, 10]}],
    "dims": {"batch": {"min": 1, "opt": 2, "max": 8}, "seq": {"buckets": [16, 32]}}})


def test_compile_sizes_default_to_min_opt_max_and_are_checked():
    assert inputs.size_grid(MODEL, None) == [{"batch": b, "seq": s} for b in (1, 2, 8) for s in (16, 32)]
    assert inputs.size_grid(MODEL, {"batch": [4]}) == [{"batch": 4, "seq": 16}, {"batch": 4, "seq": 32}]
    with pytest.raises(StageFailed, match=r"sizes \[9\] for dim 'batch' are outside model.dims \(1..8\)"):
        inputs.size_grid(MODEL, {"batch": [1, 9]})
    with pytest.raises(StageFailed, match="dim\\(s\\) bach, which model.dims does not declare"):
        inputs.size_grid(MODEL, {"bach": [1]})


def test_symbolic_specs_share_dims_and_carry_constraints():
    x, ids = inputs.symbolic_specs(MODEL)
    assert x.shape[0] is ids.shape[0] and str(x.shape[1]) == "seq" and x.shape[2] == 4
    assert str(ids.dtype) == "int32"
    samples = inputs.default_samples(MODEL)
    assert [[a.shape for a in s] for s in samples] == [[(1, 16, 4), (1, 16)], [(2, 32, 4), (2, 32)], [(8, 32, 4), (8, 32)]]
    assert all(0 <= s[1].min() and s[1].max() < 10 for s in samples)


def test_runner_input_checks_list_every_problem():
    meta = {"input_names": ["x", "ids"], "input_shapes": [["batch", "seq", 4], ["batch", "seq"]],
            "dims": {"batch": [1, 8], "seq": [16, 32]}}
    check_arrays([np.zeros((2, 16, 4)), np.zeros((2, 16))], meta)
    with pytest.raises(StageFailed) as info:
        check_arrays([np.zeros((9, 16, 3)), np.zeros((2, 16))], meta)
    assert "'x' axis 0 (batch) is 9, outside 1..8" in str(info.value) and "'x' axis 2 is 3, expected 4" in str(info.value)
    with pytest.raises(StageFailed, match="dim 'batch' is 2 in one input and 3 in 'ids'"):
        check_arrays([np.zeros((2, 16, 4)), np.zeros((3, 16))], meta)
    with pytest.raises(StageFailed, match="1 input arrays for 2 inputs"):
        check_arrays([np.zeros((2, 16, 4))], meta)
