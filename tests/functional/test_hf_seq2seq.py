"""task: text2text-generation on the tiny random T5 of manifests/models/tiny_t5_gen.py: the encoder
and decoder step in one artifact built to torch.exported / ONNX / ORT, validated by greedy
generation against eager generate(); the public loop over buildsys.load(); and the bad inputs."""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

TESTS = Path(__file__).resolve().parents[1]
MODELS = TESTS.parent / "manifests" / "models"
save_t5 = runpy.run_path(str(MODELS / "tiny_t5_gen.py"))["main"]
sys.path.insert(0, str(TESTS / "models"))
from tiny_decoders import save_decoder  # noqa: E402


@pytest.fixture
def project(buildsys_project, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    buildsys_project.env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"),
                                PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    return buildsys_project


def manifest(project, targets: str, folder: str = "t5", generation: str = "{max_context: 64, new_tokens: 12}",
             task: str = "text2text-generation"):
    return project.write("s2s.yaml", f"schema: 1\nname: s2s\nversion: '1'\nmodel:\n  framework: huggingface\n"
                                     f"  id: {folder}\n  task: {task}\n  generation: {generation}\n"
                                     f"targets:\n  {targets}\n")


def record(project, target: str) -> dict:
    return json.loads((project.target_dir("s2s", "1", target) / "artifact.json").read_text())


def test_t5_builds_encoder_and_decoder_step_and_generates_token_for_token(project):
    save_t5(project.root / "t5")
    targets = "exported: {format: torch.exported}\n  onnx: {format: onnx}\n  ort: {format: onnx.ort}"
    project.cli("build", manifest(project, targets).name, timeout=600).assert_ok()
    for target, suffix in (("exported", "pt2"), ("onnx", "onnx"), ("ort", "onnx")):
        rec = record(project, target)
        names = {f["name"]: f["role"] for f in rec["files"]}
        assert f"encoder.{suffix}" in names and list(names.values()).count("primary") == 1
        inputs = {i["name"]: i["shape"] for i in rec["signature"]["inputs"]}
        assert inputs["encoder_hidden_states"] == ["batch", "encoder_seq", 32]
        assert inputs["past_key_values.1.encoder.value"] == ["batch", 4, "encoder_past", 8]
        assert inputs["past_key_values.0.decoder.key"] == ["batch", 4, "past", 8]
        assert "present.1.encoder.key" in rec["meta"]["output_names"]
        encoder = rec["meta"]["programs"]["encoder"]
        assert encoder["input_names"] == ["input_ids", "attention_mask"]
        assert encoder["output_names"] == ["last_hidden_state"]
        [check] = [c for c in rec["validation"]["checks"] if c["check"] == "generation"]
        assert check["passed"] and check["details"]["agreement"] == 1.0 and check["details"]["tokens"] == 48, check
    # the public loop, through buildsys.load (checksums of both programs checked), other prompts
    import buildsys
    from buildsys_hf.seq2seq_generate import Seq2SeqLayout, generate_seq2seq

    directory = project.target_dir("s2s", "1", "onnx")
    encoder, decoder = buildsys.load(directory, program="encoder"), buildsys.load(directory)
    assert [i.name for i in encoder.inputs] == ["input_ids", "attention_mask"]
    prompts = [[30, 31, 32, 3], [7, 3], [9, 10, 11, 12, 13, 14, 3]]
    got = generate_seq2seq(encoder, decoder, Seq2SeqLayout.from_artifact(directory), prompts, max_new_tokens=10)
    from buildsys_hf.generate import pad

    ids, mask = pad(prompts, 0, left=False)
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(project.root / "t5"))
    with torch.no_grad():
        wanted = model.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                max_new_tokens=10, do_sample=False, eos_token_id=3, pad_token_id=0)
    assert got.tolist() == wanted[:, 1:].tolist()


# -- bad input --------------------------------------------------------------------------------


def assert_refused(project, path: Path, *fragments: str) -> None:
    result = project.cli("build", path.name)
    result.assert_error(2, *fragments)
    assert not (project.root / "artifacts" / "s2s").exists()


