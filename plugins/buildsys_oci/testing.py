"""Start Debian's ``docker-registry`` (CNCF Distribution, OCI Distribution API) on 127.0.0.1,
for tests and benchmarks: a config in a temp folder, filesystem storage, a free port.

    with LocalOciRegistry(tmp_path) as server:
        url = f"oci://{server.address}/models/demo"

``htpasswd`` (a line ``user:$2y$...bcrypt``) turns on basic authentication. The server is
stopped by the process id this module started it with.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARY = "docker-registry"
INSTALL = "apt-get install -y docker-registry"


def find_binary() -> str | None:
    return shutil.which(BINARY) or next(
        (p for p in ("/usr/bin/docker-registry", "/usr/sbin/docker-registry") if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalOciRegistry:
    """One ``docker-registry`` process listening on 127.0.0.1 only."""

    def __init__(self, root: Path, htpasswd: str | None = None):
        self.root = Path(root)
        self.htpasswd = htpasswd
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        """Where the registry keeps blobs: ``docker/registry/v2/blobs/sha256/<ab>/<hex>/data``."""
        return self.root / "storage"

    def blob_path(self, digest: str) -> Path:
        algorithm, hexdigest = digest.split(":", 1)
        return self.storage / "docker/registry/v2/blobs" / algorithm / hexdigest[:2] / hexdigest / "data"

    def start(self, timeout: float = 15) -> LocalOciRegistry:
        binary = find_binary()
        if binary is None:
            raise FileNotFoundError(f"{BINARY} is not installed ({INSTALL})")
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        config = self.root / "config.json"  # YAML is a superset of JSON
        config.write_text(json.dumps(self._config()))
        log = open(self.root / "registry.log", "ab")
        self.process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait(timeout)
        return self

    def _config(self) -> dict:
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
            "http": {"addr": self.address, "secret": "buildsys-local-test-registry"},
        }
        if self.htpasswd:
            (self.root / "htpasswd").write_text(self.htpasswd.strip() + "\n")
            config["auth"] = {"htpasswd": {"realm": "buildsys-test", "path": str(self.root / "htpasswd")}}
        return config

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{BINARY} exited with {self.process.returncode}: {self.log_tail()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{BINARY} did not listen on {self.address} within {timeout} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.root / "registry.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LocalOciRegistry:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
