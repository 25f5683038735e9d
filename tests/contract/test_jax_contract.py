"""The JAX plugin's stages pass the same contract suite a third-party stage would, on the
example manifest (manifests/jax-mlp.yaml: the pure-JAX MLP with its weights file), built once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildsys.testing import SharedStageContract, shared_build

pytest.importorskip("jax")  # the jax extra is installed in CI: this never skips there

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
MANIFEST = (MANIFESTS / "jax-mlp.yaml").read_text()


shared_build = shared_build(MANIFEST, copy=MANIFESTS / "models")


class _Shared(SharedStageContract):
    manifest = MANIFEST


class TestJaxExport(_Shared):
    stage, target = "jax.export", "stablehlo"


class TestXlaCompile(_Shared):
    stage, target = "xla.compile", "xla-host"


def test_the_example_validates_both_targets_with_default_samples(shared_build):
    project, _, _ = shared_build
    for target, tag in (("stablehlo", "cpu.cuda.tpu"), ("xla-host", None)):
        record = json.loads((project.target_dir("jax-mlp", "1.0.0", target) / "artifact.json").read_text())
        assert record["hardware"] == (tag or record["host"]["cpu_tag"])
        assert record["validation"]["status"] == "passed" and record["validation"]["samples"] == 3  # min, opt, max
        assert [o["name"] for o in record["validation"]["outputs"]] == ["embedding", "logits"]


class TestJaxReference(_Shared):
    """The reference outputs (jitted function on the samples): not a target's artifact."""

    stage, target, final = "jax.reference", "stablehlo", False
