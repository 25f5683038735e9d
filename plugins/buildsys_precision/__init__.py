"""Precision stages: INT8 Q/DQ calibration, fp16/bf16 lowering (work in progress)."""
