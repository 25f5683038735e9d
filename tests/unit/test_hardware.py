from __future__ import annotations

import pytest

from buildsys import hardware
from buildsys.hardware import Gpu, HardwareTag, Host


@pytest.mark.parametrize("text,tag", [
    ("any", "any"), ("h100", "cuda-sm90"), ("H200", "cuda-sm90"), ("a100", "cuda-sm80"),
    ("rtx4090", "cuda-sm89"), ("b200", "cuda-sm100"), ("rtx5090", "cuda-sm120"), ("sm86", "cuda-sm86"),
    ("sm_90", "cuda-sm90"), ("cuda-sm89.sm86", "cuda-sm86.sm89"), ("cpu", "cpu"),
    ("cpu-x86_64-avx512", "cpu-x86_64-avx512"), ("cpu-aarch64", "cpu-aarch64"), ("cuda", "cuda"),
])
def test_parse_canonical(text, tag):
    assert str(hardware.parse(text)) == tag


def test_list_merges_compute_capabilities():
    assert str(hardware.parse(["sm89", "a10", "l4"])) == "cuda-sm86.sm89"
    assert hardware.parse(["sm86", "sm89"]).filename_part == "cuda_sm86.sm89"


def test_unknown_alias_suggests():
    with pytest.raises(hardware.HardwareError) as info:
        hardware.parse("rtx4900")
    assert "did you mean 'rtx4090'" in str(info.value)


def test_mixed_list_refused():
    with pytest.raises(hardware.HardwareError):
        hardware.parse(["cpu", "sm90"])


def host(isa="avx2", sms=()):
    h = Host(arch="x86_64", isa=isa)
    for i, sm in enumerate(sms):
        h.add_gpu(Gpu(i, f"gpu{i}", sm))
    return h


def test_host_matching():
    cpu_only = host()
    assert str(cpu_only.match(hardware.parse("cpu"))) == "cpu-x86_64-avx2"
    assert cpu_only.match(hardware.parse("cpu-x86_64-avx512")) is None
    assert cpu_only.match(hardware.parse("cpu-aarch64")) is None
    assert cpu_only.match(hardware.parse("h100")) is None
    gpu = host(sms=(90, 90))
    assert str(gpu.match(hardware.parse("cuda"))) == "cuda-sm90"
    assert str(gpu.match(hardware.parse("h200"))) == "cuda-sm90"
    assert gpu.match(hardware.parse(["sm86", "sm90"])) is None
    assert [str(t) for t in gpu.tags()] == ["cpu-x86_64-avx2", "cuda-sm90"]


def test_basic_host_probe_describes_this_machine():
    h = Host.basic()
    assert h.arch and str(h.cpu_tag).startswith("cpu-")
    assert h.describe()["tags"][0] == str(h.cpu_tag)
    assert HardwareTag("any").concrete and not hardware.parse("cuda").concrete


def test_a_cpu_lacking_a_feature_the_artifact_was_compiled_for_is_refused():
    from buildsys.errors import IncompatibleHardware
    from buildsys.hardware import check_cpu_target, cpu_target

    here = cpu_target()
    check_cpu_target(None, "target 'x'")  # a portable artifact
    check_cpu_target(here, "target 'x'")  # built here
    check_cpu_target(dict(here, features=here["features"][:3]), "target 'x'")  # an older CPU's build runs here
    newer = dict(here, microarch="futurelake", features=here["features"] + ["avx1024_imaginary"])
    with pytest.raises(IncompatibleHardware) as caught:
        check_cpu_target(newer, "target 'cpu'")
    assert "target 'cpu' was compiled for a futurelake CPU" in caught.value.message
    assert "lacks avx1024_imaginary" in caught.value.message and "illegal instruction" in caught.value.message
    with pytest.raises(IncompatibleHardware, match="compiled for riscv64"):
        check_cpu_target(dict(here, arch="riscv64"), "target 'cpu'")
