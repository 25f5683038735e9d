"""Which TensorRT flavour builds what, decided at plan time without importing either."""

from __future__ import annotations

import pytest

from buildsys import HardwarePolicy, PlanContext, PlanError
from buildsys_tensorrt import flavours
from buildsys_tensorrt.options import PlanOptions, resolve


def test_rtx_table_matches_the_installed_compute_capability_enum():
    trt = pytest.importorskip("tensorrt_rtx")  # installed with buildsys[tensorrt]: never skips in CI
    enum = {int(name[2:]) for name in trt.ComputeCapability.__members__ if name[2:].isdigit()}
    assert set(flavours.RTX_SMS) == enum


@pytest.mark.parametrize("tag, sms", [("cuda-sm86.sm89", (86, 89)), ("cuda-sm90", (90,)), ("cuda", ()),
                                      ("cpu-x86_64-avx2", None), ("any", None)])
def test_sms_of_a_tag(tag, sms):
    assert flavours.sms_of(tag) == sms


def test_rtx_builds_several_rtx_ccs_ahead_of_time():
    flavours.check_hardware("tensorrt-rtx", "cuda-sm86.sm89")
    flavours.check_hardware("tensorrt-rtx", "cuda-sm75")
    assert flavours.FLAVOURS["tensorrt-rtx"].ahead_of_time


def test_rtx_refuses_hopper_naming_enterprise_tensorrt():
    with pytest.raises(PlanError) as info:
        flavours.check_hardware("tensorrt-rtx", "cuda-sm86.sm90")
    text = str(info.value)
    assert "TensorRT-RTX cannot build for sm90" in text and "sm86" not in text.split(":")[0]
    assert "enterprise TensorRT (flavour: tensorrt" in text


def test_enterprise_tensorrt_builds_one_cc_on_its_gpu():
    flavours.check_hardware("tensorrt", "cuda-sm90")
    with pytest.raises(PlanError, match="one GPU it runs on.*2 compute capabilities"):
        flavours.check_hardware("tensorrt", "cuda-sm86.sm89")


@pytest.mark.parametrize("tag", [None, "cpu-x86_64", "any"])
def test_an_engine_needs_gpu_hardware(tag):
    with pytest.raises(PlanError, match="runs on an NVIDIA GPU") as info:
        flavours.check_hardware("tensorrt-rtx", tag)
    assert "hardware: [sm86, sm89]" in info.value.hint


def test_policy_follows_the_flavour():
    assert flavours.policy(PlanOptions(flavour="tensorrt-rtx")) is HardwarePolicy.AHEAD_OF_TIME
    assert flavours.policy(PlanOptions(flavour="tensorrt")) is HardwarePolicy.TARGET


def test_tool_tag_is_flavour_and_major_minor():
    assert flavours.tool_tag("tensorrt-rtx", "1.7.1.116") == "trtrtx1.7"
    assert flavours.tool_tag("tensorrt", "10.13.3.9") == "trt10.13"


def test_resolve_makes_auto_concrete_here(monkeypatch):
    monkeypatch.setattr(flavours, "installed", lambda name: ("tensorrt-rtx-cu13", "1.7.1.116")
                        if name == "tensorrt-rtx" else None)
    resolved = resolve(PlanOptions(), PlanContext(hardware="cuda-sm86.sm89"))
    assert resolved.flavour == "tensorrt-rtx"


def test_resolve_refuses_a_flavour_that_is_not_installed(monkeypatch):
    monkeypatch.setattr(flavours, "installed", lambda name: None)
    with pytest.raises(PlanError, match="TensorRT .* is not installed") as info:
        resolve(PlanOptions(flavour="tensorrt"), PlanContext(hardware="cuda-sm90"))
    assert "placeholders" in info.value.hint


def test_enterprise_is_preferred_when_installed(monkeypatch):
    monkeypatch.setattr(flavours, "installed", lambda name: ("tensorrt-cu13", "10.13.3.9"))
    assert flavours.default_flavour() == "tensorrt"
    assert resolve(PlanOptions(), PlanContext(hardware="cuda-sm90")).flavour == "tensorrt"


def test_profiles_with_min_above_max_are_an_options_error():
    with pytest.raises(ValueError, match="axis 0 needs 0 <= min <= opt <= max, got min=8 opt=2 max=4"):
        PlanOptions.model_validate({"profiles": [{"x": {"min": [8, 8], "opt": [2, 8], "max": [4, 8]}}]})
    with pytest.raises(ValueError, match="one size per axis"):
        PlanOptions.model_validate({"profiles": [{"x": {"min": [1], "opt": [2, 8], "max": [4, 8]}}]})
    with pytest.raises(ValueError, match="positive MiB"):
        PlanOptions.model_validate({"memory_pools": {"workspace": 0}})
