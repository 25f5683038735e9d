"""Validation checks of INT8 artifacts (the ``buildsys_validation_checks`` hook).

Accuracy on held-out samples is only meaningful if they are not the calibration samples, and
an INT8 graph only holds up where the served activations fall inside the calibrated ranges
(calibrating on short sequences and serving long ones is the classic failure). Both are checked
on the reference samples the validate stage runs the artifact on.
"""

from __future__ import annotations

import json

from . import calibration, qdq
from .quantize import RANGES


def int8_checks(artifact, samples, names) -> dict | None:
    """The ``int8-calibration`` check, or None for artifacts that were not calibrated here."""
    cal = artifact.meta.get("calibration")
    if artifact.kind != "onnx" or not cal or RANGES not in artifact.files:
        return None
    axes = cal.get("sample_axes")  # recorded since the batch axis may be other than 0
    held_out = {d for sample in samples for d in calibration.row_digests(list(sample), axes)}
    overlap = held_out & set(cal.get("sample_digests", []))
    warnings = []
    if overlap:
        warnings.append(f"{len(overlap)} of {len(held_out)} held-out sample(s) are calibration samples: accuracy "
                        "measured on them says nothing about unseen data; give model.samples data distinct "
                        "from calibration.data")
    rows = _coverage(artifact, samples, names)
    bad = qdq.outliers(rows, cal["method"])
    if bad:
        warnings.append(f"held-out activations fall outside the calibrated ranges at {len(bad)} of {len(rows)} "
                        f"quantized input(s); worst: " + "; ".join(qdq.describe(r) for r in bad[:3]) +
                        " — calibrate on data like what is served (e.g. the longest sequences)")
    return {"check": "int8-calibration", "passed": not overlap, "warnings": warnings,
            "details": {"held_out_samples": len(held_out), "overlap_with_calibration": len(overlap),
                        "activations_checked": len(rows), "outside_range": [_short(r) for r in bad[:20]]}}


def _coverage(artifact, samples, names) -> list[dict]:
    ranges = json.loads(artifact.files[RANGES].read_text())
    graph_inputs = artifact.meta.get("input_names") or names["inputs"]
    feeds = [dict(zip(graph_inputs, sample)) for sample in samples]
    observed = qdq.observe(artifact.primary, sorted(ranges), feeds)
    return qdq.coverage(ranges, observed)


def _short(row: dict) -> dict:
    return {"tensor": row["tensor"], "layer": (row["consumers"] or [""])[0], "ratio": round(row["ratio"], 3),
            "clipped": round(row["clipped"], 5)}
