"""The ``triton`` kind's runner: runs what a repository serves, the way its backend would.

For validation and ``buildsys.load``: a python-backend repository runs its wrapped artifact
through ``buildsys.load``, as its ``model.py`` does inside Triton; an ``onnxruntime_onnx`` one
runs its ``model.onnx`` in ONNX Runtime (the CUDA provider on a GPU when present). A
``tensorrt_plan`` repository runs only in Triton on a GPU, like its engine. Inputs and outputs
are taken in the repository config's order, which is the manifest's.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import BackendUnavailable

from .stage import VERSION_FOLDER


def load_runner(artifact, device: str):
    meta = artifact.meta
    version = Path(artifact.directory) / meta["model_name"] / VERSION_FOLDER
    inputs = [i["name"] for i in meta["config"]["input"]]
    outputs = [o["name"] for o in meta["config"].get("output", [])] or list(meta.get("output_names") or [])
    if meta.get("backend") == "python":
        return _wrapped(version / "artifact", device, inputs)
    if meta.get("platform") == "onnxruntime_onnx":
        return _onnxruntime(version / "model.onnx", device, inputs, outputs)
    raise BackendUnavailable(f"a {meta.get('platform')} repository runs only in Triton, on a GPU its engine "
                             "was built for", hint="serve it with tritonserver on that GPU")


def _wrapped(folder: Path, device: str, inputs: list[str]):
    import buildsys

    session = buildsys.load(folder, device=device)
    names = [o.name for o in session.outputs]

    def run(arrays):
        answer = session.run(dict(zip(inputs, arrays)))
        return [answer[name] for name in names]

    run.notes = list(session.notes)
    return run


def _onnxruntime(path: Path, device: str, inputs: list[str], outputs: list[str]):
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailable("onnxruntime is not installed", hint="pip install 'buildsys[onnx]'") from None
    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=providers)

    def run(arrays):
        return session.run(outputs or None, dict(zip(inputs, arrays)))

    run.providers = session.get_providers()
    return run
