"""What the Hugging Face source derives from a config alone (plan time: no torch, no model code)."""

from __future__ import annotations

import json
import sys

import pytest
from buildsys_hf.describe import describe

from buildsys.manifest import ModelSpec


def folder_with(tmp_path, config: dict, tokenizer: bool = True):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    if tokenizer:
        (folder / "tokenizer.json").write_text("{}")
    return folder


@pytest.mark.parametrize(("model_type", "positions", "pad", "seq_min", "seq_max"),
                         [("bert", 64, 0, 1, 64), ("roberta", 66, 1, 1, 64), ("mpnet", 514, 1, 1, 512),
                          ("mobilebert", 64, 0, 3, 64)])
def test_sequence_range_from_the_config_less_the_padding_offset_where_positions_start_after_it(
        tmp_path, model_type, positions, pad, seq_min, seq_max):
    folder_with(tmp_path, {"model_type": model_type, "architectures": [], "vocab_size": 50,
                           "max_position_embeddings": positions, "pad_token_id": pad})
    model = describe(ModelSpec(framework="huggingface", id="m", task="feature-extraction"), tmp_path)
    assert (model.dims["seq"].min, model.dims["seq"].max) == (seq_min, seq_max)
    assert [(i.name, i.dtype, i.shape) for i in model.inputs] == [
        ("input_ids", "int64", ["batch", "seq"]), ("attention_mask", "int64", ["batch", "seq"])]


def test_manifest_dims_and_inputs_win_and_describe_imports_no_framework(tmp_path):
    folder_with(tmp_path, {"model_type": "vit", "architectures": ["ViTForImageClassification"],
                           "image_size": 32, "num_channels": 3})
    spec = ModelSpec(framework="huggingface", id="m", task="auto", dims={"batch": {"min": 1, "opt": 2, "max": 4}})
    before = set(sys.modules)
    model = describe(spec, tmp_path)
    assert not {m for m in set(sys.modules) - before if m.split(".")[0] in ("torch", "transformers")}
    assert model.inputs[0].shape == ["batch", 3, 32, 32]
    assert model.dims["batch"].max == 4


def test_feature_extraction_on_an_encoder_decoder_takes_its_encoder_or_points_at_text2text(tmp_path):
    from buildsys_hf.tasks import task_for

    from buildsys import BuildsysError

    t5 = {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "is_encoder_decoder": True}
    assert task_for(t5, "feature-extraction").auto_class == "AutoModelForTextEncoding"
    assert task_for({**t5, "architectures": ["T5Model"]}, "auto").auto_class == "AutoModelForTextEncoding"
    bart = {"model_type": "bart", "architectures": ["BartModel"], "is_encoder_decoder": True}
    with pytest.raises(BuildsysError, match="no encoder-only class") as info:
        task_for(bart, "feature-extraction")
    assert "text2text-generation" in info.value.hint


def test_a_model_type_transformers_does_not_know_is_served_by_the_auto_class_its_own_code_names():
    from buildsys_hf.tasks import task_for

    from buildsys import BuildsysError

    remote = {"model_type": "house_llama", "architectures": ["HouseForCausalLM"],
              "auto_map": {"AutoConfig": "modeling_house.HouseConfig",
                           "AutoModelForCausalLM": "modeling_house.HouseForCausalLM"}}
    assert task_for(remote, "text-generation").step == "kv-cache"
    assert task_for(remote, "auto").name == "text-generation"
    with pytest.raises(BuildsysError, match="task 'fill-mask' is not available for model type 'house_llama'"):
        task_for(remote, "fill-mask")  # its code brings no masked-LM class
    without = {k: v for k, v in remote.items() if k != "auto_map"}
    with pytest.raises(BuildsysError, match="not available for model type 'house_llama'") as info:
        task_for(without, "text-generation")  # not "no language-modelling head": transformers knows no such type
    assert "auto_map (AutoModelForCausalLM for this task)" in info.value.hint
