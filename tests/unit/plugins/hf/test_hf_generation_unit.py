"""The generation pieces that need no model: the step layout derived from a config (plan time),
the greedy loop over a runner (numpy: a toy step function stands in for an artifact), and the
token comparison validation reports."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from buildsys_hf.agreement import compare, threshold
from buildsys_hf.describe import describe
from buildsys_hf.generate import StepLayout, generate, left_pad, positions

from buildsys import BuildsysError
from buildsys.manifest import ModelSpec

VOCAB = 10
GPT2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 50, "n_embd": 32, "n_layer": 3,
        "n_head": 4, "n_positions": 40}


def folder_with(tmp_path, config: dict):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{}")
    return folder


def spec(**generation) -> ModelSpec:
    return ModelSpec(framework="huggingface", id="m", task="text-generation", generation=generation or None)


# -- plan time ---------------------------------------------------------------------------------


def test_step_layout_from_a_gpt2_config_without_importing_torch(tmp_path):
    folder_with(tmp_path, GPT2)
    before = set(sys.modules)
    model = describe(spec(), tmp_path)
    assert not {m for m in set(sys.modules) - before if m.split(".")[0] in ("torch", "transformers")}
    shapes = {i.name: i.shape for i in model.inputs}
    assert list(shapes)[:3] == ["input_ids", "attention_mask", "position_ids"]
    assert shapes["attention_mask"] == ["batch", "total"]
    assert shapes["past_key_values.2.value"] == ["batch", 4, "past", 8] and len(shapes) == 3 + 2 * 3
    dims = {name: (d.min, d.opt, d.max) for name, d in model.dims.items()}
    assert dims["seq"] == (1, 16, 40) and dims["past"] == (0, 16, 39) and dims["total"] == (1, 32, 79)


def test_max_context_narrows_the_dims_and_may_not_pass_the_positions(tmp_path):
    folder_with(tmp_path, GPT2)
    model = describe(spec(max_context=8), tmp_path)
    assert (model.dims["seq"].max, model.dims["past"].max, model.dims["past"].opt) == (8, 7, 7)
    with pytest.raises(BuildsysError, match="max_context 41 is above the model's 40 positions"):
        describe(spec(max_context=41), tmp_path)


@pytest.mark.parametrize(("architecture", "message"), [
    ("BertModel", "needs a causal language model"),
    ("BartForConditionalGeneration", "is an encoder-decoder")])
def test_encoders_and_encoder_decoders_are_refused(tmp_path, architecture, message):
    model_type = "bert" if architecture.startswith("Bert") else "bart"
    folder_with(tmp_path, {"model_type": model_type, "architectures": [architecture], "vocab_size": 50,
                           "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                           "max_position_embeddings": 64})
    with pytest.raises(BuildsysError, match=message):
        describe(spec(), tmp_path)


LLAMA_SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 50,
               "max_position_embeddings": 64}


def test_a_sliding_window_shorter_than_the_context_is_refused_with_the_context_that_works(tmp_path):
    folder_with(tmp_path, {"model_type": "mistral", "architectures": ["MistralForCausalLM"], "sliding_window": 16,
                           **LLAMA_SHAPE})
    with pytest.raises(BuildsysError, match="sliding window of 16 tokens") as caught:
        describe(spec(), tmp_path)
    assert "max_context to at most 16" in caught.value.hint
    assert describe(spec(max_context=16), tmp_path).dims["seq"].max == 16


def test_a_cache_with_recurrent_state_is_refused(tmp_path):
    folder_with(tmp_path, {"model_type": "jamba", "architectures": ["JambaForCausalLM"], **LLAMA_SHAPE})
    with pytest.raises(BuildsysError, match="holds recurrent state"):
        describe(spec(), tmp_path)


# -- the loop ----------------------------------------------------------------------------------


class Toy:
    """A step 'artifact': next token = last token + 1 (mod VOCAB), except 9 -> end of sequence 0;
    the cache holds each token id; every call's inputs are recorded."""

    layout = StepLayout(("input_ids", "attention_mask", "position_ids", "past_key_values.0.key",
                         "past_key_values.0.value"), ("logits", "present.0.key", "present.0.value"), 1, 1,
                        max_context=32)

    def __init__(self):
        self.calls = []

    def __call__(self, arrays):
        ids, mask, pos, key, value = arrays
        self.calls.append({"ids": ids, "mask": mask, "pos": pos, "past": key.shape[2]})
        assert mask.shape[1] == key.shape[2] + ids.shape[1]  # total = past + seq
        logits = np.zeros(ids.shape + (VOCAB,), np.float32)
        logits[np.arange(ids.shape[0]), -1, (ids[:, -1] + 1) % VOCAB] = 1.0
        new = ids[:, None, :, None].astype(np.float32)
        return [logits, np.concatenate([key, new], axis=2), np.concatenate([value, new], axis=2)]


