"""Realistic samples for validation: tokenized fixed sentences, synthesised images and audio
(fixed seed), run through the model's own tokenizer / image processor / feature extractor.

Three batches (1, 2 and 4 items), every size inside the manifest's dims.
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "The build system turns trained models into deployable artifacts.",
    "A lockfile records exactly what was built and from what.",
    "Engines are compiled for the GPU they will run on.",
    "Short.",
]
LABELS = ["a photo of a cat", "a photo of a dog", "a diagram"]
BATCHES = (1, 2, 4)
SEED = 1


def samples_for(config, folder: Path, model) -> list[dict]:
    names = {s.name for s in model.inputs}
    dims = {name: dim.ranges() for name, dim in model.dims.items()}
    out = []
    for i, count in enumerate(BATCHES):
        sample = {}
        if "input_ids" in names:
            texts = LABELS if "pixel_values" in names else SENTENCES
            sample.update(_text(folder, (texts * 2)[:count if "pixel_values" not in names else len(texts)],
                                _high(dims, "seq", 512)))
        if "pixel_values" in names:
            sample["pixel_values"] = _images(folder, model, count, seed=SEED + i)
        if "input_values" in names:
            sample["input_values"] = _audio(folder, count, _audio_length(dims, i), seed=SEED + i)
        out.append(sample)
    return out


def _high(dims: dict, name: str, default: int) -> int:
    return dims[name][-1][2] if name in dims else default


def _text(folder: Path, texts: list[str], max_length: int) -> dict:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tokenizer.pad_token is None:  # decoders (GPT-2) have none: pad with end-of-text
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": encoded["input_ids"].long(), "attention_mask": encoded["attention_mask"].long()}


def _images(folder: Path, model, count: int, seed: int):
    """Smooth colour gradients with noise (not pure noise: normalisation sees image-like statistics)."""
    import numpy as np
    import torch

    spec = next(s for s in model.inputs if s.name == "pixel_values")
    channels, height, width = (int(d) for d in spec.shape[1:])
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    images = []
    for _ in range(count):
        phase = rng.uniform(0, 2 * np.pi, size=channels)
        img = np.stack([0.5 + 0.4 * np.sin(6 * xs + 4 * ys + p) for p in phase], axis=-1)
        img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
        images.append((img * 255).astype(np.uint8))
    processed = _image_processor(folder, images)
    if processed is not None:
        return processed
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0)


def _image_processor(folder: Path, images):
    if not (folder / "preprocessor_config.json").is_file():
        return None
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
    return processor(images=images, return_tensors="pt")["pixel_values"].float()


def _audio_length(dims: dict, index: int) -> int:
    low, opt, high = dims["audio"][0][0], dims["audio"][0][1], dims["audio"][-1][2]
    return (low, opt, (opt + high) // 2)[index]


def _audio(folder: Path, count: int, length: int, seed: int):
    """Chirps with noise at 16 kHz, normalised by the model's feature extractor when it has one."""
    import numpy as np
    import torch

    waves = chirps(count, length, seed)
    if (folder / "preprocessor_config.json").is_file():
        from transformers import AutoFeatureExtractor

        extractor = AutoFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
        values = extractor(waves, sampling_rate=16000, return_tensors="pt")
        if "input_values" in values:
            return values["input_values"].float()
    return torch.from_numpy(np.stack(waves).astype(np.float32))


def chirps(count: int, length: int, seed: int) -> list:
    """``count`` chirps with noise, ``length`` samples at 16 kHz each."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(length) / 16000.0
    return [np.sin(2 * np.pi * (rng.uniform(100, 400) + rng.uniform(50, 400) * t) * t) * 0.5
            + rng.normal(0, 0.02, length) for _ in range(count)]


def speech_features(folder: Path, count: int, seed: int = SEED):
    """float32 ``input_features`` of ``count`` chirps (0.5 to 1 s) through the model's own feature
    extractor (a spectrogram model's, e.g. Whisper's: preprocessor_config.json)."""
    import numpy as np
    from transformers import AutoFeatureExtractor

    from buildsys import BuildsysError

    if not (folder / "preprocessor_config.json").is_file():
        raise BuildsysError(f"{folder} has no preprocessor_config.json, and a speech model's samples are "
                            "spectrograms its feature extractor computes", hint="save the feature extractor "
                                                                                "beside the model")
    extractor = AutoFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
    waves = [wave[:8000 + 1000 * k] for k, wave in enumerate(chirps(count, 16000, seed))]
    return extractor(waves, sampling_rate=16000, return_tensors="np")["input_features"].astype(np.float32)
