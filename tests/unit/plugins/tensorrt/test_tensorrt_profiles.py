"""Optimization profiles from the manifest's dims: ranges, buckets, and what does not fit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from buildsys_tensorrt import profiles
from buildsys_tensorrt.options import PlanOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "models"))
trt_graphs = pytest.importorskip("trt_graphs")  # needs onnx (the onnx extra): never skips in CI

ENCODER = {"input_ids": (-1, -1), "attention_mask": (-1, -1)}


def encoder_model(batch, seq):
    from buildsys.manifest import ModelSpec

    return ModelSpec.model_validate({
        "framework": "torch", "entrypoint": "m.py:build",
        "inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"]},
                   {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "seq"]}],
        "dims": {"batch": batch, "seq": seq}})


def test_one_profile_from_min_opt_max():
    [profile] = profiles.auto_profiles({"x": (-1, 8)}, trt_graphs.model_block(batch=(1, 2, 4)))
    assert profile.shapes == {"x": ((1, 8), (2, 8), (4, 8))}
    assert profile.dims == {"batch": (1, 2, 4)}


def test_one_profile_per_bucket_and_per_combination_of_dims():
    model = encoder_model({"min": 1, "opt": 8, "max": 32}, {"buckets": ["1-128", "129-512", "513-2048"]})
    made = profiles.auto_profiles(ENCODER, model)
    assert [p.dims["seq"] for p in made] == [(1, 128, 128), (129, 512, 512), (513, 2048, 2048)]
    assert made[1].shapes["input_ids"] == ((1, 129), (8, 512), (32, 512))
    assert made[1].shapes["attention_mask"] == made[1].shapes["input_ids"]
    two_dims = encoder_model({"buckets": ["1-4", "5-32"]}, {"buckets": ["1-128", "129-512"]})
    assert len(profiles.auto_profiles(ENCODER, two_dims)) == 4


def test_a_short_request_gets_the_short_bucket():
    model = encoder_model({"min": 1, "opt": 8, "max": 32}, {"buckets": ["1-128", "129-512", "513-2048"]})
    made = profiles.auto_profiles(ENCODER, model)
    assert profiles.pick(made, {"input_ids": (4, 100), "attention_mask": (4, 100)}) == 0
    assert profiles.pick(made, {"input_ids": (4, 600), "attention_mask": (4, 600)}) == 2
    assert profiles.pick(made, {"input_ids": (64, 100), "attention_mask": (64, 100)}) is None


def test_fixed_axes_stay_fixed():
    [profile] = profiles.auto_profiles({"x": (-1, 3, 32, 32)}, trt_graphs.model_block(
        inputs=(("x", ["batch", 3, 32, 32]),)))
    assert profile.shapes["x"][2] == (4, 3, 32, 32)


def test_a_dynamic_input_the_manifest_does_not_declare_has_no_profile():
    with pytest.raises(profiles.ProfileError) as info:
        profiles.auto_profiles({"x": (-1, 8), "extra": (-1,)}, trt_graphs.model_block())
    assert "input 'extra' [?] is dynamic, and the manifest declares no input 'extra'" in str(info.value)
    assert "model.inputs" in info.value.hint


def test_explicit_profiles_are_checked_against_the_manifest_and_network():
    given = PlanOptions.model_validate({"profiles": [
        {"x": {"min": [1, 8], "opt": [2, 8], "max": [64, 8]}},       # batch beyond the manifest's max 4
        {"x": {"min": [1, 9], "opt": [1, 9], "max": [1, 9]}, "z": {"min": [1], "opt": [1], "max": [1]}},
        {},                                                       # no shapes for the dynamic input
    ]}).profiles
    with pytest.raises(profiles.ProfileError) as info:
        profiles.explicit_profiles({"x": (-1, 8)}, given, trt_graphs.model_block(batch=(1, 2, 4)))
    text = str(info.value)
    assert "profile 0: input 'x' axis 0: 1..64 is outside dim 'batch' (1..4)" in text
    assert "profile 1: names 'z', which is not a network input" in text
    assert "profile 1: input 'x' axis 1: 9..9 is outside its fixed size (8..8)" in text
    assert "profile 2: has no shapes for dynamic input 'x' [?, 8]" in text


def test_explicit_profiles_inside_the_dims_are_used_as_given():
    given = PlanOptions.model_validate({"profiles": [{"x": {"min": [1, 8], "opt": [1, 8], "max": [2, 8]}},
                                                     {"x": {"min": [3, 8], "opt": [4, 8], "max": [4, 8]}}]}).profiles
    made = profiles.explicit_profiles({"x": (-1, 8)}, given, trt_graphs.model_block(batch=(1, 2, 4)))
    assert [p.shapes["x"] for p in made] == [((1, 8), (1, 8), (2, 8)), ((3, 8), (4, 8), (4, 8))]


def test_profile_json_round_trip():
    [profile] = profiles.auto_profiles({"x": (-1, 8)}, trt_graphs.model_block())
    assert profiles.Profile.from_json(profile.to_json()) == profile
