"""Which ONNX tools are installed, read from package metadata (never by importing them).

ONNX Runtime ships one module (``onnxruntime``) under several distribution names:
``onnxruntime`` (CPU), ``onnxruntime-gpu`` (CUDA), ``onnxruntime-directml``,
``onnxruntime-openvino``. Only one may be installed (they overwrite each other's files), so the
requirement names whichever is present, and asks for the CPU build when none is.
TensorRT likewise comes as ``tensorrt`` (and its CUDA-suffixed packages) or TensorRT-RTX.
"""

from __future__ import annotations

from buildsys import Requirement

ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino")
TENSORRT_DISTRIBUTIONS = {
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12"),
    "tensorrt-rtx": ("tensorrt-rtx", "tensorrt-rtx-cu13", "tensorrt-rtx-cu12"),
}
ORT_INSTALL = "pip install onnxruntime  (or onnxruntime-gpu for CUDA; never both)"


def version_of(distribution: str) -> str | None:
    """The installed version of ``distribution`` (None if absent), read once per process by the core."""
    return Requirement(distribution).installed_version()


def first_installed(distributions) -> tuple[str, str] | None:
    """(distribution, version) of the first of ``distributions`` that is installed."""
    for name in distributions:
        version = version_of(name)
        if version is not None:
            return name, version
    return None


def onnxruntime() -> tuple[str, str] | None:
    """(distribution, version) of the installed ONNX Runtime build, if any."""
    return first_installed(ORT_DISTRIBUTIONS)


def tensorrt() -> dict[str, str]:
    """{flavour: version} of every installed TensorRT flavour (``tensorrt``, ``tensorrt-rtx``)."""
    found = {}
    for flavour, names in TENSORRT_DISTRIBUTIONS.items():
        hit = first_installed(names)
        if hit is not None:
            found[flavour] = hit[1]
    return found


def ort_requirement() -> Requirement:
    """Require the ONNX Runtime build that is installed (any of them serves), else the CPU one."""
    installed = onnxruntime()
    name = installed[0] if installed else "onnxruntime"
    return Requirement(name, ">=1.17", ORT_INSTALL)


TORCH_INSTALL = "pip install 'torch==2.13.0'  (this pin first: an unpinned torch pulls a multi-GB CUDA build)"
EXPORT_REQUIRES = (
    Requirement("torch", ">=2.11", TORCH_INSTALL),
    Requirement("onnx", ">=1.17", "pip install 'buildsys[onnx]'"),
    Requirement("onnxscript", ">=0.2", "pip install 'buildsys[onnx]'"),
)


def tool_versions() -> dict[str, str]:
    """Versions of the ONNX tool chain for the lockfile; absent tools are left out."""
    versions = {name: version_of(name) for name in ("onnx", "onnxscript")}
    ort = onnxruntime()
    if ort is not None:
        versions[ort[0]] = ort[1]
    return {name: version for name, version in versions.items() if version is not None}
