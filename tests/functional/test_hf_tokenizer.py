"""The tokenizer travels with the artifact: the tiny Llama and T5 examples built to torch.exported
and ONNX carry tokenizer/ (checksummed in artifact.json), and once the model folder is gone,
buildsys.load + generate_text turn text into the text eager generate() gives."""

from __future__ import annotations

import hashlib
import json
import os
import runpy
import shutil
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

import buildsys
from buildsys import VerifyError

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
PROMPTS = ["once upon a time there was", "the build system turns models into", "engines are compiled"]
NEW_TOKENS = 10


@pytest.fixture
def project(buildsys_project, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    buildsys_project.env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"))
    return buildsys_project


def example(project, name: str, script: str) -> Path:
    """The shipped example manifest and its model, written by the script it names."""
    shutil.copy(MANIFESTS / f"{name}.yaml", project.root / f"{name}.yaml")
    (project.root / "models").mkdir()
    for file in ("tiny_llama_gen.py", script):
        shutil.copy(MANIFESTS / "models" / file, project.root / "models" / file)
    return runpy.run_path(str(project.root / "models" / script))["main"]()


def eager_texts(auto, folder: Path, padding_side: str) -> list[str]:
    """What the eager model's greedy generate() continues PROMPTS with, decoded by its own tokenizer."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), padding_side=padding_side)
    model = getattr(transformers, auto).from_pretrained(str(folder)).eval()
    batch = tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=NEW_TOKENS, do_sample=False)
    new = out[:, batch["input_ids"].shape[1]:] if padding_side == "left" else out[:, 1:]
    return tokenizer.batch_decode(new, skip_special_tokens=True)


def check_carried(directory: Path, folder_files: set[str]) -> dict:
    """The tokenizer files are in artifact.json with their checksums, and listed as companions."""
    record = json.loads((directory / "artifact.json").read_text())
    files = {f["name"]: f for f in record["files"]}
    carried = sorted(f"tokenizer/{name}" for name in folder_files)
    assert record["meta"]["companion_files"] == carried
    for name in carried:
        assert files[name]["sha256"] == hashlib.sha256((directory / name).read_bytes()).hexdigest()
    assert {"tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json", "tokenizer/config.json"} <= set(carried)
    return record


def build_move_and_generate(project, name: str, folder: Path, expected: list[str]) -> None:
    from buildsys_hf.text import generate_text

    project.cli("build", f"{name}.yaml", "-t", "exported", "-t", "onnx", timeout=900).assert_ok()
    tokenizer_files = {p.name for p in folder.glob("*.json")}  # config, generation config, tokenizer
    moved = folder.rename(folder.with_name("moved-away"))
    for target in ("exported", "onnx"):
        directory = project.target_dir(name, "1.0.0", target)
        check_carried(directory, tokenizer_files)
        session = buildsys.load(directory)
        assert generate_text(session, PROMPTS, max_new_tokens=NEW_TOKENS) == expected, target
    tampered = project.target_dir(name, "1.0.0", "onnx") / "tokenizer" / "tokenizer.json"
    os.chmod(tampered, 0o644)
    tampered.write_text(tampered.read_text().replace('"time"', '"tide"'))
    with pytest.raises(VerifyError, match="tokenizer/tokenizer.json"):
        buildsys.load(tampered.parent.parent)
    assert not folder.exists() and moved.is_dir()


def test_tiny_llama_artifacts_carry_their_tokenizer_and_generate_text_without_the_model_folder(project):
    folder = example(project, "tiny-llama-gen", "tiny_llama_gen.py")
    expected = eager_texts("AutoModelForCausalLM", folder, "left")
    assert all(expected)
    build_move_and_generate(project, "tiny-llama-gen", folder, expected)


def test_tiny_t5_artifacts_carry_their_tokenizer_and_generate_text_without_the_model_folder(project):
    folder = example(project, "tiny-t5-gen", "tiny_t5_gen.py")
    expected = eager_texts("AutoModelForSeq2SeqLM", folder, "right")
    assert all(expected)
    build_move_and_generate(project, "tiny-t5-gen", folder, expected)


def test_tokenizer_travels_only_with_generation_models(tmp_path):
    from buildsys_hf.tokenizer import companions

    from buildsys.manifest import ModelSpec

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
    from tiny_decoders import save_decoder

    save_decoder(tmp_path / "lm", "llama", positions=64)
    generation = ModelSpec.model_validate({"framework": "huggingface", "id": "lm", "task": "text-generation"})
    assert set(companions(generation, tmp_path)) >= {"tokenizer/tokenizer.json", "tokenizer/config.json"}
    forward = ModelSpec.model_validate({"framework": "huggingface", "id": "lm", "task": "feature-extraction"})
    assert companions(forward, tmp_path) == {}
