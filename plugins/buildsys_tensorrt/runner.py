"""The TensorRT runner: check that an engine can run here, then run it through its profiles.

A serialized engine loads only in the flavour and version that built it, on a GPU whose
compute capability it was built for, and TensorRT-RTX's runtime refuses data-centre GPUs
(Hopper, sm90). ``incompatibility`` checks all of that from the engine's recorded metadata
before anything is loaded, so the answer is a sentence naming the cause, not a crash.

UNTESTED HERE: the execution path (``_Engine``). None of this project's machines can run it:
the build machines have no GPU, and the lent GPU machine is an H100 (sm90), which TensorRT-RTX
does not run on; enterprise TensorRT cannot be installed. The compatibility check is tested.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from buildsys import Gpu, StageFailed

from . import flavours, profiles


class EngineIncompatible(StageFailed):
    """The engine cannot run on this host; the message says exactly why."""


@dataclass
class HostRuntime:
    """What this host offers an engine: TensorRT modules (flavour -> version) and CUDA GPUs."""

    flavours: dict[str, str] = field(default_factory=dict)
    gpus: list[Gpu] = field(default_factory=list)
    no_gpu_reason: str = ""


def probe() -> HostRuntime:
    """This host's TensorRT runtimes (importable modules) and GPUs (through torch.cuda)."""
    found = {}
    for name, spec in flavours.FLAVOURS.items():
        hit = flavours.installed(name)
        if hit is not None and importlib.util.find_spec(spec.module) is not None:
            found[name] = hit[1]
    gpus, reason = _gpus()
    return HostRuntime(found, gpus, reason)


def _gpus() -> tuple[list[Gpu], str]:
    try:
        import torch
    except ImportError:
        return [], "torch is not installed, and the runner binds device buffers with torch"
    if not torch.cuda.is_available():
        return [], f"torch {torch.__version__} sees no CUDA device"
    gpus = []
    for index in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(index)
        gpus.append(Gpu(index, torch.cuda.get_device_name(index), major * 10 + minor))
    return gpus, ""


def incompatibility(meta: dict, host: HostRuntime) -> str | None:
    """Why the engine described by ``meta`` cannot run on ``host``, or None if it can."""
    flavour, version = meta.get("flavour"), meta.get("flavour_version")
    if flavour not in flavours.FLAVOURS or not version:
        return "its metadata does not record the TensorRT flavour and version that built it; rebuild it"
    spec = flavours.FLAVOURS[flavour]
    built_for = [int(sm) for sm in meta.get("compute_capabilities") or []]
    wanted = ", ".join(f"sm{sm}" for sm in built_for) or "its build GPU"
    if flavour not in host.flavours:
        return (f"it was built with {spec.label} {version}, and no {spec.label} runtime (module "
                f"{spec.module}) is installed here ({spec.install})")
    if host.flavours[flavour] != version:
        return (f"it was built with {spec.label} {version}, this host has {spec.label} {host.flavours[flavour]}: "
                f"engines load only in the version that built them (rebuild, or install {version})")
    if not host.gpus:
        return f"there is no CUDA GPU here ({host.no_gpu_reason}); it runs on {wanted}"
    if usable(meta, host) is not None:
        return None
    return _gpu_reason(host.gpus, spec, built_for, wanted)


def _gpu_reason(gpus: list[Gpu], spec, built_for: list[int], wanted: str) -> str:
    described = ", ".join(f"GPU {g.index} ({g.name}) is sm{g.sm}" for g in gpus)
    if spec.runs_on is not None and all(g.sm not in spec.runs_on for g in gpus):
        return (f"{described}, which the {spec.label} runtime does not run on (it runs on "
                f"{', '.join(f'sm{sm}' for sm in spec.runs_on)}); such GPUs need an engine built with "
                "enterprise TensorRT (flavour: tensorrt)")
    return f"{described}; the engine was built for {wanted} (rebuild it with this GPU in its hardware)"


def usable(meta: dict, host: HostRuntime) -> Gpu | None:
    """The first GPU the engine was built for and the flavour's runtime accepts."""
    spec = flavours.FLAVOURS[meta["flavour"]]
    built_for = {int(sm) for sm in meta.get("compute_capabilities") or []}
    for gpu in host.gpus:
        if (not built_for or gpu.sm in built_for) and (spec.runs_on is None or gpu.sm in spec.runs_on):
            return gpu
    return None


