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
