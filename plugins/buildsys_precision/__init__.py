"""Precision stages: explicit INT8 Q/DQ from calibration, fp16/bf16 lowering, INT8 checks.

TensorRT 11 has no implicit INT8 calibration and no FP16/INT8 builder flags: precision must be
in the ONNX graph before the engine builder. These stages put it there, so one calibrated graph
serves ONNX Runtime and TensorRT alike:

- ``onnx.int8``  onnx (fp32) -> onnx (int8): symmetric Q/DQ, calibrated by modelopt or ORT on
  the manifest's ``calibration:`` data (its digest is in the action key);
- ``onnx.fp16`` / ``onnx.bf16``  onnx (fp32) -> onnx (fp16 / bf16): modelopt AutoCast.

It also implements ``buildsys_validation_checks``: INT8 artifacts are checked for held-out
samples that are calibration samples, and for activations outside the calibrated ranges; and
``buildsys_compare_layers``: a reduced-precision ONNX graph compared with its fp32 graph layer by
layer (``layerwise.py``), which ``validate`` runs when such a target fails and ``buildsys debug``
on demand.
Built only on the public API; modelopt, onnx and onnxruntime are imported inside the stages.
"""

from __future__ import annotations

from buildsys import BuildsysError, Requirement, StageSpec, hookimpl

from .checks import int8_checks
from .auto import validation_note
from .lowering import needs_reference as lowering_reference
from .lowering import resolve as resolve_lowering
from .lowering import run_bf16, run_fp16
from .options import Int8Options, LowerOptions
from .quantize import needs_reference, resolve, run_int8

__version__ = "0.1.0"

# modelopt without its [onnx] extra (which would replace onnxruntime with an old
# onnxruntime-gpu): the few packages its ONNX path imports are listed in buildsys[precision].
_INSTALL = "pip install 'buildsys[precision]'"
MODELOPT = (Requirement("nvidia-modelopt", ">=0.40", install=_INSTALL),
            Requirement("onnx-graphsurgeon", install=_INSTALL), Requirement("onnx"),
            Requirement("onnxruntime", install=_INSTALL))


@hookimpl
def buildsys_register_stages():
    # int8 2, fp16/bf16 3: exclude: auto (the reference as a second input, a search over builds)
    return [
        StageSpec("onnx.int8", consumes=("onnx",), produces="onnx", precision="int8", run=run_int8, version=2,
                  options=Int8Options, resolve=resolve, requires=MODELOPT, primary="model.onnx",
                  reference=needs_reference,
                  description="explicit symmetric INT8 Q/DQ calibrated on calibration.data (modelopt or ORT)"),
        StageSpec("onnx.fp16", consumes=("onnx",), produces="onnx", precision="fp16", run=run_fp16, version=3,
                  options=LowerOptions, resolve=resolve_lowering, requires=MODELOPT, primary="model.onnx",
                  reference=lowering_reference,
                  description="fp16 lowering with modelopt AutoCast (fp32 I/O by default)"),
        StageSpec("onnx.bf16", consumes=("onnx",), produces="onnx", precision="bf16", run=run_bf16, version=3,
                  options=LowerOptions, resolve=resolve_lowering, requires=MODELOPT, primary="model.onnx",
                  reference=lowering_reference,
                  description="bf16 lowering with modelopt AutoCast (for TensorRT / GPUs)"),
    ]


@hookimpl
def buildsys_worker_reset():
    """A pooled worker in which modelopt quantized is retired: its quantize patches ONNX
    Runtime's calibrators for the rest of the process, and the next ``onnx.int8`` there computed
    no ranges at all (an "int8" graph without a Q/DQ node, measured: the second of two int8
    targets in one build)."""
    import sys

    calibrate = sys.modules.get("onnxruntime.quantization.calibrate")
    patched = getattr(getattr(calibrate, "create_calibrator", None), "__module__", "") or ""
    if patched.startswith("modelopt"):
        raise RuntimeError("modelopt patched ONNX Runtime's calibrators in this worker (onnx.int8); "
                           "retiring it so the next calibration runs on the originals")


@hookimpl
def buildsys_validation_checks(artifact, samples, expected, names):
    check, line = int8_checks(artifact, samples, names), validation_note(artifact)
    if line is None:
        return check
    check = check or {"check": "exclude-auto", "passed": True, "warnings": []}
    return dict(check, warnings=check["warnings"] + [line])  # a failed search says the best it got


@hookimpl
def buildsys_compare_layers(artifact, baseline, samples, names, root):
    if artifact.kind != "onnx" or baseline is None or baseline.kind != "onnx":
        return None
    from .layerwise import compare

    try:
        return compare(artifact, baseline, samples, artifact.meta.get("input_names") or names["inputs"], root)
    except Exception as exc:  # ONNX Runtime refusing the graph (bf16 has no CPU kernels)
        raise BuildsysError(f"ONNX Runtime (CPU) cannot run the {artifact.precision} graph layer by layer: "
                            f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}",
                            hint="bf16 graphs run on TensorRT and GPUs, not on ONNX Runtime's CPU provider"
                            if artifact.precision == "bf16" else None) from None
