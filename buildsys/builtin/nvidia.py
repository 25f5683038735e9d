"""Builtin hardware probe: NVIDIA GPUs and their compute capability through nvidia-ml-py.

Absent library, absent driver or no GPU all mean "no GPUs" and record nothing else.
"""

from __future__ import annotations

from ..hardware import Gpu
from ..hookspecs import hookimpl


@hookimpl
def buildsys_probe_hardware(host):
    try:
        import pynvml
    except ImportError:
        host.facts["nvml"] = "nvidia-ml-py not installed"
        return
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        host.facts["nvml"] = f"no NVIDIA driver ({exc})"
        return
    try:
        host.facts["nvidia_driver"] = _text(pynvml.nvmlSystemGetDriverVersion())
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total // (1024 * 1024)
            host.add_gpu(Gpu(index=index, name=_text(pynvml.nvmlDeviceGetName(handle)),
                             sm=major * 10 + minor, memory_mb=int(memory)))
    finally:
        pynvml.nvmlShutdown()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
