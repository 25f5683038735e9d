"""A real two-node Ray cluster on 127.0.0.1 for the Ray executor's tests and bench.

Both nodes are processes of this machine, each declaring a different simulated GPU (a custom
resource named after the hardware tag, plus ``num_gpus``). Ray binds to the host's address
unless told otherwise: the nodes are started with ``node_ip_address="127.0.0.1"`` and the
environment the DESIGN notes prescribe, in a private temp dir; ``listeners()`` reads ``ss -ltnp``
for every Ray process (and its children) so a test can check that nothing listens elsewhere.
Stopped by process id: ``Cluster.shutdown`` first, then any survivor is killed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "disabled"}


class LoopbackRayCluster:
    """``with LoopbackRayCluster([{"cuda-sm80": 1}, {"cuda-sm90": 1}]) as cluster: ...``

    ``nodes`` lists each node's custom resources (the first is the head). ``env`` is what a
    ``buildsys`` subprocess needs to reach it; ``node_ids[i]`` is node i's Ray node id."""

    def __init__(self, nodes: list[dict], num_cpus: int = 2, num_gpus: int = 1):
        self.spec, self.num_cpus, self.num_gpus = nodes, num_cpus, num_gpus
        self.tmp = Path(tempfile.mkdtemp(prefix="bs-ray-", dir="/tmp"))  # short: Ray's socket paths
        self.env = dict(RAY_ENV, RAY_TMPDIR=str(self.tmp),
                        PYTHONPATH=os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p))
        self.cluster = None
        self.node_ids: list[str] = []
        self._saved_env: dict[str, str | None] = {}

    def __enter__(self) -> LoopbackRayCluster:
        (self.tmp / "ray").mkdir()
        for key, value in self.env.items():  # the Ray processes inherit this process's environment
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        from ray.cluster_utils import Cluster

        common = {"node_ip_address": "127.0.0.1", "num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        self.cluster = Cluster(initialize_head=True, shutdown_at_exit=False,
                               head_node_args=dict(common, resources=self.spec[0], include_dashboard=False))
        for resources in self.spec[1:]:
            self.cluster.add_node(**common, resources=resources)
        self.node_ids = [node.node_id for node in self.cluster.list_all_nodes()]

    @property
    def address(self) -> str:
        return self.cluster.address

    def ray_pids(self) -> set[int]:
        """Every process of the cluster: the nodes' services and all their descendants (workers)."""
        roots = {info.process.pid for node in self.cluster.list_all_nodes()
                 for infos in node.all_processes.values() for info in infos}
        return roots | descendants(roots)

    def listeners(self, extra_pids: set[int] = frozenset()) -> list[tuple[str, str]]:
        """``(address, process)`` of every TCP listener of the cluster's processes (and ``extra_pids``)."""
        pids = self.ray_pids() | set(extra_pids) | descendants(set(extra_pids))
        found = []
        for line in subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout.splitlines():
            owners = {int(p) for p in re.findall(r"pid=(\d+),", line)}
            if owners & pids:
                found.append((line.split()[3], re.findall(r'\(\("([^"]+)"', line)[0]))
        return found

    def __exit__(self, *exc) -> None:
        pids = self.ray_pids() if self.cluster is not None else set()
        try:
            if self.cluster is not None:
                self.cluster.shutdown()
        finally:
            _kill_survivors(pids)
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            shutil.rmtree(self.tmp, ignore_errors=True)


def descendants(roots: set[int]) -> set[int]:
    """Every process whose ancestry reaches ``roots`` (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), set(roots)
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _kill_survivors(pids: set[int], grace: float = 5.0) -> None:
    deadline = time.monotonic() + grace
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
