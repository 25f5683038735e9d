"""Remote code, as hub repositories ship it: a model type transformers does not know, its classes
in the model folder (config.json auto_map), loaded only with trust_remote_code. Both are Llama
underneath; ``TabledForCausalLM`` picks each layer's attention from a table of its own, as
Falcon and GPT-Neo did, so an implementation missing from the table fails with a KeyError.
``save_remote`` copies this file into the folder as ``modeling_house.py``."""

from __future__ import annotations

from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama import modeling_llama


class HouseConfig(LlamaConfig):
    model_type = "house_llama"


class HouseForCausalLM(LlamaForCausalLM):
    config_class = HouseConfig


ATTENTION_CLASSES = {"eager": modeling_llama.LlamaAttention, "sdpa": modeling_llama.LlamaAttention}


class TabledForCausalLM(LlamaForCausalLM):
    config_class = HouseConfig

    def __init__(self, config):
        super().__init__(config)
        for index, layer in enumerate(self.model.layers):
            layer.self_attn = ATTENTION_CLASSES[config._attn_implementation](config, index)
