"""The ONNX plugin's plan-time choices: opset tables, auto/explicit/range, consumers, requirements.

Pure: installed versions are faked through ``buildsys_onnx.versions``; nothing imports onnx.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from buildsys import PlanContext, PlanError
from buildsys_onnx import opsets, versions
from buildsys_onnx.options import ExportOptions, OptimizeOptions
from buildsys_onnx.runtime import optimize_policy

INSTALLED = {"onnx": "1.23.2", "onnxruntime": "1.32.0", "onnxscript": "0.7.2"}


@pytest.fixture
def installed(monkeypatch):
    """Fake installed distributions: edit the returned dict inside a test."""
    fake = dict(INSTALLED)
    monkeypatch.setattr(versions, "version_of", lambda name: fake.get(name))
    return fake


def resolve(installed, kinds=("onnx",), **options):
    return opsets.resolve(ExportOptions(**options), PlanContext(frozenset(kinds)))


@pytest.mark.parametrize("table, version, expected", [
    (opsets.ORT_MAX, "1.32.0", 28), (opsets.ORT_MAX, "1.30.0", 26), (opsets.ORT_MAX, "1.31.1", 26),
    (opsets.ORT_MAX, "1.20.1", 21), (opsets.ORT_MAX, "1.40.0", 28), (opsets.ONNX_MAX, "1.23.2", 28),
    (opsets.ONNX_MAX, "1.20.0", 25), (opsets.ONNXSCRIPT_MAX, "0.7.2", 25), (opsets.ONNXSCRIPT_MAX, "0.5.0", 23),
    (opsets.TENSORRT_MAX["tensorrt-rtx"], "1.7.1.116", 25),
    (opsets.TENSORRT_MAX["tensorrt-rtx"], "1.2.0", 20), (opsets.TENSORRT_MAX["tensorrt"], "10.8.0", 20),
])
def test_table_lookup_takes_the_nearest_lower_row(table, version, expected):
    assert opsets.lookup(table, version) == expected


def test_auto_is_the_highest_everyone_accepts_and_says_who_limits(installed):
    resolved = resolve(installed)
    assert resolved.opset == 25 and resolved.consumers == ["onnxruntime"]
    assert resolved.opset_limited_by == ["exporter"]  # onnxscript's converter stops at 25
    reason = opsets.explain(resolved.opset, resolved.opset_limited_by, resolved.consumers).reason
    assert "limited by exporter (onnx 1.23.2, onnxscript 0.7.2)" in reason
    assert "onnxruntime 1.32.0 (7..28)" in reason


def test_an_older_runtime_limits_auto(installed):
    installed["onnxruntime"] = "1.20.1"
    resolved = resolve(installed)
    assert resolved.opset == 21 and resolved.opset_limited_by == ["onnxruntime"]


def test_without_onnxscript_the_exporter_limit_is_onnx_alone(installed):
    del installed["onnxscript"]  # the stage itself then reports onnxscript missing
    assert opsets.limits(["onnxruntime"])[0].high == 28


def test_a_tensorrt_target_caps_auto_at_the_parser(installed):
    installed["tensorrt-rtx-cu13"] = "1.7.1.116"
    resolved = resolve(installed, kinds=("onnx", "tensorrt.plan"))
    assert resolved.consumers == ["onnxruntime", "tensorrt"]
    assert resolved.opset == 25 and resolved.opset_limited_by == ["exporter", "tensorrt-rtx"]
    installed["tensorrt"] = "10.8.0"  # both flavours installed: the older parser wins
    resolved = resolve(installed, kinds=("onnx", "tensorrt.plan"))
    assert resolved.opset == 20 and resolved.opset_limited_by == ["tensorrt"]


def test_tensorrt_not_installed_assumes_the_newest_known_parsers(installed):
    choice = opsets.choose("auto", ["onnxruntime", "tensorrt"])
    assert choice.opset == 25 and "not installed here" in choice.reason


def test_explicit_opset_outside_a_consumer_is_refused_naming_it(installed):
    assert resolve(installed, opset=20).opset_limited_by == ["request"]
    with pytest.raises(PlanError, match=r"opset 6 is not accepted by onnxruntime 1.32.0 \(7..28\)"):
        resolve(installed, opset=6)
    with pytest.raises(PlanError, match=r"opset 26 is not accepted by exporter \(onnx 1.23.2, onnxscript 0.7.2\) \(1..25\)"):
        resolve(installed, opset=26)


def test_range_takes_its_highest_accepted_opset_or_fails(installed):
    assert resolve(installed, opset={"min": 17, "max": 21}).opset == 21
    assert resolve(installed, opset={"min": 17, "max": 40}).opset == 25
    with pytest.raises(PlanError, match="no opset in 26..40"):
        resolve(installed, opset={"min": 26, "max": 40})


def test_below_native_opset_reason_mentions_conversion(installed):
    choice = opsets.choose(16, ["onnxruntime"])
    assert "converted down with onnx.version_converter" in choice.reason


def test_onnx_missing_is_a_plan_error(installed):
    del installed["onnx"]
    with pytest.raises(PlanError, match="onnx package is not installed"):
        resolve(installed)


def test_options_are_strict():
    with pytest.raises(ValidationError):
        ExportOptions(opset={"min": 21, "max": 17})
    with pytest.raises(ValidationError):
        ExportOptions(opset=True)
    with pytest.raises(ValidationError):
        ExportOptions(external_data="yes")
    with pytest.raises(ValidationError):
        OptimizeOptions(level="max")


def test_ort_level_all_is_host_specific():
    assert optimize_policy(OptimizeOptions(level="all")).value == "host"
    assert optimize_policy(OptimizeOptions()).value == "portable"


@pytest.mark.parametrize("present, expected", [
    ({"onnxruntime": "1.32.0"}, "onnxruntime"), ({"onnxruntime-gpu": "1.31.1"}, "onnxruntime-gpu"),
    ({}, "onnxruntime")])
def test_ort_requirement_names_the_installed_build(monkeypatch, present, expected):
    monkeypatch.setattr(versions, "version_of", lambda name: present.get(name))
    requirement = versions.ort_requirement()
    assert requirement.distribution == expected and "never both" in requirement.install
    assert versions.tool_versions() == present


@pytest.mark.parametrize("spec, oldest, opset, ir", [
    (">=1.14", (1, 14), 18, 8), (">=1.16,<2", (1, 16), 19, 9), ("==1.18.*", (1, 18), 21, 10),
    ("~=1.17.1", (1, 17), 20, 9), (">1.16", (1, 16), 19, 9),  # 1.16.1 > 1.16
    (">=1.25", (1, 25), 21, 10),  # past the table's rows: what its last row loads (conservative)
])
def test_a_deploy_range_is_capped_by_its_oldest_release(spec, oldest, opset, ir):
    assert opsets.oldest_release("onnxruntime", spec) == oldest
    [limit] = [lim for lim in opsets.limits(["onnxruntime"], {"onnxruntime": spec}) if lim.key == "runtimes.onnxruntime"]
    assert limit.high == opset and opsets.max_ir_version({"onnxruntime": spec}) == ir


def test_runtimes_reach_the_export_options_through_the_plan_context():
    resolved = opsets.resolve(ExportOptions(), PlanContext(runtimes={"onnxruntime": ">=1.15"}))
    assert (resolved.opset, resolved.max_ir_version, resolved.runtimes) == (19, 8, {"onnxruntime": ">=1.15"})
    assert resolved.opset_limited_by == ["runtimes.onnxruntime"]
    unconstrained = opsets.resolve(ExportOptions(), PlanContext())
    assert unconstrained.max_ir_version is None and unconstrained.runtimes is None
