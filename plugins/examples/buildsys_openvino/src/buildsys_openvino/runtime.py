"""The OpenVINO runtime: the runner for ``openvino.ir`` and how an IR pair is read."""

from __future__ import annotations

from buildsys import BackendUnavailable, Requirement

OPENVINO = Requirement("openvino", ">=2024.0", "pip install 'openvino>=2024.0'")


def openvino_version() -> str | None:
    """The installed openvino distribution's version, without importing it (read once per process)."""
    return OPENVINO.installed_version()


def read_ir(core, artifact):
    """The IR of an input artifact. Weights are named explicitly: once materialised, the
    primary file is renamed wheel-style and no longer shares its stem with ``model.bin``."""
    weights = artifact.files.get(artifact.meta.get("weights", "model.bin"))
    return core.read_model(str(artifact.primary), str(weights)) if weights else core.read_model(str(artifact.primary))


def load_runner(artifact, device: str):
    """A callable running the IR on the CPU plugin: list of numpy arrays in, list out.

    Inference runs in f32 whatever the CPU: on CPUs with bf16 or AMX units OpenVINO would
    otherwise default to bf16, a precision the artifact was not built or validated for.
    """
    import openvino as ov

    if device != "cpu":
        raise BackendUnavailable(f"the OpenVINO runner here runs on the CPU only, not '{device}'",
                                 hint="validate on the CPU (OpenVINO's GPU plugin is for Intel GPUs)")
    core = ov.Core()
    compiled = core.compile_model(read_ir(core, artifact), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    outputs = list(compiled.outputs)

    def run(arrays):
        results = compiled(list(arrays))
        return [results[output] for output in outputs]

    run.device = "CPU"
    return run
