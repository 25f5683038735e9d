"""Platform sets in the hardware tag grammar, and how the jax.export stage picks and tags them.

Pure: no jax import (planning never imports it)."""

from __future__ import annotations

import pytest

from buildsys import hardware
from buildsys.hardware import Gpu, HardwareTag, Host
from buildsys_jax import export


@pytest.mark.parametrize("text,tag", [
    ("cpu.cuda.tpu", "cpu.cuda.tpu"), ("TPU.cpu", "cpu.tpu"), ("cuda.cpu", "cpu.cuda"), ("cpu.cpu", "cpu"),
    ("tpu", "tpu"), ("rocm", "rocm"),
])
def test_platform_sets_parse_to_a_canonical_tag(text, tag):
    assert str(hardware.parse(text)) == tag


def test_a_set_is_concrete_and_covers_its_members_only():
    tag = hardware.parse("cpu.cuda")
    assert tag.device == "set" and tag.platforms == ("cpu", "cuda") and tag.concrete
    assert tag.covers(hardware.parse("h100")) and tag.covers(hardware.parse("cpu-x86_64-avx2"))
    assert tag.covers(hardware.parse("cuda.cpu"))
    assert not tag.covers(hardware.parse("tpu")) and not tag.covers(hardware.parse("cpu.tpu"))
    assert not tag.covers(hardware.parse("any")) and hardware.parse("any").covers(hardware.parse("tpu"))


def test_a_host_runs_a_set_when_it_has_any_member():
    cpu_only = Host(arch="x86_64", isa="avx2")
    gpu = Host(arch="x86_64", isa="avx2", gpus=[Gpu(0, "H100", 90)])
    assert str(cpu_only.match(hardware.parse("cpu.cuda.tpu"))) == "cpu-x86_64-avx2"
    assert cpu_only.match(hardware.parse("cuda.tpu")) is None
    assert str(gpu.match(hardware.parse("cuda.tpu"))) == "cuda-sm90"
    assert gpu.match(HardwareTag("tpu")) is None and gpu.match(HardwareTag("rocm")) is None  # never a GPU's


def test_a_misspelt_platform_set_is_an_unknown_name():
    with pytest.raises(hardware.HardwareError):
        hardware.parse("cpu.gpu")


@pytest.mark.parametrize("given,expected", [
    (["tpu", "cpu", "cuda", "cpu"], ["cpu", "cuda", "tpu"]),
    (["cuda"], ["cuda"]),
])
def test_platforms_are_put_in_canonical_order(given, expected):
    options = export.resolve(export.ExportOptions(platforms=given), None)
    assert options.platforms == expected and export.output_tag(options) == ".".join(expected)


@pytest.mark.parametrize("request_tag,expected", [
    (None, ("cpu", "cuda")), ("any", ("cpu", "cuda")), ("cuda-sm90", ("cuda",)), ("cpu-x86_64-avx512", ("cpu",)),
    ("tpu", ("tpu",)), ("cpu.tpu", ("cpu", "tpu")),
])
def test_auto_platforms_follow_the_targets_hardware(request_tag, expected):
    assert export.platforms_for(request_tag) == expected


@pytest.mark.parametrize("name,hint", [("gpu", "did you mean 'cuda'?"), ("TPU", "did you mean 'tpu'?"),
                                       ("cpus", "did you mean 'cpu'?"), ("metal", "cpu, cuda, rocm, tpu")])
def test_unknown_platform_names_are_refused_with_a_suggestion(name, hint):
    with pytest.raises(ValueError) as info:
        export.ExportOptions(platforms=["cpu", name])
    assert f"unknown platform '{name}'" in str(info.value) and hint in str(info.value)
    with pytest.raises(ValueError):
        export.ExportOptions(platforms=[])
