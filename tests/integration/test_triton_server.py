"""A built Triton repository served by a real tritonserver on 127.0.0.1, queried over HTTP.

The server is the one the ``nvidia-pytriton`` wheel ships (python backend only), started once
for the module on free loopback ports (metrics and gRPC off), in its own process group, and
stopped by PID. The repositories wrap a tiny torch MLP's ONNX graph and its torch.export
program, and the JAX example's StableHLO, with the python backend (``model.py`` ->
``buildsys.load``); answers at batch 1 and 4 are compared with the eager model (JAX: with the
validated StableHLO artifact, two outputs). Missing server software skips here and fails where ``CI`` or
``BUILDSYS_REQUIRE_TRITON`` is set (``scripts/setup.sh`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from buildsys import BackendUnavailable
from buildsys.testing import ProjectDir
from buildsys.testing.models import TINY_TORCH_FILES, tiny_torch_manifest

pytestmark = pytest.mark.triton

TARGETS = {
    "onnx": "{format: onnx}",
    "served": "{format: triton, from: onnx, options: {triton: {backend: python, model_name: tiny_onnx}}}",
    "exported": "{format: triton, options: {triton: {model_name: tiny_exported}}}",
}
MODELS = ("tiny_onnx", "tiny_exported")
REPO = Path(__file__).resolve().parents[2]
JAX = (REPO / "manifests" / "jax-mlp.yaml").read_text().replace(
    "  xla-host:  {format: xla.executable, from: stablehlo}",
    "  triton:    {format: triton, from: stablehlo, options: {triton: {model_name: jax_mlp}}}")


def require(ok: bool, what: str) -> None:
    if ok:
        return
    if os.environ.get("CI") or os.environ.get("BUILDSYS_REQUIRE_TRITON"):
        pytest.fail(f"{what}; CI (or BUILDSYS_REQUIRE_TRITON) runs every Triton test", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> ProjectDir:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    project = ProjectDir(tmp_path_factory.mktemp("triton-serve") / "project")
    project.manifest(tiny_torch_manifest(TARGETS), files=TINY_TORCH_FILES)
    project.cli("build", "manifest.yaml", "-j", "2").assert_ok()
    return project


@pytest.fixture(scope="module")
def jax_project(tmp_path_factory) -> ProjectDir:
    pytest.importorskip("jax")
    project = ProjectDir(tmp_path_factory.mktemp("triton-jax") / "project")
    shutil.copytree(REPO / "manifests" / "models", project.root / "models",
                    ignore=shutil.ignore_patterns("__pycache__", "minilm-calibration"))
    project.manifest(JAX)
    project.cli("build", "manifest.yaml", "-j", "2").assert_ok()
    return project


@pytest.fixture(scope="module")
def repository(project, jax_project, tmp_path_factory) -> Path:
    """Every model in one repository folder (Triton serves every model folder it finds)."""
    root = tmp_path_factory.mktemp("repository")
    for target, model in zip(("served", "exported"), MODELS):
        (root / model).symlink_to(project.target_dir("tiny", "1.0.0", target) / model)
    (root / "jax_mlp").symlink_to(jax_project.target_dir("jax-mlp", "1.0.0", "triton") / "jax_mlp")
    return root


@pytest.fixture(scope="module")
def installation():
    """The server and client software, checked before anything is built."""
    from buildsys_triton import server as triton

    try:
        found = triton.find()
    except BackendUnavailable as exc:
        require(False, str(exc))
    require(_has("tritonclient.http"), "tritonclient is not installed (pip install 'buildsys[triton]')")
    return found


@pytest.fixture(scope="module")
def server(installation, repository, tmp_path_factory):
    from buildsys_triton import server as triton

    running = triton.start(repository, tmp_path_factory.mktemp("tritonserver"), installation=installation)
    try:
        running.wait_ready([*MODELS, "jax_mlp"], timeout=180)
        yield running
    finally:
        running.stop()


def _has(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def eager(project: ProjectDir, x):
    """The source model's outputs, from the manifest's own entrypoint."""
    import torch

    sys.path.insert(0, str(project.root / "models"))
    try:
        import tiny
    finally:
        sys.path.pop(0)
    with torch.no_grad():
        return tiny.build().eval()(torch.from_numpy(x)).numpy()


def infer(server, model: str, x):
    import tritonclient.http as http

    client = http.InferenceServerClient(server.url)
    try:
        request = http.InferInput("x", list(x.shape), "FP32")
        request.set_data_from_numpy(x)
        return client.infer(model, [request], outputs=[http.InferRequestedOutput("output")]).as_numpy("output")
    finally:
        client.close()  # an open keep-alive connection holds the server's shutdown for its exit timeout


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("batch", [1, 4])
def test_the_served_model_answers_as_the_eager_model(server, project, model, batch):
    import numpy as np

    x = np.random.default_rng(batch).standard_normal((batch, 8)).astype(np.float32)
    got = infer(server, model, x)
    assert got.shape == (batch, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, eager(project, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 5])
def test_a_jax_stablehlo_model_answers_both_outputs_as_its_artifact(server, jax_project, batch):
    """JAX returns read-only arrays: model.py hands them to the stub writeable (DLPack refuses them)."""
    import numpy as np
    import tritonclient.http as http

    import buildsys

    x = np.random.default_rng(batch).standard_normal((batch, 32)).astype(np.float32)
    expected = buildsys.load(jax_project.target_dir("jax-mlp", "1.0.0", "stablehlo")).run({"features": x})
    client = http.InferenceServerClient(server.url)
    try:
        request = http.InferInput("features", [batch, 32], "FP32")
        request.set_data_from_numpy(x)
        answer = client.infer("jax_mlp", [request])
    finally:
        client.close()
    assert sorted(expected) == ["embedding", "logits"]
    for name, value in expected.items():
        np.testing.assert_allclose(answer.as_numpy(name), value, rtol=1e-5, atol=1e-6)


def test_the_server_reports_the_config_it_was_given(server):
    import tritonclient.http as http

    client = http.InferenceServerClient(server.url)
    config = client.get_model_config("tiny_onnx")
    client.close()
    assert config["backend"] == "python" and config["max_batch_size"] == 4
    assert [(i["name"], i["data_type"], i["dims"]) for i in config["input"]] == [("x", "TYPE_FP32", [8])]
    assert config["dynamic_batching"] is not None and config["instance_group"][0]["kind"] == "KIND_CPU"


def test_concurrent_requests_each_get_their_own_rows(server, project):
    """Requests arriving together may be grouped by the dynamic batcher (model.py then runs them
    as one call and splits the rows back); whether or not they were, each answer is its own."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    xs = [np.full((n, 8), float(n), np.float32) for n in (1, 2, 1, 3)]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda x: infer(server, "tiny_onnx", x), xs))
    for x, got in zip(xs, answers):
        np.testing.assert_allclose(got, eager(project, x), rtol=1e-4, atol=1e-5)


