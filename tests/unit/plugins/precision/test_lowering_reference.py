"""onnx.fp16 / onnx.bf16 ``reference``: which inputs AutoCast runs the fp32 graph on (planning only)."""

from __future__ import annotations

import pytest
from buildsys_precision.lowering import resolve
from buildsys_precision.options import LowerOptions

from buildsys import PlanContext


def test_random_reference_is_left_as_it_is():
    options = LowerOptions()
    assert resolve(options, PlanContext()) is options and options.calibration is None


def test_calibration_reference_needs_the_block_and_records_its_data_digest(tmp_path):
    with pytest.raises(ValueError, match="reference: calibration needs a 'calibration:' block"):
        resolve(LowerOptions(reference="calibration"), PlanContext())
    (tmp_path / "batches").mkdir()
    (tmp_path / "batches" / "b0.npz").write_bytes(b"first")
    block = {"data": "batches", "samples": 8, "method": "max"}
    first = resolve(LowerOptions(reference="calibration"), PlanContext(calibration=block, root=tmp_path))
    assert first.calibration["data"] == "batches" and first.calibration["digest"]
    (tmp_path / "batches" / "b0.npz").write_bytes(b"other data")
    again = resolve(LowerOptions(reference="calibration"), PlanContext(calibration=block, root=tmp_path))
    assert again.calibration["digest"] != first.calibration["digest"]  # new data: a new action key
