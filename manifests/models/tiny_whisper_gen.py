"""Write the tiny random-weight Whisper that manifests/tiny-whisper-gen.yaml builds (offline, ~300 KB,
git-ignored): 2 encoder and 2 decoder layers, d_model 32, 4 heads, 8 mel bins over 1 s of audio
(100 frames, 50 encoder rows), its feature extractor, and the word-level tokenizer of
tiny_llama_gen.py (the decoder starts from ``<s>`` and stops at ``</s>``).

    .venv/bin/python manifests/models/tiny_whisper_gen.py      # then: buildsys build manifests/tiny-whisper-gen.yaml

The weights are random (seeded, std 1 as in tiny_t5_gen.py): what the example checks is that the
artifacts transcribe to the eager model's tokens. No suppressed tokens, so that eager
``generate()`` is plain greedy decoding.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLDER = HERE / "tiny-whisper-gen"
save_tokenizer = runpy.run_path(str(HERE / "tiny_llama_gen.py"))["save_tokenizer"]
save_spread = runpy.run_path(str(HERE / "tiny_t5_gen.py"))["save_spread"]


def main(folder: Path = FOLDER, seed: int = 0) -> Path:
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = save_tokenizer(folder)
    transformers.WhisperFeatureExtractor(feature_size=8, sampling_rate=16000, hop_length=160,
                                         chunk_length=1).save_pretrained(folder)
    config = transformers.WhisperConfig(vocab_size=vocab, num_mel_bins=8, encoder_layers=2, decoder_layers=2,
                                        encoder_attention_heads=4, decoder_attention_heads=4, d_model=32,
                                        encoder_ffn_dim=48, decoder_ffn_dim=48, max_source_positions=50,
                                        max_target_positions=64, decoder_start_token_id=2, bos_token_id=2,
                                        eos_token_id=3, pad_token_id=0, suppress_tokens=[], begin_suppress_tokens=None,
                                        architectures=["WhisperForConditionalGeneration"])
    return save_spread(transformers.WhisperForConditionalGeneration, config, folder, seed)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER))
