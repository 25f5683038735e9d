"""The first-party Triton backend: any deployable artifact -> a Triton model repository.

Kind ``triton`` (a model repository: ``<model_name>/config.pbtxt`` + ``<model_name>/1/...``),
built by stage ``triton`` from ``onnx``/``onnx.ort`` (platform ``onnxruntime_onnx``),
``tensorrt.plan`` (``tensorrt_plan``) or any other kind buildsys runs (the ``python`` backend,
whose generated ``model.py`` calls ``buildsys.load``). The repository runs where its input
runs: it takes the input's hardware tag (``HardwarePolicy.INPUT``), and a portable input the
target's ``hardware`` (``cuda`` -> ``KIND_GPU`` instances). Its runner (``runner``) runs what a
repository serves, so a repository is validated and ``buildsys.load`` opens it.
``buildsys_triton.server`` starts a
local ``tritonserver`` (from the ``nvidia-pytriton`` wheel) on a repository, for tests and
benchmarks.

Built only on the public API (``buildsys.__all__``); onnx is imported inside the stage.
"""

from __future__ import annotations

from buildsys import HardwarePolicy, KindSpec, RunnerSpec, StageSpec, hookimpl

from .options import RepositoryOptions, resolve
from .runner import load_runner
from .stage import run_repository

__version__ = "0.1.0"

#: Bumped whenever what the stage writes changes, python_model.py included (it is copied into
#: repositories but is no input of the action key): tests/unit/test_triton_config.py pins its hash.
STAGE_VERSION = 2

#: Kinds a repository is built from: the native ones, and those the python backend serves
#: through buildsys.load (every stored kind buildsys has a runner for).
CONSUMES = ("onnx", "onnx.ort", "tensorrt.plan", "torch.exported", "torch.aoti", "stablehlo",
            "xla.executable", "openvino.ir")


@hookimpl
def buildsys_register_kinds():
    return [KindSpec("triton", 4, "a Triton Inference Server model repository (config.pbtxt + version "
                                  "folder) around an artifact", aliases=("triton.repository",))]


@hookimpl
def buildsys_register_stages():
    return [StageSpec("triton", consumes=CONSUMES, produces="triton", run=run_repository,
                      options=RepositoryOptions, resolve=resolve, hardware=HardwarePolicy.INPUT,
                      version=STAGE_VERSION,
                      # it may run its input with the input's runner to learn the outputs, and an
                      # AOTInductor package's .so cannot be unloaded from a pooled worker
                      isolated=True,
                      description="Triton model repository: native platform (onnxruntime_onnx, tensorrt_plan) "
                                  "or the python backend calling buildsys.load")]


@hookimpl
def buildsys_register_runners():
    return [RunnerSpec(name="triton-repository", kind="triton", load=load_runner)]
