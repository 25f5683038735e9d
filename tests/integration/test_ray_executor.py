"""The Ray executor against a real two-node Ray cluster on 127.0.0.1 (``ray_cluster.py``).

Node 0 (the head) declares a simulated A100 (``cuda-sm80``), node 1 a simulated H100
(``cuda-sm90``); both declare this host's CPU tag and one GPU. The stages come from the text
plugin and ``fixture_plugins.sim_gpu`` (``sim.build`` must run on its target's GPU). Every
build is the real CLI in a subprocess; artifacts travel through a ``file://`` shared store.
The cluster is started once for the module (Ray nodes take seconds to start) and stopped by
process id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from buildsys import SharedStore, load_manifest, plugins
from buildsys.cache import Store
from buildsys.errors import CacheError
from buildsys.hardware import Host
from buildsys.plan import OfferedHardware, plan
from buildsys.plugins import Catalog
from buildsys.testing import ExecutorContract
from buildsys_ray import placement
from buildsys_ray.executor import RayExecutor
from ray_cluster import LoopbackRayCluster, alive

CPU_TAG = str(Host.basic().cpu_tag)
PLUGIN = ("-p", "fixture_plugins.sim_gpu")
MODEL = "  Hello, world.\n  Bonjour le monde\n"


def manifest(targets: str) -> str:
    return ("schema: 1\nname: demo\nversion: 1.0.0\nmodel: {framework: text, entrypoint: model.txt}\n"
            f"targets:\n{targets}")


def gpu_targets(sm80: str = "seconds: 1.5", sm90: str = "seconds: 1.5") -> str:
    return ("  normalized: {format: text}\n"
            f"  sm80: {{format: sim.engine, hardware: a100, options: {{sim.build: {{{sm80}}}}}}}\n"
            f"  sm90: {{format: sim.engine, hardware: h100, options: {{sim.build: {{{sm90}}}}}}}\n")


@pytest.fixture(scope="module")
def cluster():
    with LoopbackRayCluster([{"cuda-sm80": 1, CPU_TAG: 2}, {"cuda-sm90": 1, CPU_TAG: 2}]) as running:
        yield running


@pytest.fixture
def project(buildsys_project, cluster):
    buildsys_project.write("model.txt", MODEL)
    buildsys_project.env.update(cluster.env)
    return buildsys_project


def ray_args(cluster, store: Path, *args: str) -> list[str]:
    return [*PLUGIN, "build", "manifest.yaml", "--executor", "ray", "--address", cluster.address,
            "--store", f"file://{store}", *args]


def record(project, target: str) -> dict:
    return json.loads((project.target_dir("demo", "1.0.0", target) / "artifact.json").read_text())


def start(project, cluster, store: Path, *args: str) -> subprocess.Popen:
    """A Ray build in the background, in its own session (so a test can signal it like a terminal)."""
    return subprocess.Popen([sys.executable, "-m", "buildsys", *ray_args(cluster, store, "--json", *args)],
                            cwd=project.root, env={**os.environ, **project.env}, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        if proc.poll() is not None:
            pytest.fail(f"build exited {proc.returncode} before the stage ran:\n{proc.communicate()[1]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{path} did not appear within {timeout}s")


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


# -- placement (pure) ----------------------------------------------------------------------


def test_hardware_tags_become_ray_resources():
    assert placement.demand_for(None).ray_options() == {"resources": {}, "num_gpus": 0, "num_cpus": 1}
    sm = placement.demand_for("cuda-sm86.sm89", num_cpus=2)
    assert sm.ray_options() == {"resources": {"cuda-sm86": 1.0, "cuda-sm89": 1.0}, "num_gpus": 1, "num_cpus": 2}
    assert placement.demand_for("cpu-x86_64-avx512").ray_options()["resources"] == {"cpu-x86_64-avx512": 1.0}
    nodes = [{"Alive": True, "Resources": {"CPU": 2, "GPU": 1, "cuda-sm86": 1}},
             {"Alive": False, "Resources": {"CPU": 2, "GPU": 1, "cuda-sm86": 1, "cuda-sm89": 1}}]
    assert placement.unmet({"a": sm, "b": placement.demand_for("cuda-sm86")}, nodes) == {sm: ["a"]}
    assert "--resources '{\"cuda-sm86\": N, \"cuda-sm89\": N}'" in placement.start_command(sm, "h:6379")


def test_planner_plans_the_hardware_the_executor_provides(tmp_path):
    path = tmp_path / "m.yaml"
    (tmp_path / "model.txt").write_text(MODEL)
    path.write_text(manifest("  gpu: {format: text.bin, hardware: h100}\n  cpu: {format: text.bin, hardware: cpu}\n"
                             "  aot: {format: text.pack, hardware: l4}\n  txt: {format: text}\n"))
    specs, host = Catalog.collect(plugins.load()), Host(arch="x86_64", isa="avx2")
    assert "gpu" in plan(load_manifest(path), specs, host).refused  # the local executor: refused
    graph = plan(load_manifest(path), specs, OfferedHardware(host, RayExecutor().provides))
    runs_on = {t: graph.nodes[n].runs_on for t, n in graph.targets.items()}
    assert runs_on == {"gpu": "cuda-sm90", "cpu": "cpu-x86_64-avx2", "aot": None, "txt": None}
    assert all(n.runs_on is None for n in graph.nodes.values() if n.stage == "text.normalize")


def test_plan_command_plans_for_the_executors_hardware(buildsys_project):
    """``buildsys plan --executor ray`` shows what the cluster will build (no cluster contacted)."""
    buildsys_project.write("model.txt", MODEL)
    buildsys_project.manifest(manifest("  gpu: {format: text.bin, hardware: h100}\n"))
    local = buildsys_project.cli("plan", "manifest.yaml")
    assert local.exit_code == 3 and "target 'gpu' needs cuda-sm90, the host has none" in local.stdout
    ray = buildsys_project.cli("plan", "manifest.yaml", "--executor", "ray", "--address", "127.0.0.1:1")
    assert ray.exit_code == 0, ray.stderr
    assert "will build text.compile#" in ray.stdout and "cuda-sm90" in ray.stdout and "0 refused" in ray.stdout


def test_shared_store_serves_entries_verified(tmp_path):
    shared = SharedStore(f"file://{tmp_path / 'shared'}")
    work = tmp_path / "work"
    work.mkdir()
    (work / "out.txt").write_text("payload")
    built = Store(tmp_path / "a", shared).commit("k" * 64, work, {"primary": "out.txt"}, 1.0)
    [blob] = built.files
    assert shared.has_blob(blob.sha256, blob.size) and shared.blob_uri(blob.sha256).startswith("file://")
    fetched = Store(tmp_path / "b", shared).lookup("k" * 64)  # another machine: a local miss, a shared hit
    assert fetched == built and (tmp_path / "b" / "cas" / blob.sha256[:2] / blob.sha256).read_text() == "payload"
    damaged = tmp_path / "shared" / "cas" / blob.sha256[:2] / blob.sha256
    damaged.write_text("PAYLOAD")
    with pytest.raises(CacheError, match="is damaged"):
        Store(tmp_path / "c", shared).lookup("k" * 64)
    assert not (tmp_path / "c" / "cas").exists() and not list((tmp_path / "c" / "tmp").glob("*"))  # nothing kept


# -- against the cluster -------------------------------------------------------------------


def test_hardware_nodes_land_on_their_ray_node_overlap_and_build_once(project, cluster, tmp_path):
    project.manifest(manifest(gpu_targets()))
    refused = project.cli(*PLUGIN, "build", "manifest.yaml")  # this host has no GPU: the planner refuses
    refused.assert_error(3, "needs cuda-sm80", "use an executor that has one")

    store, progress = tmp_path / "shared", tmp_path / "progress.jsonl"
    first = project.cli(*ray_args(cluster, store), env={"BUILDSYS_TEST_PROGRESS": str(progress)}).assert_ok()
    first.assert_nodes(built=["text.normalize", "sim.build", "sim.build"], failed=0)
    reports = [json.loads(line) for line in progress.read_text().splitlines()]
    # ctx.progress on the Ray nodes reached the driver's hooks, for both sim.build nodes
    assert {r["node"] for r in reports} == {n for n in first.nodes("built") if n.startswith("sim.build")}, reports
    sm80, sm90 = record(project, "sm80"), record(project, "sm90")
    assert sm80["host"]["facts"]["built_on"]["ray_node_id"] == cluster.node_ids[0]  # the cuda-sm80 node
    assert sm90["host"]["facts"]["built_on"]["ray_node_id"] == cluster.node_ids[1]  # the cuda-sm90 node
    assert sm80["hardware"] == "cuda-sm80" and sm90["hardware"] == "cuda-sm90"
    assert sm80["meta"]["cuda_visible_devices"] == "0"  # Ray gave the task the node's (simulated) GPU
    # independent nodes ran at the same time on the two machines
    assert max(sm80["meta"]["started"], sm90["meta"]["started"]) < min(sm80["meta"]["finished"], sm90["meta"]["finished"])

    # a fresh machine (empty local cache) on the same shared store builds nothing, anywhere
    fresh = {"BUILDSYS_OUT": str(tmp_path / "out2"), "BUILDSYS_CACHE_DIR": str(tmp_path / "cache2")}
    again = project.cli(*ray_args(cluster, store), env=fresh).assert_ok()
    again.assert_nodes(built=0, cached=3)
    assert again.summary["lock_changed"] is False


def test_lockfile_equals_the_local_executors(project, cluster, tmp_path):
    targets = ("  normalized: {format: text}\n  lowercase: {format: text, options: {text.normalize: {lowercase: true}}}\n"
               "  ascii: {format: text, precision: int8}\n  stats: {format: text.stats}\n"
               "  native: {format: text.bin, hardware: cpu}\n  rtx-pack: {format: text.pack, hardware: [sm86, sm89]}\n")
    project.manifest(manifest(targets))
    local = project.root.parent / "local"
    local.mkdir()
    for name in ("manifest.yaml", "model.txt"):
        (local / name).write_text((project.root / name).read_text())
    env = {"BUILDSYS_OUT": str(local / "artifacts"), "BUILDSYS_CACHE_DIR": str(local / "artifacts" / ".cache")}
    subprocess.run([sys.executable, "-m", "buildsys", *PLUGIN, "build", "manifest.yaml", "-j", "2"], cwd=local,
                   env={**os.environ, **project.env, **env}, check=True, capture_output=True)

    project.cli(*ray_args(cluster, tmp_path / "shared")).assert_ok().assert_nodes(built=6, failed=0)
    ray_lock, local_lock = tomllib.loads(project.lock().read_text()), tomllib.loads((local / "manifest.lock").read_text())
    assert ray_lock["nodes"] == local_lock["nodes"], "same actions, same outputs"
    # a target's artifact digest covers its artifact.json, which names the Ray node that built it
    assert without_digests(ray_lock) == without_digests(local_lock)
    assert ray_lock["targets"]["native"]["digest"] != local_lock["targets"]["native"]["digest"]
    assert record(project, "native")["host"]["facts"]["built_on"]["ray_node_id"] in cluster.node_ids
    project.cli("verify", "manifest.yaml").assert_ok()


def without_digests(lock: dict) -> dict:
    return dict(lock, targets={name: {k: v for k, v in t.items() if k != "digest"} for name, t in lock["targets"].items()})


def test_cluster_without_the_hardware_fails_before_anything_starts(project, cluster, tmp_path):
    project.manifest(manifest("  normalized: {format: text}\n  b200: {format: sim.engine, hardware: b200}\n"))
    result = project.cli(*ray_args(cluster, tmp_path / "shared"))
    result.assert_error(3, "has no node with: cuda-sm100 + 1 GPU", "targets: b200", "cuda-sm80, cuda-sm90",
                        "ray start --address", "'{\"cuda-sm100\": N}'")
    assert not project.lock().exists() and not (project.out / "demo").exists()
    assert not list((project.cache / "ac").glob("*/*")) and not (tmp_path / "shared" / "ac").exists()


def test_a_dead_worker_fails_only_its_node(project, cluster, tmp_path):
    pid_file = tmp_path / "sm90.pid"
    project.manifest(manifest(gpu_targets(sm90=f"seconds: 60, pid_file: '{pid_file}'")
                              + "  stats: {format: text.stats, options: {text.wordcount: {crash: segv}}}\n"))
    proc = start(project, cluster, tmp_path / "shared", "--keep-going")
    try:
        pids = wait_for_file(pid_file, proc)
        os.kill(pids["ppid"], signal.SIGKILL)  # the Ray worker running the sm90 task, as the OOM killer would
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr
    nodes = json.loads(stdout)["result"]["nodes"]
    failed = {n: o["error"] for n, o in nodes.items() if o["status"] == "failed"}
    assert sorted(n.split("#")[0] for n in failed) == ["sim.build", "text.wordcount"], stderr
    assert [n.split("#")[0] for n, o in nodes.items() if o["status"] == "built"].count("sim.build") == 1
    died, segv = sorted(failed.values(), key=lambda e: "SIGSEGV" in e)
    assert "Ray task failed on host" in died and cluster.node_ids[1][:12] in died and "WorkerCrashedError" in died
    assert "died with SIGSEGV" in segv and "on host" in segv
    assert wait_gone(pids["pid"]), "the stage process outlived its Ray worker"
    lock = tomllib.loads(project.lock().read_text())
    assert sorted(lock["targets"]) == ["normalized", "sm80"]


def test_ctrl_c_cancels_the_ray_tasks_and_everything_listens_on_loopback(project, cluster, tmp_path):
    pid_file = tmp_path / "sm90.pid"
    project.manifest(manifest(gpu_targets(sm90=f"seconds: 60, pid_file: '{pid_file}'")))
    proc = start(project, cluster, tmp_path / "shared")
    try:
        pids = wait_for_file(pid_file, proc)
        listeners = cluster.listeners(extra_pids={proc.pid})
        assert {"gcs_server", "raylet"} <= {name for _, name in listeners}
        assert all(addr.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]") for addr, _ in listeners), listeners
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert wait_gone(pids["pid"]), "the cancelled stage kept running on its Ray node"
    assert not project.lock().exists() or "sm90" not in tomllib.loads(project.lock().read_text())["targets"]
    assert not list((project.cache / "tmp").glob("*")), "the driver left work folders behind"


def test_a_ray_workers_pool_is_renewed_when_ray_changes_its_environment(monkeypatch):
    """Ray sets each task's CUDA_VISIBLE_DEVICES in the Ray worker; a warm worker started under
    another task's GPUs must not take the job."""
    from buildsys_ray import task

    monkeypatch.setattr(task, "_pool", None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    first = task._warm_pool()
    assert task._warm_pool() is first
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert task._warm_pool() is not first


def sm80_targets(tmp_path, **extra: str) -> str:
    """Targets that all run on the cuda-sm80 node, one at a time (it has one unit), so Ray
    hands them one after another to the Ray worker holding that lease."""
    return "  normalized: {format: text}\n" + "".join(
        f"  {name}: {{format: sim.engine, hardware: a100, options: {{sim.build: {{seconds: 0.3, "
        f"pid_file: '{tmp_path / name}.pid'{extra.get(name, '')}}}}}}}\n" for name in ("a", "b", *extra))


def pids(tmp_path, *names: str) -> list[dict]:
    return [json.loads((tmp_path / f"{name}.pid").read_text()) for name in names]


def test_consecutive_stages_on_a_ray_worker_share_its_warm_worker(project, cluster, tmp_path):
    project.manifest(manifest(sm80_targets(tmp_path)))
    project.cli(*ray_args(cluster, tmp_path / "shared")).assert_ok()
    a, b = pids(tmp_path, "a", "b")
    assert a["ppid"] == b["ppid"], "Ray ran the two sm80 stages in two Ray workers"
    assert a["pid"] == b["pid"] != a["ppid"], "not one pooled worker process, beside the Ray worker"
    assert record(project, "a")["host"]["facts"]["built_on"]["worker_pid"] == a["pid"]
    assert wait_gone(a["pid"], 30), "the pooled worker outlived its build's Ray worker"

    project.write("buildsys.toml", "[executors.ray]\npool = false\n")  # a fresh process per stage
    project.manifest(manifest(sm80_targets(tmp_path).replace("seconds: 0.3", "seconds: 0.4")))
    project.cli(*ray_args(cluster, tmp_path / "shared")).assert_ok()
    a, b = pids(tmp_path, "a", "b")
    assert a["pid"] != b["pid"] and a["ppid"] == b["ppid"]

    (project.root / "buildsys.toml").unlink()  # --no-pool reaches the ray executor too
    project.manifest(manifest(sm80_targets(tmp_path).replace("seconds: 0.3", "seconds: 0.5")))
    project.cli(*ray_args(cluster, tmp_path / "shared", "--no-pool")).assert_ok()
    a, b = pids(tmp_path, "a", "b")
    assert a["pid"] != b["pid"] and a["ppid"] == b["ppid"]


def test_a_segfault_in_a_warm_worker_fails_its_node_and_the_ray_worker_goes_on(project, cluster, tmp_path):
    project.manifest(manifest(sm80_targets(tmp_path, c=", crash: true")))
    result = project.cli(*ray_args(cluster, tmp_path / "shared", "--keep-going"))
    result.assert_error(1, "died with SIGSEGV")
    a, b, c = pids(tmp_path, "a", "b", "c")
    assert a["ppid"] == b["ppid"] == c["ppid"], "the Ray worker died with the stage, or Ray spread the stages"
    crashed_at = (tmp_path / "c.pid").stat().st_mtime
    after = [x for x, name in ((a, "a"), (b, "b")) if record(project, name)["meta"]["started"] > crashed_at]
    assert all(x["pid"] != c["pid"] for x in after), "a stage ran in the worker that had crashed"
    assert sorted(tomllib.loads(project.lock().read_text())["targets"]) == ["a", "b", "normalized"]


def test_a_stage_past_its_timeout_fails_only_its_node_and_its_process_is_stopped(project, cluster, tmp_path):
    """fixture.hang declares a 1 s timeout and sleeps; the sm80 stage beside it takes 3 s, so the
    build goes on after the cancel. The hanging process writes its pid where the test looks."""
    pid_file = tmp_path / "hang.pid"
    project.manifest(manifest("  hung: {format: fixture.hung}\n" + gpu_targets(sm80="seconds: 3").splitlines(True)[1]))
    project.write("buildsys.toml", f'[executors.ray]\nruntime_env = {{env_vars = {{FIXTURE_HANG_PID_FILE = "{pid_file}"}}}}\n')
    started = time.monotonic()
    result = project.cli("-p", "fixture_plugins.pool_faults", *ray_args(cluster, tmp_path / "shared", "--keep-going"))
    result.assert_error(1, "ran past its timeout of 1 s on host", "its Ray task was cancelled")
    result.assert_nodes(failed=["fixture.hang"], built=["sim.build", "text.normalize"])
    assert time.monotonic() - started < 60, "the hung stage was not stopped at its timeout"
    assert wait_gone(int(pid_file.read_text())), "the hung stage process kept running on its Ray node"
    assert sorted(tomllib.loads(project.lock().read_text())["targets"]) == ["sm80"]


def test_settings_from_buildsys_toml_and_their_errors(project, cluster):
    project.manifest(manifest("  normalized: {format: text}\n"))
    project.write("buildsys.toml", f'[build]\nexecutor = "ray"\nstore = "shared"\n'
                                   f'[executors.ray]\naddress = "{cluster.address}"\n')
    project.cli("build", "manifest.yaml").assert_ok().assert_nodes(built=1)
    assert record(project, "normalized")["host"]["facts"]["built_on"]["executor"] == "ray"
    assert list((project.root / "shared" / "ac").glob("*/*.json")), "the relative store is beside buildsys.toml"

    local = project.cli("build", "manifest.yaml", "--executor", "local").assert_ok()  # [executors.ray] is ray's
    local.assert_nodes(cached=1)
    project.cli("build", "manifest.yaml", "--executor", "local", "--address", "x").assert_error(
        2, "the local executor takes no options, got: address")
    project.write("buildsys.toml", '[build]\nexecutor = "ray"\nstore = "shared"\n[executors.ray]\nadress = "x"\n')
    project.cli("build", "manifest.yaml").assert_error(2, "'adress' (did you mean 'address'?)")
    project.write("buildsys.toml", '[build]\nexecutor = "ray"\n')
    project.cli("build", "manifest.yaml", "--address", cluster.address).assert_error(
        2, "moves artifacts through a shared store, and none is set", "--store URL")


class TestRayExecutorContract(ExecutorContract):
    """The executor contract the local executor passes: dependency order, cache hits that
    dispatch nothing, ``--keep-going`` skipping exactly a failure's dependents."""

    executor = "ray"

    @pytest.fixture
    def executor_env(self, cluster, tmp_path):
        return {**cluster.env, "RAY_ADDRESS": cluster.address, "BUILDSYS_STORE": f"file://{tmp_path / 'shared'}"}
