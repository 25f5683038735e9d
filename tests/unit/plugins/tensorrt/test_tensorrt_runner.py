"""The runner says exactly why an engine cannot run on a host, before loading anything."""

from __future__ import annotations

import pytest

from buildsys_tensorrt import flavours
from buildsys import Gpu
from buildsys_tensorrt.runner import HostRuntime, incompatibility, probe, usable

RTX_ENGINE = {"flavour": "tensorrt-rtx", "flavour_version": "1.7.1.116", "compute_capabilities": [86, 89]}
L4 = Gpu(0, "NVIDIA L4", 89)
H100 = Gpu(0, "NVIDIA H100 80GB HBM3", 90)
A100 = Gpu(1, "NVIDIA A100-SXM4-80GB", 80)


def host(gpus=(), **flavour_versions) -> HostRuntime:
    return HostRuntime({k.replace("_", "-"): v for k, v in flavour_versions.items()}, list(gpus),
                       "" if gpus else "torch 2.13.0+cpu sees no CUDA device")


def test_runs_on_a_gpu_it_was_built_for():
    here = host([L4], tensorrt_rtx="1.7.1.116")
    assert incompatibility(RTX_ENGINE, here) is None
    assert usable(RTX_ENGINE, here) == L4


def test_flavour_runtime_missing():
    reason = incompatibility(RTX_ENGINE, host([L4], tensorrt="10.13.3.9"))
    assert "built with TensorRT-RTX 1.7.1.116" in reason and "module tensorrt_rtx) is installed here" in reason


def test_version_mismatch():
    reason = incompatibility(RTX_ENGINE, host([L4], tensorrt_rtx="1.6.0.5"))
    assert "built with TensorRT-RTX 1.7.1.116, this host has TensorRT-RTX 1.6.0.5" in reason


def test_no_gpu():
    reason = incompatibility(RTX_ENGINE, host([], tensorrt_rtx="1.7.1.116"))
    assert reason == ("there is no CUDA GPU here (torch 2.13.0+cpu sees no CUDA device); "
                      "it runs on sm86, sm89")


def test_hopper_is_refused_by_the_rtx_runtime():
    reason = incompatibility(dict(RTX_ENGINE, compute_capabilities=[86, 89]), host([H100], tensorrt_rtx="1.7.1.116"))
    assert reason.startswith("GPU 0 (NVIDIA H100 80GB HBM3) is sm90, which the TensorRT-RTX runtime does not run on")
    assert "enterprise TensorRT" in reason


def test_gpu_outside_the_engines_compute_capabilities():
    reason = incompatibility(RTX_ENGINE, host([A100], tensorrt_rtx="1.7.1.116"))
    assert reason == ("GPU 1 (NVIDIA A100-SXM4-80GB) is sm80; the engine was built for sm86, sm89 "
                      "(rebuild it with this GPU in its hardware)")


def test_second_gpu_that_fits_is_used():
    assert usable(RTX_ENGINE, host([H100, Gpu(1, "L4", 89)], tensorrt_rtx="1.7.1.116")).index == 1


def test_enterprise_engine_on_hopper():
    engine = {"flavour": "tensorrt", "flavour_version": "10.13.3.9", "compute_capabilities": [90]}
    assert incompatibility(engine, host([H100], tensorrt="10.13.3.9")) is None


def test_metadata_without_flavour():
    assert "does not record the TensorRT flavour" in incompatibility({}, host([L4]))


def test_probe_of_this_host_matches_what_is_installed():
    here = probe()
    if flavours.installed("tensorrt-rtx"):
        assert here.flavours["tensorrt-rtx"] == flavours.installed("tensorrt-rtx")[1]
    if not here.gpus:
        assert here.no_gpu_reason, "a host without GPUs must say why"
    torch = pytest.importorskip("torch")
    assert bool(here.gpus) == torch.cuda.is_available()
