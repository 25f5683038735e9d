"""WavLM's and SEW's shape arithmetic rewritten so one exported program takes every batch and
audio length of the manifest's range: the same values as the model's own forward, and a program
that exports (SEW) / takes batch 1 (WavLM) where the unpatched model's does not."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from buildsys_hf.audio_shapes import batch_major_attention, patch_audio, squeeze_lengths  # noqa: E402

AUDIO = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 20,
         "conv_dim": (16, 16), "conv_stride": (5, 4), "conv_kernel": (10, 4), "num_conv_pos_embeddings": 16,
         "num_conv_pos_embedding_groups": 2}
# frames = (audio // 5 - 5) // 4 + 1: 4000 -> 199 (odd), 4020 -> 200 (even), 4001 -> 199
LENGTHS = (4000, 4020, 4041)


def classifier(model_type: str, **extra):
    config = transformers.AutoConfig.for_model(model_type, **{**AUDIO, **extra})
    torch.manual_seed(0)
    return transformers.AutoModelForAudioClassification.from_config(config, attn_implementation="eager").eval()


class Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, audio):
        return self.model(input_values=audio).logits


def export(model, example_batch: int = 2):
    batch, audio = torch.export.Dim("batch", min=1, max=8), torch.export.Dim("audio", min=4000, max=8000)
    return torch.export.export(Logits(model), (torch.randn(example_batch, 6000),),
                               dynamic_shapes=({0: batch, 1: audio},))


def same_as_before(make, patch) -> None:
    reference, model = make(), make()
    assert patch(model) >= 1
    with torch.no_grad():
        for batch, length in [(1, LENGTHS[0]), (3, LENGTHS[1]), (2, LENGTHS[2])]:
            audio = torch.randn(batch, length)
            torch.testing.assert_close(model(input_values=audio).logits, reference(input_values=audio).logits)


def test_wavlm_batch_major_attention_gives_the_same_logits():
    same_as_before(lambda: classifier("wavlm"), batch_major_attention)


def test_wavlm_attention_masks_padded_keys_as_torch_mha_does():
    model = classifier("wavlm")
    attention = next(m for m in model.modules() if hasattr(m, "torch_multi_head_self_attention"))
    hidden, bias = torch.randn(2, 7, 16), torch.randn(2 * 2, 7, 7)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    expected = attention.torch_multi_head_self_attention(hidden, mask, bias)
    batch_major_attention(model)
    actual = attention.torch_multi_head_self_attention(hidden, mask, bias)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e)


def takes_every_shape(program, model, shapes):
    """The exported program runs at each (batch, audio length) and gives the module's logits."""
    for batch, length in shapes:
        audio = torch.randn(batch, length)
        torch.testing.assert_close(program.module()(audio), model(input_values=audio).logits)


@pytest.mark.slow
def test_wavlm_program_takes_batch_1_once_patched():
    with torch.no_grad():
        unpatched = export(classifier("wavlm"))
        with pytest.raises(Exception, match="Guard failed"):  # frames % (batch * frames) != 0
            unpatched.module()(torch.randn(1, 4000))
        model = classifier("wavlm")
        batch_major_attention(model)
        takes_every_shape(export(model), model, [(1, 4000), (1, 4020), (8, 8000), (3, 5003)])


def test_sew_squeeze_lengths_give_the_same_logits_for_either_parity():
    same_as_before(lambda: classifier("sew", squeeze_factor=2), squeeze_lengths)


@pytest.mark.slow
def test_sew_exports_over_the_audio_range_once_patched():
    with torch.no_grad():
        with pytest.raises(Exception, match="Constraints violated"):
            export(classifier("sew", squeeze_factor=2))
        model = classifier("sew", squeeze_factor=2)
        squeeze_lengths(model)
        takes_every_shape(export(model), model, [(1, 4000), (2, 4020), (8, 8000), (3, 4041)])


def test_other_audio_models_are_left_alone():
    model = classifier("wav2vec2")
    assert patch_audio(model) == []
    assert patch_audio(classifier("sew", squeeze_factor=1)) == []  # no pooling: nothing pins a length


def test_a_sew_positional_conv_of_odd_kernel_is_left_alone():
    # an odd kernel makes the positional conv one frame longer than the pool: min() picks, not a rewrite
    assert squeeze_lengths(classifier("sew", squeeze_factor=2, num_conv_pos_embeddings=15)) == 0