def test_t5_builds_one_tensorrt_rtx_engine_per_program_each_with_its_own_profiles(project):
    """TensorRT-RTX builds engines on this CPU but cannot run them (no GPU here: validation is
    'not run'): the decoder step's engine and the encoder's, each profiled over its own dims, and
    what a runner is handed for the encoder."""
    from buildsys import BuildsysError
    from buildsys.api import program_record
    from buildsys.artifacts import input_artifact

    save_t5(project.root / "t5")
    rtx = "rtx: {format: tensorrt, hardware: [sm86, sm89], options: {onnx.export: {opset: 18}}}"
    project.cli("build", manifest(project, rtx).name, timeout=600).assert_ok()
    rec = record(project, "rtx")
    files = {f["name"]: f for f in rec["files"]}
    assert files["encoder.plan"]["role"] == "data" and files["encoder.plan"]["size"] > 1000
    assert [f["role"] for f in files.values()].count("primary") == 1
    assert rec["validation"]["status"] == "not run"
    encoder = rec["meta"]["programs"]["encoder"]
    [profile] = encoder["profiles"]
    assert profile["dims"] == {"batch": [1, 2, 8], "encoder_seq": [1, 16, 64]}
    assert set(encoder["engine_inputs"]) == {"input_ids", "attention_mask"}
    assert encoder["output_names"] == ["last_hidden_state"]
    [step] = rec["meta"]["profiles"]
    assert step["dims"]["past"] == [0, 16, 56] and step["dims"]["encoder_seq"] == [1, 16, 64]
    assert "encoder_hidden_states" in rec["meta"]["engine_inputs"]

    as_encoder = program_record(rec, "encoder")
    assert [f["name"] for f in as_encoder["files"] if f["role"] == "primary"] == ["encoder.plan"]
    assert as_encoder["meta"]["profiles"] == encoder["profiles"]
    assert as_encoder["signature"]["dims"] == encoder["dims"]
    loaded = input_artifact(project.target_dir("s2s", "1", "rtx"), rec).program("encoder")
    assert loaded.primary.name == "encoder.plan" and loaded.meta["engine_inputs"] == encoder["engine_inputs"]
    with pytest.raises(BuildsysError, match="holds no program 'decoder'") as caught:
        program_record(rec, "decoder")
    assert caught.value.hint == "its programs: encoder"


def test_t5_lowers_both_programs_to_fp16_and_generates_through_them(project):
    """onnx.fp16 lowers the encoder beside the decoder step (the same exclude patterns in both),
    validation generates through the two fp16 graphs, and a TensorRT target builds from them."""
    import onnx

    save_t5(project.root / "t5")
    targets = ("onnx16: {format: onnx, precision: fp16, options: {onnx.fp16: {exclude: ['op:Pow']}}}\n"
               "  rtx16: {format: tensorrt, precision: fp16, hardware: [sm86, sm89], "
               "options: {onnx.export: {opset: 18}, onnx.fp16: {exclude: ['op:Pow']}}}")
    project.cli("build", manifest(project, targets).name, timeout=600).assert_ok()
    rec = record(project, "onnx16")
    encoder = rec["meta"]["programs"]["encoder"]
    assert encoder["primary"] == "encoder.onnx" and encoder["lowering"]["nodes_low"] > 0
    graph = onnx.load(str(project.target_dir("s2s", "1", "onnx16") / "encoder.onnx")).graph
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer)
    pows = {n.name for n in graph.node if n.op_type == "Pow"}
    assert pows and set(encoder["lowering"]["excluded"]["nodes"]) == pows
    assert encoder["lowering"]["nodes_fp32_by_op"]["Pow"] == len(pows)
    assert rec["meta"]["lowering"]["nodes_fp32_by_op"]["Pow"] > 0  # and in the decoder step
    [check] = [c for c in rec["validation"]["checks"] if "agreement" in c.get("details", {})]
    assert check["passed"] and check["details"]["tokens"] == 48
    assert check["details"]["agreement"] >= check["details"]["min_token_agreement"]
    rtx = record(project, "rtx16")
    assert rtx["meta"]["programs"]["encoder"]["primary"] == "encoder.plan"
    assert rtx["meta"]["precision"]["graph"]["carries"] == ["fp32", "fp16"]


def test_text2text_on_a_decoder_only_model_is_refused(project):
    save_decoder(project.root / "lm", "llama", positions=64)
    assert_refused(project, manifest(project, "onnx: {format: onnx}", folder="lm"),
                   "task 'text2text-generation' is not available for model type 'llama'")


def test_text_generation_on_t5_points_at_text2text(project):
    save_t5(project.root / "t5")
    assert_refused(project, manifest(project, "onnx: {format: onnx}", task="text-generation"),
                   "'T5ForConditionalGeneration' is an encoder-decoder", "text2text-generation")


def test_max_context_above_learned_positions_is_refused(project):
    folder = project.root / "bart"
    runpy.run_path(str(MODELS / "tiny_llama_gen.py"))["save_tokenizer"](folder, encoder=True)
    transformers.BartConfig(vocab_size=60, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                            max_position_embeddings=32, architectures=["BartForConditionalGeneration"]
                            ).save_pretrained(folder)
    assert_refused(project, manifest(project, "onnx: {format: onnx}", folder="bart",
                                     generation="{max_context: 100}"),
                   "generation.max_context 100 is above the model's 32 positions")


def test_stages_that_build_one_graph_are_refused_at_plan_time(project):
    save_t5(project.root / "t5")
    result = project.cli("plan", manifest(project, "int8: {format: onnx, precision: int8}\n"
                                                   "  onnx: {format: onnx}").name)
    assert "stage 'onnx.int8' builds one graph" in result.stdout + result.stderr
    assert "encoder-decoder targets are torch.exported (fp32), and onnx, onnx.ort and tensorrt" in result.stdout + result.stderr


