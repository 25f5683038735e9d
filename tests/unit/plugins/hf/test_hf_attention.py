"""model.attention: auto resolves from the manifest's target kinds at describe time (plan time,
no framework), forced values stay, generation steps keep their own attention."""

from __future__ import annotations

import json

import pytest
from buildsys_hf.attention import resolve, unsupported
from buildsys_hf.describe import describe
from buildsys_hf.tasks import task_for

from buildsys import BuildsysError
from buildsys.manifest import ModelSpec

VIT = {"model_type": "vit", "architectures": ["ViTForImageClassification"], "image_size": 32, "num_channels": 3}
GPT2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 50, "n_positions": 64}


def vit(tmp_path, **block):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(VIT))
    return ModelSpec(framework="huggingface", id="m", task="image-classification", **block)


@pytest.mark.parametrize(("kinds", "chosen"), [
    ({"torch.exported"}, "sdpa"), ({"torch.exported", "torch.aoti"}, "sdpa"), ({"torch.aoti"}, "sdpa"),
    ({"torch.exported", "onnx"}, "eager"), ({"onnx.ort"}, "eager"), ({"tensorrt.plan"}, "eager"),
    (set(), "eager")])
def test_auto_is_sdpa_only_when_no_target_goes_through_onnx(tmp_path, kinds, chosen):
    unset = vit(tmp_path)
    for model in (unset, unset.model_copy(update={"attention": "auto"})):
        assert describe(model, tmp_path, frozenset(kinds)).attention == chosen


@pytest.mark.parametrize("forced", ["eager", "sdpa"])
def test_a_forced_implementation_wins_over_the_targets(tmp_path, forced):
    model = vit(tmp_path, attention=forced)
    for kinds in ({"onnx"}, {"torch.exported"}):
        assert describe(model, tmp_path, frozenset(kinds)).attention == forced


def test_generation_steps_keep_their_own_attention():
    task = task_for(GPT2, "text-generation")
    assert resolve(None, task, frozenset({"torch.exported"})) is None
    assert resolve("auto", task, frozenset({"onnx"})) is None
    with pytest.raises(BuildsysError, match="model.attention: 'sdpa' does not apply to task 'text-generation'"):
        resolve("sdpa", task, frozenset({"torch.exported"}))


def test_an_unknown_implementation_is_a_manifest_error():
    with pytest.raises(ValueError, match="attention"):
        ModelSpec(framework="huggingface", id="m", attention="flash")


def test_a_block_without_attention_keeps_its_fingerprint():
    # None is left out of the hashed block: manifests of other sources hash as before
    assert "attention" not in ModelSpec(framework="torch", entrypoint="m.py:build").model_dump(exclude_none=True)


def test_transformers_refusal_of_sdpa_becomes_a_reason():
    refusal = ValueError("WavLMForSequenceClassification does not support an attention implementation through "
                         "torch.nn.functional.scaled_dot_product_attention yet. Please request the support.")
    assert unsupported(refusal) == ("WavLMForSequenceClassification does not support an attention implementation "
                                    "through torch.nn.functional.scaled_dot_product_attention yet")
    assert unsupported(ValueError("weights missing")) is None
