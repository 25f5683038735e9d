"""Activation ranges from the calibration data, computed once and applied by either quantizer.

ONNX Runtime's calibrators do the statistics (max, entropy, percentile), but
``quantize_static`` builds its entropy calibrator with 128 histogram bins and 128 quantized bins,
which leaves a single candidate threshold: the full range, i.e. max calibration (modelopt calls
the same function, so its ``entropy`` was ``max`` too). Here the calibrator is made directly,
with 2048 bins searched for the 128-bin quantization that loses the least information (KL
divergence), and the resulting ranges are handed to the quantizers as a calibration cache:

- ``ort``: ONNX Runtime's own cache format (``quantize_static(calibration_cache_path=...)``
  reuses it instead of calibrating again);
- ``modelopt``: TensorRT's calibration-cache text format (one float32 scale per tensor), which
  modelopt writes into the Q/DQ scales after placing them.

The TensorRT-format file ships in the artifact (``calibration.cache``), so an engine builder that
wants the ranges can have them.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

QMAX = 127.0
ENTROPY_BINS = 2048  # histogram bins searched
QUANTIZED_BINS = 128  # int8 magnitude levels the threshold is chosen for


def compute(model: Path, batches: list[dict], block: dict, op_types: list[str]):
    """ORT ``TensorsData`` for the inputs/outputs of ``op_types`` nodes, by ``block['method']``."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(batches)

        def get_next(self):
            return next(self._batches, None)

    method = block["method"]
    extra = {"symmetric": True}
    if method == "entropy":
        extra.update(num_bins=ENTROPY_BINS, num_quantized_bins=QUANTIZED_BINS)
    if method == "percentile":
        extra.update(num_bins=ENTROPY_BINS, percentile=block["percentile"])
    calibrate_method = {"max": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                        "percentile": CalibrationMethod.Percentile}[method]
    with tempfile.TemporaryDirectory(prefix="buildsys-calibrate-") as tmp:
        calibrator = create_calibrator(Path(model), op_types, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=calibrate_method, extra_options=extra)
        calibrator.collect_data(Reader())
        data = calibrator.compute_data()
        del calibrator  # its ORT session holds the augmented model open
    return data


def amax(data) -> dict[str, float]:
    """Symmetric range (max |threshold|) per tensor."""
    import numpy as np

    out = {}
    for name in data:
        low, high = data[name].range_value  # numpy scalars or 1-element arrays, by ORT version
        out[name] = float(max(np.max(np.abs(low)), np.max(np.abs(high))))
    return out


def write_ort_cache(data, path: Path) -> None:
    from onnxruntime.quantization.calibrate import save_tensors_data

    save_tensors_data(data, path)


def write_trt_cache(ranges: dict[str, float], path: Path) -> None:
    """TensorRT calibration-cache text: a header line, then ``tensor: <float32 scale, hex>``."""
    lines = ["TRT-8501-EntropyCalibration2"]
    for name in sorted(ranges):
        scale = max(ranges[name], 1e-12) / QMAX
        lines.append(f"{name}: {struct.pack('!f', scale).hex()}")
    Path(path).write_text("\n".join(lines) + "\n")
