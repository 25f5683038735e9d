"""Companion files (buildsys/companions.py): what a source attaches, checked, and carried from
input to output by the worker — not into references or validations, never over a stage's own file."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from buildsys import BuildsysError, InputArtifact, SourceSpec
from buildsys.companions import COMPANION_FILES, carry, of_source


def source(tmp_path: Path, companions: dict, fingerprinted: list[Path]) -> SourceSpec:
    return SourceSpec(framework="fake", kind="fake.module", fingerprint=lambda model, root: fingerprinted,
                      load=lambda model, root: None, companions=lambda model, root: companions)


def context(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    return SimpleNamespace(out_dir=out, stage="fake.stage", model=None, root=tmp_path)


@pytest.fixture
def vocab(tmp_path: Path) -> Path:
    path = tmp_path / "vocab.json"
    path.write_text('{"a": 0}')
    return path


SOURCE_INPUT = InputArtifact("fake.module", "fp32", "any", None)


def test_the_source_companions_are_copied_under_their_names(tmp_path, vocab):
    ctx = context(tmp_path)
    spec = source(tmp_path, {"tokenizer/vocab.json": vocab}, [vocab])
    assert carry(ctx, spec, "fake.graph", [SOURCE_INPUT]) == ["tokenizer/vocab.json"]
    assert (ctx.out_dir / "tokenizer" / "vocab.json").read_text() == '{"a": 0}'


def test_an_artifact_input_passes_on_the_files_its_metadata_lists(tmp_path, vocab):
    ctx = context(tmp_path)
    given = InputArtifact("fake.graph", "fp32", "any", tmp_path, {"model.bin": vocab, "tokenizer/vocab.json": vocab},
                          {COMPANION_FILES: ["tokenizer/vocab.json"]})
    assert carry(ctx, None, "fake.engine", [given]) == ["tokenizer/vocab.json"]
    assert not (ctx.out_dir / "model.bin").exists()


@pytest.mark.parametrize("produces", ["reference", "validation"])
def test_references_and_validations_carry_nothing(tmp_path, vocab, produces):
    ctx = context(tmp_path)
    assert carry(ctx, source(tmp_path, {"tokenizer/vocab.json": vocab}, [vocab]), produces, [SOURCE_INPUT]) == []
    assert list(ctx.out_dir.iterdir()) == []


def test_a_stage_file_of_the_same_name_is_refused(tmp_path, vocab):
    ctx = context(tmp_path)
    (ctx.out_dir / "vocab.json").write_text("mine")
    with pytest.raises(BuildsysError, match="stage 'fake.stage' wrote vocab.json, which is a companion file"):
        carry(ctx, source(tmp_path, {"vocab.json": vocab}, [vocab]), "fake.graph", [SOURCE_INPUT])


def test_a_file_outside_the_fingerprint_is_refused(tmp_path, vocab):
    with pytest.raises(BuildsysError, match="which its fingerprint does not cover"):
        of_source(None, tmp_path, source(tmp_path, {"tokenizer/vocab.json": vocab}, []))


@pytest.mark.parametrize("name", ["../vocab.json", "/abs/vocab.json", "a\\b.json", ""])
def test_a_name_outside_the_artifact_is_refused(tmp_path, vocab, name):
    with pytest.raises(BuildsysError, match="not a relative path inside the artifact"):
        of_source(None, tmp_path, source(tmp_path, {name: vocab}, [vocab]))


def test_a_source_without_companions_attaches_nothing(tmp_path):
    plain = SourceSpec(framework="fake", kind="fake.module", fingerprint=lambda m, r: [], load=lambda m, r: None)
    assert of_source(None, tmp_path, plain) == {}
