"""The planner is pure: tiny fake stage sets in, exact chains and node sharing out."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from buildsys import manifest as manifest_mod
from buildsys.errors import PlanError
from buildsys.hardware import Gpu, Host
from buildsys.plan import plan
from buildsys.plugins import Catalog
from buildsys.specs import HardwarePolicy, KindSpec, SourceSpec, StageSpec


class Opset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opset: int = 17


def _stage(name, consumes, produces, **kw):
    return StageSpec(name, consumes=(consumes,), produces=produces, run=lambda *a: None, **kw)


def fake_specs(*extra: StageSpec) -> Catalog:
    catalog = Catalog()
    for kind in ("m.module", "m.exported", "onnx", "onnx.ort", "trt.plan", "m.aoti"):
        catalog._add("kinds", kind, KindSpec(kind, 2, aliases=("aoti",) if kind == "m.aoti" else ()), "fake")
    catalog._add("sources", "m", SourceSpec("m", "m.module", fingerprint=lambda m, r: [], load=lambda m, r: None), "fake")
    stages = [
        _stage("export", "m.module", "m.exported"),
        _stage("onnx.export", "m.exported", "onnx", options=Opset),
        _stage("onnx.fp16", "onnx", "onnx", precision="fp16"),
        _stage("onnx.int8", "onnx", "onnx", precision="int8"),
        _stage("ort.optimize", "onnx", "onnx.ort", hardware=HardwarePolicy.HOST),
        _stage("trt.build", "onnx", "trt.plan", hardware=HardwarePolicy.AHEAD_OF_TIME, deterministic=False),
        _stage("aoti", "m.exported", "m.aoti", hardware=HardwarePolicy.TARGET),
        *extra,
    ]
    for stage in stages:
        catalog._add("stages", stage.name, stage, "fake")
    return catalog


def load(tmp_path, targets: str):
    (tmp_path / "m.txt").write_text("x")
    path = tmp_path / "m.yaml"
    path.write_text(f"schema: 1\nname: n\nversion: '1'\nmodel: {{framework: m, entrypoint: m.txt}}\ntargets:\n{targets}")
    return manifest_mod.load(path)


CPU = Host(arch="x86_64", isa="avx2")


def stages_of(graph, target):
    return [n.stage for n in graph.chain(target)]


def test_shortest_chains_share_nodes(tmp_path):
    m = load(tmp_path, "  a: {format: onnx}\n  b: {format: onnx, precision: fp16}\n"
                       "  c: {format: onnx, precision: int8}\n  d: {format: aoti, hardware: cpu}\n")
    graph = plan(m, fake_specs(), CPU)
    assert stages_of(graph, "a") == ["source", "export", "onnx.export"]
    assert stages_of(graph, "b") == ["source", "export", "onnx.export", "onnx.fp16"]
    assert stages_of(graph, "c") == ["source", "export", "onnx.export", "onnx.int8"]
    assert stages_of(graph, "d") == ["source", "export", "aoti"]
    # one export and one ONNX export feed everything
    assert [n.stage for n in graph.nodes.values()] == ["source", "export", "onnx.export", "onnx.fp16",
                                                       "onnx.int8", "aoti"]
    assert graph.nodes[graph.targets["d"]].hardware == "cpu-x86_64-avx2"


def test_different_options_split_nodes(tmp_path):
    m = load(tmp_path, "  a: {format: onnx}\n  b: {format: onnx, options: {onnx.export: {opset: 18}}}\n")
    graph = plan(m, fake_specs(), CPU)
    assert graph.targets["a"] != graph.targets["b"]
    assert graph.chain("a")[1] is graph.chain("b")[1]  # export still shared
    assert graph.nodes[graph.targets["b"]].options == {"opset": 18}


def test_bad_stage_option_refused_with_position(tmp_path):
    m = load(tmp_path, "  a: {format: onnx, options: {onnx.export: {opset: high}}}\n")
    graph = plan(m, fake_specs(), CPU)
    assert "opset" in str(graph.refused["a"]) and "m.yaml:6:" in str(graph.refused["a"])


def test_option_for_unused_stage_refused(tmp_path):
    m = load(tmp_path, "  a: {format: onnx, options: {aoti: {}}}\n")
    assert "does not use" in str(plan(m, fake_specs(), CPU).refused["a"])


def test_tensorrt_never_fed_by_ort(tmp_path):
    m = load(tmp_path, "  t: {format: trt.plan, hardware: sm89}\n")
    graph = plan(m, fake_specs(), CPU)
    assert stages_of(graph, "t") == ["source", "export", "onnx.export", "trt.build"]
    final = graph.nodes[graph.targets["t"]]
    assert final.hardware == "cuda-sm89" and not final.deterministic


def test_no_chain_lists_installed_stages(tmp_path):
    m = load(tmp_path, "  t: {format: onnx.ort, precision: bf16}\n")
    message = str(plan(m, fake_specs(), CPU).refused["t"])
    assert "no stage produces onnx.ort with precision bf16 from m.module" in message
    assert "onnx.fp16 (onnx -> onnx)" in message


def test_target_hardware_missing_and_not_aot(tmp_path):
    m = load(tmp_path, "  h: {format: aoti, hardware: h100}\n  ok: {format: onnx}\n")
    graph = plan(m, fake_specs(), CPU)
    assert "needs cuda-sm90, the host has none" in str(graph.refused["h"])
    assert "not ahead-of-time capable" in str(graph.refused["h"])
    assert "ok" in graph.targets
    gpu_host = Host(arch="x86_64", isa="avx2", gpus=[Gpu(0, "H100", 90)])
    assert plan(m, fake_specs(), gpu_host).nodes[plan(m, fake_specs(), gpu_host).targets["h"]].hardware == "cuda-sm90"


def test_host_stage_tagged_with_host(tmp_path):
    m = load(tmp_path, "  o: {format: onnx.ort}\n")
    graph = plan(m, fake_specs(), CPU)
    assert graph.nodes[graph.targets["o"]].hardware == "cpu-x86_64-avx2"


def test_unknown_format_did_you_mean(tmp_path):
    m = load(tmp_path, "  o: {format: onxx}\n")
    message = str(plan(m, fake_specs(), CPU).refused["o"])
    assert "unknown target format 'onxx'" in message and "did you mean 'onnx'" in message


def test_explicit_pipeline(tmp_path):
    m = load(tmp_path, "  p: {format: onnx, precision: fp16, pipeline: [export, onnx.export, onnx.int8, onnx.fp16]}\n")
    graph = plan(m, fake_specs(), CPU)
    assert stages_of(graph, "p") == ["source", "export", "onnx.export", "onnx.int8", "onnx.fp16"]


def test_explicit_pipeline_kind_mismatch(tmp_path):
    m = load(tmp_path, "  p: {format: onnx, pipeline: [onnx.export]}\n")
    message = str(plan(m, fake_specs(), CPU).refused["p"])
    assert "consumes m.exported" in message and "produces m.module" in message


def test_from_builds_on_another_target(tmp_path):
    m = load(tmp_path, "  base: {format: onnx}\n  fast: {format: onnx, precision: fp16, from: base}\n")
    graph = plan(m, fake_specs(), CPU)
    assert graph.chain("fast")[-2].id == graph.targets["base"]


def test_from_cycle_is_an_error(tmp_path):
    m = load(tmp_path, "  a: {format: onnx, from: b}\n  b: {format: onnx, from: a}\n")
    with pytest.raises(PlanError) as info:
        plan(m, fake_specs(), CPU)
    assert "cycle: a -> b -> a" in str(info.value)


def test_select_and_dependents(tmp_path):
    m = load(tmp_path, "  a: {format: onnx}\n  b: {format: onnx, precision: fp16}\n  d: {format: aoti}\n")
    graph = plan(m, fake_specs(), CPU)
    export = graph.chain("a")[1].id
    assert [graph.nodes[n].stage for n in graph.dependents(export)] == ["onnx.export", "onnx.fp16", "aoti"]
    sub = graph.select(["b"])
    assert list(sub.targets) == ["b"] and len(sub.nodes) == 4


def test_plan_is_stable(tmp_path):
    m = load(tmp_path, "  a: {format: onnx}\n  b: {format: trt.plan, hardware: sm86}\n")
    assert list(plan(m, fake_specs(), CPU).nodes) == list(plan(m, fake_specs(), CPU).nodes)


class Packaging(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seen: str | None = None


def _packaging_specs() -> Catalog:
    """A stage that packages its input (HardwarePolicy.INPUT) and records the kind it was given."""
    packager = StageSpec("pack", consumes=("onnx", "trt.plan", "m.aoti"), produces="m.pack", run=lambda *a: None,
                         options=Packaging, hardware=HardwarePolicy.INPUT,
                         resolve=lambda options, context: options.model_copy(update={"seen": context.input_kind}))
    catalog = fake_specs(packager)
    catalog._add("kinds", "m.pack", KindSpec("m.pack", 4), "fake")
    return catalog


def test_a_packaging_stage_takes_its_inputs_tag_or_a_portable_inputs_target_hardware(tmp_path):
    m = load(tmp_path, "  onnx: {format: onnx}\n  trt: {format: trt.plan, hardware: [sm86, sm89]}\n"
                       "  aoti: {format: aoti, hardware: cpu}\n"
                       "  p-onnx: {format: m.pack, from: onnx}\n  p-gpu: {format: m.pack, from: onnx, hardware: cuda}\n"
                       "  p-trt: {format: m.pack, from: trt}\n  p-aoti: {format: m.pack, from: aoti}\n"
                       "  p-bad: {format: m.pack, from: trt, hardware: cpu}\n")
    graph = plan(m, _packaging_specs(), CPU)
    tags = {t: graph.nodes[graph.targets[t]].hardware for t in ("p-onnx", "p-gpu", "p-trt", "p-aoti")}
    assert tags == {"p-onnx": "any", "p-gpu": "cuda", "p-trt": "cuda-sm86.sm89", "p-aoti": "cpu-x86_64-avx2"}
    assert {t: graph.nodes[graph.targets[t]].options["seen"] for t in tags} == {
        "p-onnx": "onnx", "p-gpu": "onnx", "p-trt": "trt.plan", "p-aoti": "m.aoti"}
    assert graph.nodes[graph.targets["p-trt"]].runs_on is None  # packaging runs anywhere
    assert "asks for cpu, but stage 'pack' packages an input built for cuda-sm86.sm89" in str(graph.refused["p-bad"])


class Auto(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exclude: str = ""
    tolerance: dict | None = None


def test_a_stage_asking_for_the_reference_gets_it_second_and_the_targets_tolerance(tmp_path):
    seen = []

    def resolve(options, context):
        seen.append(context.tolerance)
        return options.model_copy(update={"tolerance": context.tolerance})

    auto = StageSpec("onnx.q8", consumes=("onnx",), produces="onnx", precision="int8", run=lambda *a: None,
                     options=Auto, resolve=resolve, reference=lambda o: o.exclude == "auto")
    reference = _stage("m.reference", "m.module", "reference")
    catalog = fake_specs(auto, reference)
    catalog._add("kinds", "reference", KindSpec("reference", 1), "fake")
    chain = "pipeline: [export, onnx.export, onnx.q8]"
    m = load(tmp_path, f"  q: {{format: onnx, precision: int8, {chain}, options: {{onnx.q8: {{exclude: auto}}}}}}\n"
                       f"  p: {{format: onnx, precision: int8, {chain}}}\n")
    graph = plan(m, catalog, CPU)
    searched, plain = graph.nodes[graph.targets["q"]], graph.nodes[graph.targets["p"]]
    assert [graph.nodes[i].stage for i in searched.inputs] == ["onnx.export", "m.reference"]
    assert len(plain.inputs) == 1 and searched.options["tolerance"] == {"min_cosine": 0.99} == seen[0]


def _described_with(tmp_path, describe, targets: str):
    from buildsys.project import described

    catalog = fake_specs()
    catalog.sources["m"] = SourceSpec("m", "m.module", fingerprint=lambda m, r: [], load=lambda m, r: None,
                                      describe=describe)
    return described(load(tmp_path, targets), catalog)


def test_a_describe_taking_target_kinds_gets_the_kinds_the_targets_ask_for(tmp_path):
    seen = []

    def describe(model, root, target_kinds=frozenset()):
        seen.append(target_kinds)
        return model

    _described_with(tmp_path, describe, "  a: {format: m.exported}\n  b: {format: aoti}\n  c: {format: nothing}\n")
    assert seen == [frozenset({"m.exported", "m.aoti"})]  # aliases named by kind; an unknown format left out


def test_a_describe_of_two_arguments_is_called_as_before(tmp_path):
    seen = []
    _described_with(tmp_path, lambda model, root: seen.append(root) or model, "  a: {format: onnx}\n")
    assert seen == [tmp_path]