def test_prompts_longer_than_the_context_fail_naming_the_numbers(project):
    save_t5(project.root / "t5")
    result = project.cli("build", manifest(project, "exported: {format: torch.exported}",
                                           generation="{max_context: 10, new_tokens: 2}").name, timeout=600)
    result.assert_error(1, "the validation prompts take up to 12 tokens", "holds prompts up to 10 tokens")


def test_a_corrupted_decoder_fails_the_generation_check_naming_the_step_and_the_token(project):
    """The validation check itself (what the validate stage runs) on the built ONNX artifact whose
    decoder graph had one weight negated: it fails, saying where the tokens diverged."""
    import types

    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from buildsys.artifacts import input_artifact
    from buildsys.manifest import ModelSpec
    from buildsys_hf.agreement import check
    from buildsys_hf.describe import describe
    from buildsys_hf.load import load_model
    from buildsys_onnx.runtime import load_runner

    save_t5(project.root / "t5")
    project.cli("build", manifest(project, "onnx: {format: onnx}").name, timeout=600).assert_ok()
    directory = project.target_dir("s2s", "1", "onnx")
    artifact = input_artifact(directory, json.loads((directory / "artifact.json").read_text()))
    graph = onnx.load(str(artifact.primary))
    weight = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))  # the tied embedding / lm head
    weight.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(weight), weight.name))
    session = ort.InferenceSession(graph.SerializeToString())
    names = [i.name for i in session.get_inputs()]
    garbled = lambda arrays: session.run(None, {n: a for n, a in zip(artifact.meta["input_names"], arrays) if n in names})
    model = describe(ModelSpec(framework="huggingface", id="t5", task="text2text-generation",
                               generation={"max_context": 64, "new_tokens": 12}), project.root)
    ctx = types.SimpleNamespace(model=model, root=project.root, load_model=lambda: load_model(model, project.root),
                                runner=lambda kind: types.SimpleNamespace(load=load_runner))
    result = check(garbled, {"outputs": artifact.meta["output_names"]}, ctx, "fp32", artifact)
    assert not result["passed"] and result["details"]["agreement"] < 1.0
    first = result["details"]["first_divergence"]
    assert result["details"]["artifact_tokens"][first["prompt"]][first["step"]] == first["token"] != first["expected"]
    assert f"diverged at step {first['step']}: the artifact chose token {first['token']}" in result["warnings"][0]


# -- speech: Whisper ----------------------------------------------------------------------------


def test_whisper_transcribes_like_eager_generate_through_exported_and_onnx(project):
    """automatic-speech-recognition on the tiny random Whisper of manifests/models/tiny_whisper_gen.py
    takes the seq2seq path: the encoder reads input_features; validation and the public loop (on
    other audio) give eager generate()'s tokens; the feature extractor's settings travel too."""
    save_whisper = runpy.run_path(str(MODELS / "tiny_whisper_gen.py"))["main"]
    folder = save_whisper(project.root / "whisper")
    targets = "exported: {format: torch.exported}\n  onnx: {format: onnx}"
    path = manifest(project, targets, folder="whisper", task="automatic-speech-recognition",
                    generation="{max_context: 32, new_tokens: 12}")
    project.cli("build", path.name, timeout=900).assert_ok()
    for target in ("exported", "onnx"):
        rec = record(project, target)
        assert rec["meta"]["programs"]["encoder"]["input_names"] == ["input_features"]
        assert "tokenizer/preprocessor_config.json" in rec["meta"]["companion_files"]
        [check] = [c for c in rec["validation"]["checks"] if c["check"] == "generation"]
        assert check["passed"] and check["details"]["agreement"] == 1.0 and check["details"]["tokens"] == 48, check
    import buildsys
    from buildsys_hf.samples import speech_features
    from buildsys_hf.seq2seq_generate import Seq2SeqLayout, generate_seq2seq

    directory = project.target_dir("s2s", "1", "onnx")
    encoder, decoder = buildsys.load(directory, program="encoder"), buildsys.load(directory)
    features = speech_features(folder, 3, seed=7)
    got = generate_seq2seq(encoder, decoder, Seq2SeqLayout.from_artifact(directory), max_new_tokens=10,
                           input_features=features)
    model = transformers.AutoModelForSpeechSeq2Seq.from_pretrained(str(folder))
    with torch.no_grad():
        wanted = model.generate(input_features=torch.from_numpy(features), max_new_tokens=10, do_sample=False)
    assert got.tolist() == wanted.tolist()


def test_feature_extraction_on_t5_builds_its_encoder_alone(project):
    save_t5(project.root / "t5")
    path = project.write("enc.yaml", "schema: 1\nname: enc\nversion: '1'\nmodel:\n  framework: huggingface\n"
                                     "  id: t5\n  task: feature-extraction\ntargets:\n  ort: {format: onnx.ort}\n")
    project.cli("build", path.name, timeout=600).assert_ok()
    rec = json.loads((project.target_dir("enc", "1", "ort") / "artifact.json").read_text())
    assert [i["name"] for i in rec["signature"]["inputs"]] == ["input_ids", "attention_mask"]
    assert rec["validation"]["status"] == "passed", rec["validation"]
