"""Start and stop a local ``tritonserver`` on a model repository: for tests and benchmarks.

The server is the one the ``nvidia-pytriton`` wheel ships (``pytriton/tritonserver``: the
binary, the python backend, a backend stub per Python version, shared libraries in
``nvidia_pytriton.libs``); it has no other backend, so only python-backend repositories load
in it. It listens on 127.0.0.1 only (HTTP, and gRPC when asked; metrics off), runs in its own
process group, and ``stop`` ends that group by its PID. The python backend gets a private
backend folder (the wheel's files linked, plus the stub for this Python), so nothing is written
into site-packages, and ``PYTHONPATH`` naming this interpreter's site-packages, which the
generated ``model.py`` applies (the stub's embedded interpreter ignores it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from buildsys import BackendUnavailable

INSTALL = "pip install --no-deps nvidia-pytriton==0.7.0  (scripts/setup.sh does)"
LOOPBACK = "127.0.0.1"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Installation:
    """Where the wheel put the server's pieces."""

    binary: Path
    backends: Path
    stubs: Path
    libs: Path

    @property
    def stub(self) -> Path:
        return self.stubs / f"{sys.version_info.major}.{sys.version_info.minor}" / "triton_python_backend_stub"


def find() -> Installation:
    """The installed server, or ``BackendUnavailable`` with the install command."""
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable("tritonserver is not installed (it comes with nvidia-pytriton)", hint=INSTALL)
    root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    found = Installation(root / "bin" / "tritonserver", root / "backends", root / "python_backend_stubs",
                         root.parent.parent / "nvidia_pytriton.libs")
    if not found.binary.is_file() or not found.stub.is_file():
        raise BackendUnavailable(f"nvidia-pytriton has no tritonserver or no python backend stub for Python "
                                 f"{sys.version_info.major}.{sys.version_info.minor} in {root}", hint=INSTALL)
    return found


@dataclass
class Server:
    """A running tritonserver; ``url`` is what ``tritonclient.http.InferenceServerClient`` takes."""

    process: subprocess.Popen
    http_port: int
    grpc_port: int | None
    log: Path
    workdir: Path
    owns_workdir: bool = False
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"{LOOPBACK}:{self.http_port}"

    def wait_ready(self, models: list[str], timeout: float = 120.0) -> None:
        """Wait until the server and every model in ``models`` are ready; raises with the log's tail if
        the server exits or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        paths = ["/v2/health/ready", *(f"/v2/models/{m}/ready" for m in models)]
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with {self.process.returncode}:\n{self.log_tail()}")
            if all(self._ok(path) for path in paths):
                return
            time.sleep(0.2)
        raise TimeoutError(f"tritonserver not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def _ok(self, path: str) -> bool:
        try:  # no proxy, whatever the environment says: the server is on loopback
            with _DIRECT.open(f"http://{self.url}{path}", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the server (it unloads its models, which stops their backend stubs), then
        SIGKILL to its whole process group, after ``timeout`` if it has not exited by then."""
        if self.stopped:
            return
        self.stopped = True
        try:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(self.process.pid)
        self.process.wait()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(repository: Path, workdir: Path | None = None, *, grpc: bool = False,
          installation: Installation | None = None) -> Server:
    """Start tritonserver on ``repository`` (loopback only, free ports); ``wait_ready`` next."""
    found = installation or find()
    owns = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="buildsys-triton-"))
    backends = private_backends(found, workdir / "backends")
    http_port, grpc_port = free_port(), free_port() if grpc else None
    command = [str(found.binary), f"--model-repository={Path(repository).resolve()}",
               f"--backend-directory={backends}", f"--http-address={LOOPBACK}", f"--http-port={http_port}",
               "--allow-metrics=false", "--exit-timeout-secs=5", "--log-verbose=0"]
    command += ([f"--grpc-address={LOOPBACK}", f"--grpc-port={grpc_port}"] if grpc else ["--allow-grpc=false"])
    log = workdir / "tritonserver.log"
    with open(log, "wb") as stream:
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=environment(found), start_new_session=True, cwd=workdir)
    return Server(process, http_port, grpc_port, log, workdir, owns)


def private_backends(found: Installation, folder: Path) -> Path:
    """A backend folder whose python backend has the stub for this Python, linked, not copied."""
    python = folder / "python"
    python.mkdir(parents=True, exist_ok=True)
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        _link(found.backends / "python" / name, python / name)
    _link(found.stub, python / "triton_python_backend_stub")
    return folder


def _link(source: Path, target: Path) -> None:
    if not target.exists():
        target.symlink_to(source)


def environment(found: Installation) -> dict[str, str]:
    """The server's environment: the wheel's libraries and this Python's libpython on the loader
    path, this interpreter's site-packages for the stub (applied by the generated model.py)."""
    env = dict(os.environ)
    libs = [str(found.libs), sysconfig.get_config_var("LIBDIR") or ""]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [*libs, env.get("LD_LIBRARY_PATH", "")]))
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(filter(None, [*paths, env.get("PYTHONPATH", "")])))
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _kill_group(pgid: int) -> None:
    """Kill what is left of the group (the server past its timeout, a stub it did not take down)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