def test_a_wrong_input_is_a_clear_error_and_the_server_keeps_serving(server):
    import numpy as np
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    client = http.InferenceServerClient(server.url)
    request = http.InferInput("x", [1, 5], "FP32")
    request.set_data_from_numpy(np.zeros((1, 5), np.float32))
    with pytest.raises(InferenceServerException, match="unexpected shape for input 'x'"):
        client.infer("tiny_onnx", [request])
    client.close()
    assert infer(server, "tiny_onnx", np.zeros((1, 8), np.float32)).shape == (1, 4)


def test_it_listens_on_loopback_only_and_stops_by_pid(installation, repository, tmp_path):
    from buildsys_triton import server as triton

    running = triton.start(repository, tmp_path, installation=installation)
    try:
        running.wait_ready(list(MODELS), timeout=180)
        listening = _listening(running.process.pid)
        assert listening and all(address.startswith("127.0.0.1:") for address in listening), listening
        assert f"127.0.0.1:{running.http_port}" in listening
    finally:
        running.stop()
    assert running.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(running.process.pid, 0)  # the group is gone: no stub left behind


def _listening(pid: int) -> list[str]:
    """Local addresses of TCP sockets ``pid`` listens on (``ss``)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3].replace("[::ffff:", "").replace("]", "") for line in out.splitlines()
            if f"pid={pid}," in line]
