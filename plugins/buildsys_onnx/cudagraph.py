"""ONNX Runtime's CUDA provider with CUDA graphs: one captured graph per input signature.

The CUDA provider can capture a session's whole run as one CUDA graph and replay it (provider
option ``enable_cuda_graph``) when every node runs on the GPU and the inputs and outputs stay at
the same device addresses from run to run. So, per input signature (names, shapes, dtypes), the
runner keeps a session with that option, device buffers for its inputs and outputs bound through
IOBinding, and per call copies the numpy arrays in and the outputs out (what any caller pays).
A signature's output shapes come from one run of the plain CUDA session, which also serves every
call of a graph that cannot be captured (a node left on the CPU, say): ``notes`` then says why.
Each captured signature holds its own session (its own copy of the weights): a handful of batch
sizes is the intended use. ``BUILDSYS_ORT_CUDA_GRAPH=0`` turns it off.
"""

from __future__ import annotations

import os

ENV = "BUILDSYS_ORT_CUDA_GRAPH"


def enabled() -> bool:
    return os.environ.get(ENV, "1").lower() not in ("0", "false", "no", "off")


def provider_options(precision: str) -> dict:
    """The CUDA provider computes fp32 convolutions and matmuls in TF32 by default (10-bit
    mantissas): an fp32 artifact is run in fp32, as validated, and reduced precision is a target."""
    return {"use_tf32": "0"} if precision == "fp32" else {}


def preload_cuda_libraries(ort) -> None:
    """Load the CUDA and cuDNN libraries from the ``nvidia-*`` wheels (those torch ships) before
    the CUDA provider looks for them; a no-op where this onnxruntime has no such helper."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception:  # the provider then reports what it could not load, as without the helper
            pass


class GraphedRunner:
    """``run(feeds) -> list of numpy arrays``, replaying one CUDA graph per input signature."""

    def __init__(self, ort, path, session_options, plain, notes: list[str], provider_options: dict | None = None):
        self.ort, self.path, self.session_options, self.plain = ort, str(path), session_options, plain
        self.provider_options = dict(provider_options or {})
        self.graphs: dict[tuple, tuple] = {}
        self.failed: str | None = None
        self.notes = notes  # the runner's: says so when a graph cannot be captured

    def __call__(self, feeds: dict) -> list:
        if self.failed is not None:
            return self.plain.run(None, feeds)
        key = tuple((name, array.shape, array.dtype.str) for name, array in feeds.items())
        entry = self.graphs.get(key)
        if entry is None:
            entry = self._capture(feeds)
            if entry is None:
                return self.plain.run(None, feeds)
            self.graphs[key] = entry
        session, binding, inputs, _ = entry
        import numpy as np

        for value, array in zip(inputs, feeds.values()):
            value.update_inplace(np.ascontiguousarray(array))
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def _static(self, feeds: dict):
        """Session options with this signature's sizes for the graph's symbolic dims: with static
        shapes ORT folds the shape arithmetic (Shape, Gather, Concat before a Reshape) that it
        would otherwise place on the CPU, and a graph with any CPU node cannot be captured."""
        options = self.ort.SessionOptions()
        options.log_severity_level = self.session_options.log_severity_level
        options.graph_optimization_level = self.session_options.graph_optimization_level
        for meta in self.plain.get_inputs():
            if meta.name in feeds:
                for dim, size in zip(meta.shape, feeds[meta.name].shape):
                    if isinstance(dim, str) and dim:
                        options.add_free_dimension_override_by_name(dim, int(size))
        return options

    def _capture(self, feeds: dict):
        import numpy as np

        ort = self.ort
        expected = self.plain.run(None, feeds)  # this signature's output shapes and dtypes
        try:
            session = ort.InferenceSession(self.path, self._static(feeds),
                                           providers=[("CUDAExecutionProvider", {**self.provider_options,
                                                                                 "enable_cuda_graph": "1"})])
            binding = session.io_binding()
            inputs, outputs = [], []
            for name, array in feeds.items():
                inputs.append(ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), "cuda", 0))
                binding.bind_ortvalue_input(name, inputs[-1])
            for meta, array in zip(session.get_outputs(), expected):
                outputs.append(ort.OrtValue.ortvalue_from_shape_and_type(array.shape, array.dtype, "cuda", 0))
                binding.bind_ortvalue_output(meta.name, outputs[-1])
            session.run_with_iobinding(binding)  # the provider warms up, then captures
            session.run_with_iobinding(binding)
        except Exception as exc:  # e.g. "all compute graph nodes have not been partitioned to the CUDA EP"
            self.failed = " ".join(str(exc).split())[:300]
            self.notes.append(f"ONNX Runtime CUDA graphs off for this graph (every call runs the plain CUDA "
                              f"session): {self.failed}")
            return None
        return session, binding, inputs, outputs
