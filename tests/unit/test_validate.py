"""The validate stage's pure parts: the non-contiguous re-run and the output signature."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from buildsys.builtin.validate import _strided_problems, output_signature, strided
from buildsys.tolerance import Tolerance

INDEX = {"outputs": ["y"], "shapes": [[[3, 4]]]}


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (5,)])
def test_strided_keeps_values_and_changes_the_layout(shape):
    array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    laid_out = strided(array)
    assert not laid_out.flags.c_contiguous and np.array_equal(laid_out, array)


def test_a_runner_reading_raw_memory_is_caught_and_one_that_lays_inputs_out_passes():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)

    def reads_memory(arrays):  # what a compiled artifact handed strided memory does
        return [np.ravel(arrays[0], order="K").reshape(arrays[0].shape) * 2]

    def lays_out(arrays):
        return [np.ascontiguousarray(arrays[0]) * 2]

    tolerance = Tolerance(rtol=1e-4, atol=1e-5)
    problems = _strided_problems(reads_memory, [x], [x * 2], INDEX, tolerance)
    assert len(problems) == 1 and "non-contiguous input arrays (same values) output 'y'" in problems[0]
    assert _strided_problems(lays_out, [x], [x * 2], INDEX, tolerance) == []

    def refuses(arrays):
        raise ValueError("ndarray is not C-contiguous")

    [problem] = _strided_problems(refuses, [x], [x * 2], INDEX, tolerance)
    assert "the runner failed: ValueError: ndarray is not C-contiguous" in problem


def test_output_signature_names_dims_where_the_samples_show_them():
    model = SimpleNamespace(inputs=[SimpleNamespace(shape=["batch", "seq"]), SimpleNamespace(shape=["batch", 10])])
    index = {"outputs": ["hidden", "logits", "flag"],
             "shapes": [[[2, 7], [2, 10]], [[5, 7], [5, 10]]]}
    seen = [[np.zeros((b, 7, 10), np.float32), np.zeros((b, 10), np.float16), np.zeros((1,), np.int64)]
            for b in (2, 5)]
    signature = output_signature(model, index, seen)
    # seq never varied: named only at its own axis (1); the 10 classes stay static
    assert signature == {"hidden": {"dtype": "float32", "shape": ["batch", "seq", 10]},
                         "logits": {"dtype": "float16", "shape": ["batch", 10]},
                         "flag": {"dtype": "int64", "shape": [1]}}


def test_default_tolerances_scale_atol_to_the_output_and_still_block_damage():
    from buildsys.builtin.validate import compare
    from buildsys.tolerance import DEFAULT_VALIDATION

    rng = np.random.default_rng(0)
    logits = rng.uniform(-15, 15, (8, 1000))
    logits[:, :10] = rng.uniform(-1e-3, 1e-3, (8, 10))  # small logits beside large ones
    noisy = logits + rng.normal(0, 1e-5, logits.shape)  # fp32 accumulation noise on a [-15, 15] output
    fp32 = DEFAULT_VALIDATION["fp32"]
    assert compare(noisy, logits, fp32)["passed"]
    assert not compare(noisy, logits, Tolerance(rtol=1e-4, atol=1e-5))["passed"]  # the element-wise rule as written
    assert compare(noisy, logits, fp32)["atol_used"] == pytest.approx(1e-5 * np.abs(logits).max())
    damaged = logits.copy()
    damaged[3, 17] += 0.5  # one wrong logit
    assert not compare(damaged, logits, fp32)["passed"]
    half = logits.astype(np.float16).astype(np.float64)  # fp16 rounding of the same output
    assert compare(half, logits, DEFAULT_VALIDATION["fp16"])["passed"]
    assert not compare(logits * 1.1, logits, DEFAULT_VALIDATION["fp16"])["passed"]


def test_top1_agreement_is_reported_and_can_judge_a_classifier_alone():
    from buildsys.builtin.validate import _describe, compare

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (40, 10))
    coarse = logits + rng.normal(0, 0.3, logits.shape)  # element-wise far off, decisions mostly kept
    agreement = float(np.mean(coarse.argmax(-1) == logits.argmax(-1)))
    result = compare(coarse, logits, Tolerance(min_top1=0.8))
    assert result["top1"] == pytest.approx(agreement) and result["passed"] == (agreement >= 0.8)
    assert not compare(coarse, logits, Tolerance(rtol=1e-2, atol=1e-2))["passed"]
    shuffled = rng.permutation(logits, axis=1)
    failed = compare(shuffled, logits, Tolerance(min_top1=0.8))
    assert not failed["passed"] and "top-1 agreement" in _describe(failed)
    assert "top1" not in compare(np.ones((4, 1)), np.ones((4, 1)), Tolerance(min_top1=1.0))  # no class axis


def test_rules_per_output_judge_each_output_and_unknown_names_are_a_manifest_error():
    from buildsys.builtin.validate import _check_output_names, judge_outputs
    from buildsys.errors import ManifestError

    rng = np.random.default_rng(2)
    logits, hidden = rng.normal(0, 3, (40, 10)), rng.normal(0, 1, (4, 16))
    coarse = logits + rng.normal(0, 0.05, logits.shape)  # decisions kept, elements off
    rule = {"rtol": 1e-4, "atol": 1e-5, "outputs": {"logits": {"min_top1": 0.9}}}
    assert judge_outputs([[coarse, hidden]], [[logits, hidden]], rule, ["logits", "hidden"])["passed"]
    assert not judge_outputs([[coarse, hidden]], [[logits, hidden]], rule)["passed"]  # no names: one rule for all
    assert not judge_outputs([[logits, hidden * 1.1]], [[logits, hidden]], rule, ["logits", "hidden"])["passed"]
    with pytest.raises(ManifestError) as info:
        _check_output_names(Tolerance(outputs={"logit": {"min_top1": 0.9}}), ["logits", "hidden"], "fp16")
    text = str(info.value)
    assert "validation.fp16.outputs names 'logit', not an output of the model (its outputs: logits, hidden)" in text
    assert "did you mean logits?" in text