def test_prefill_then_one_decode_step_per_token_with_the_cache_fed_back():
    toy = Toy()
    tokens = generate(toy, Toy.layout, [[1, 2, 3], [5]], max_new_tokens=4)
    assert tokens.tolist() == [[4, 5, 6, 7], [6, 7, 8, 9]]
    assert [c["ids"].shape[1] for c in toy.calls] == [3, 1, 1, 1] and [c["past"] for c in toy.calls] == [0, 3, 4, 5]
    prefill = toy.calls[0]
    assert prefill["mask"].tolist() == [[1, 1, 1], [0, 0, 1]]  # left padding
    assert prefill["pos"].tolist() == [[0, 1, 2], [1, 1, 0]]  # pads at 1, as transformers does
    assert toy.calls[1]["pos"].tolist() == [[3], [1]] and toy.calls[-1]["mask"].shape == (2, 6)


def test_rows_that_end_get_pad_tokens_and_the_loop_stops_when_all_ended():
    toy = Toy()
    tokens = generate(toy, Toy.layout, [[7], [8]], max_new_tokens=10, eos_token_id=0, pad_token_id=5)
    assert tokens.tolist() == [[8, 9, 0], [9, 0, 5]] and len(toy.calls) == 3


def test_a_prompt_that_does_not_fit_the_context_is_refused_with_the_numbers():
    with pytest.raises(BuildsysError, match="a prompt of 30 tokens and 4 new tokens need 34 positions, and the "
                                            "artifact holds 32"):
        generate(Toy(), Toy.layout, [list(range(30))], max_new_tokens=4)


def test_left_pad_and_positions_match_transformers_convention():
    ids, mask = left_pad([[4, 5], [6]], pad_token_id=0)
    assert ids.tolist() == [[4, 5], [0, 6]] and positions(mask).tolist() == [[0, 1], [1, 0]]


# -- the comparison -----------------------------------------------------------------------------


def test_agreement_and_the_earliest_divergence_over_prompts():
    wanted = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    got = np.array([[1, 2, 3, 9], [5, 0, 7, 8]])
    result = compare(got, wanted)
    assert result["agreement"] == 6 / 8
    assert result["first_divergence"] == {"step": 1, "prompt": 1, "token": 0, "expected": 6}
    assert compare(wanted, wanted) == {"agreement": 1.0, "tokens": 8, "first_divergence": None}


def test_a_row_that_ended_early_counts_its_missing_tokens_as_disagreeing():
    result = compare(np.array([[1, 2]]), np.array([[1, 2, 3]]))
    assert result["agreement"] == 2 / 3 and result["first_divergence"]["step"] == 2


def test_thresholds_fp32_exact_reduced_half_unless_the_manifest_says():
    assert threshold(spec(), "fp32") == 1.0 and threshold(spec(), "fp16") == 0.5
    assert threshold(spec(min_token_agreement={"fp16": 0.9}), "fp16") == 0.9
