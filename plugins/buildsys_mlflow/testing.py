"""Start a real ``mlflow server`` on 127.0.0.1, for tests and benchmarks.

    with LocalMlflowServer(tmp_path, auth=("admin", "a-password")) as server:
        url = server.url    # mlflow+http://127.0.0.1:PORT

A sqlite backend store and a local artifacts destination in ``root``, served through the
tracking server (proxied artifacts), one worker, telemetry and job execution off. ``auth``
turns on MLflow's basic-auth app with that admin user: it checks the password hash on every
request, which costs about 0.25 s each on a small machine. The first start takes 10-30 s. The
server is stopped through the process group this module started it in.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

INSTALL = "pip install 'buildsys[mlflow]' 'mlflow[auth]'"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalMlflowServer:
    """One ``mlflow server`` process group listening on 127.0.0.1 only."""

    def __init__(self, root: Path, auth: tuple[str, str] | None = None):
        self.root = Path(root)
        self.auth = auth
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"mlflow+http://{self.address}"

    @property
    def artifacts(self) -> Path:
        """The artifacts destination: ``<experiment id>/models/<model id>/artifacts/<file>``."""
        return self.root / "artifacts"

    def env(self) -> dict[str, str]:
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        if self.auth:
            config = self.root / "basic_auth.ini"
            config.write_text("[mlflow]\ndefault_permission = READ\n"
                              f"database_uri = sqlite:///{self.root / 'auth.db'}\n"
                              f"admin_username = {self.auth[0]}\nadmin_password = {self.auth[1]}\n"
                              "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
            env |= {"MLFLOW_AUTH_CONFIG_PATH": str(config),
                    "MLFLOW_FLASK_SERVER_SECRET_KEY": "buildsys-local-test"}
        return env

    def start(self, timeout: float = 120) -> LocalMlflowServer:
        return self.launch().wait(timeout)

    def launch(self) -> LocalMlflowServer:
        """Start the process and return at once (``wait`` for it): servers can start side by side."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", "1", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                   "--artifacts-destination", str(self.artifacts)]
        if self.auth:
            command += ["--app-name", "basic-auth"]
        log = open(self.root / "server.log", "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                        env=self.env(), cwd=self.root, start_new_session=True)
        return self

    def wait(self, timeout: float = 120) -> LocalMlflowServer:
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.address}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"mlflow server did not answer on {self.address} within {timeout} s:\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.root / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the process group this server was started in (its uvicorn worker included)."""
        if self.process is None or self.process.poll() is not None:
            return
        group = self.process.pid  # start_new_session: the group id is our child's pid
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever of the group is left (a worker that outlived its parent)
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def __enter__(self) -> LocalMlflowServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