def load_runner(artifact, device: str):
    """``RunnerSpec.load``: a callable running the engine on lists of numpy arrays.

    Raises ``EngineIncompatible`` naming the cause when the engine cannot run here.
    """
    host = probe()
    reason = incompatibility(artifact.meta, host)
    if reason is not None:
        raise EngineIncompatible(f"cannot run the engine {artifact.primary.name} here: {reason}")
    return _Engine(artifact, usable(artifact.meta, host))  # untested here, see the module docstring


class _Engine:
    """Deserializes the engine on ``gpu`` and runs it, binding torch device buffers.

    UNTESTED HERE (no machine of this project can run these engines; see the module docstring).
    """

    def __init__(self, artifact, gpu: Gpu):
        import torch

        from .builder import import_flavour, make_logger

        self.meta = artifact.meta
        self.trt = import_flavour(self.meta["flavour"])
        self.logger = make_logger(self.trt)
        torch.cuda.set_device(gpu.index)
        data = artifact.primary.read_bytes()
        runtime = self.trt.Runtime(self.logger)
        self._check_validity(runtime, data)
        self.engine = runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise EngineIncompatible(f"TensorRT could not load {artifact.primary.name}: "
                                     + "; ".join(self.logger.problems[-3:]))
        self.context = self.engine.create_execution_context()
        self.profiles = [profiles.Profile.from_json(p) for p in self.meta.get("profiles", [])]

    def _check_validity(self, runtime, data: bytes) -> None:
        """TensorRT-RTX can say why a plan will not load here (version, CC, driver) before loading it."""
        if not hasattr(runtime, "get_engine_validity"):
            return  # enterprise TensorRT has no such check
        validity, diagnostics = runtime.get_engine_validity(data)
        if validity == self.trt.EngineValidity.INVALID:
            flags = [name for name, value in self.trt.EngineInvalidityDiagnostics.__members__.items()
                     if int(diagnostics) & int(value)]
            raise EngineIncompatible(f"TensorRT-RTX reports the engine invalid here: {', '.join(flags) or 'no reason given'}")

    def __call__(self, arrays):
        import numpy as np
        import torch

        names = self.meta.get("input_names") or list(self.meta.get("engine_inputs", {}))
        feeds = {n: np.ascontiguousarray(a) for n, a in zip(names, arrays) if n in self.meta.get("engine_inputs", {})}
        index = profiles.pick(self.profiles, {n: a.shape for n, a in feeds.items()}) if self.profiles else 0
        if index is None:
            raise StageFailed(f"input shapes {({n: list(a.shape) for n, a in feeds.items()})} are outside every "
                              "optimization profile of the engine")
        stream = torch.cuda.current_stream()
        self.context.set_optimization_profile_async(index, stream.cuda_stream)
        keep = [self._bind_input(name, array) for name, array in feeds.items()]
        outputs = [self._bind_output(name) for name in self.meta["output_names"]]
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise StageFailed("TensorRT failed to run the engine: " + "; ".join(self.logger.problems[-3:]))
        stream.synchronize()
        del keep
        return [t.float().cpu().numpy() if t.dtype == torch.bfloat16 else t.cpu().numpy() for t in outputs]

    def _bind_input(self, name: str, array):
        import torch

        import numpy as np

        # an engine reads its bindings densely: strides are not passed, so lay the array out first
        tensor = torch.from_numpy(np.ascontiguousarray(array)).to("cuda", _torch_dtype(self.engine.get_tensor_dtype(name)))
        self.context.set_input_shape(name, tuple(tensor.shape))
        self.context.set_tensor_address(name, tensor.data_ptr())
        return tensor

    def _bind_output(self, name: str):
        import torch

        shape = tuple(self.context.get_tensor_shape(name))
        tensor = torch.empty(shape, dtype=_torch_dtype(self.engine.get_tensor_dtype(name)), device="cuda")
        self.context.set_tensor_address(name, tensor.data_ptr())
        return tensor


def _torch_dtype(trt_dtype):
    import torch

    table = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
             "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool, "UINT8": torch.uint8}
    return table[trt_dtype.name]
