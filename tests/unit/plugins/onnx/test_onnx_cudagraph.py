"""The ONNX Runtime CUDA-graph runner's bookkeeping, against a stand-in for onnxruntime's CUDA
provider (no GPU here: the real provider runs on the GPU machine, scripts/device/gpu_bench22.sh).
What is checked: one captured session per input signature, inputs copied into the bound device
buffers on every call, and a graph that cannot be captured served by the plain session with a
note saying why."""

import numpy as np
import pytest

from buildsys_onnx import cudagraph


class FakeValue:
    def __init__(self, array):
        self.array = np.array(array)

    def update_inplace(self, array):
        assert array.shape == self.array.shape and array.dtype == self.array.dtype
        self.array[...] = array


class FakeBinding:
    def __init__(self, session):
        self.session, self.inputs, self.outputs = session, {}, {}

    def bind_ortvalue_input(self, name, value):
        self.inputs[name] = value

    def bind_ortvalue_output(self, name, value):
        self.outputs[name] = value

    def copy_outputs_to_cpu(self):
        return [value.array.copy() for value in self.outputs.values()]


class FakeOutput:
    name = "y"


class FakeOptions:
    log_severity_level, graph_optimization_level = 3, "all"

    def __init__(self):
        self.overrides = {}

    def add_free_dimension_override_by_name(self, name, size):
        self.overrides[name] = size


class FakeGraphSession:
    """Doubles its input; counts runs like a captured graph (the buffers must stay bound)."""

    created = 0
    overrides: list = []

    def __init__(self, path, options, providers):
        assert providers == [("CUDAExecutionProvider", {"use_tf32": "0", "enable_cuda_graph": "1"})]
        FakeGraphSession.overrides.append(options.overrides)
        if "cpu-node" in path:
            raise RuntimeError("This session cannot use the CUDA Graph feature as requested by the user as all "
                               "compute graph nodes have not been partitioned to the CUDA EP.")
        FakeGraphSession.created += 1
        self.binding = None

    def io_binding(self):
        self.binding = FakeBinding(self)
        return self.binding

    def get_outputs(self):
        return [FakeOutput()]

    def run_with_iobinding(self, binding):
        binding.outputs["y"].array[...] = binding.inputs["x"].array * 2


class FakeOrt:
    InferenceSession = FakeGraphSession
    SessionOptions = FakeOptions

    class OrtValue:
        @staticmethod
        def ortvalue_from_numpy(array, device, index):
            assert device == "cuda"
            return FakeValue(array)

        @staticmethod
        def ortvalue_from_shape_and_type(shape, dtype, device, index):
            return FakeValue(np.zeros(shape, dtype))


class FakeInput:
    name, shape = "x", ["batch", 2]


class PlainSession:
    def __init__(self):
        self.calls = 0

    def get_inputs(self):
        return [FakeInput()]

    def run(self, names, feeds):
        self.calls += 1
        return [feeds["x"] * 2]


@pytest.fixture(autouse=True)
def _count():
    FakeGraphSession.created, FakeGraphSession.overrides = 0, []


def _runner(path, plain, notes):
    return cudagraph.GraphedRunner(FakeOrt, path, FakeOptions(), plain, notes, cudagraph.provider_options("fp32"))


def test_each_input_signature_is_captured_once_and_replayed_with_new_values():
    plain, notes = PlainSession(), []
    run = _runner("model.onnx", plain, notes)
    for batch, value in ((1, 1.0), (1, 3.0), (4, 5.0), (1, 7.0), (4, 9.0)):
        out = run({"x": np.full((batch, 2), value, np.float32)})
        np.testing.assert_array_equal(out[0], np.full((batch, 2), 2 * value, np.float32))
    assert FakeGraphSession.created == 2  # batch 1 and batch 4
    # each captured session has its signature's sizes for the symbolic dims (static shapes: no CPU shape ops)
    assert FakeGraphSession.overrides == [{"batch": 1}, {"batch": 4}]
    assert plain.calls == 2  # once per signature, for its output shapes
    assert notes == []


def test_a_graph_that_cannot_be_captured_runs_plainly_and_says_why():
    plain, notes = PlainSession(), []
    run = _runner("cpu-node.onnx", plain, notes)
    for _ in range(3):
        np.testing.assert_array_equal(run({"x": np.ones((2, 2), np.float32)})[0], np.full((2, 2), 2, np.float32))
    assert plain.calls == 4  # the failed capture's shape probe, then every call
    assert len(notes) == 1 and "partitioned to the CUDA EP" in notes[0] and "CUDA graphs off" in notes[0]


@pytest.mark.parametrize("value, on", [(None, True), ("1", True), ("0", False), ("off", False), ("false", False)])
def test_the_environment_switch(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv(cudagraph.ENV, raising=False)
    else:
        monkeypatch.setenv(cudagraph.ENV, value)
    assert cudagraph.enabled() is on


def test_fp32_artifacts_run_without_tf32_on_the_cuda_provider():
    assert cudagraph.provider_options("fp32") == {"use_tf32": "0"}
    assert cudagraph.provider_options("fp16") == {} == cudagraph.provider_options("int8")
