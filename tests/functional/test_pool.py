"""The local executor's warm worker pool, against the real CLI: jobs share a worker and find it
as a fresh process would; a segfault, a hang past the timeout, a leak past the memory limit, a
worker killed from outside and Ctrl-C each fail only their node (or stop the build) and later
nodes still build; torch is imported once per build with the same checksums as without the pool.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from buildsys.config import local_executor_options
from buildsys.errors import ManifestError
from buildsys.testing import ProjectDir

from test_faults import (MODEL, assert_consistent, assert_group_gone, finish, kill_group, leftovers, manifest,
                          node_ids, start_build, stderr_lines, wait_until_running)

TESTS = Path(__file__).resolve().parents[1]
PLUGIN = ("-p", "fixture_plugins.pool_faults")


def env_with(**extra: str) -> dict:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])), **extra}


def seen(project: ProjectDir, target: str) -> dict:
    """What the fixture stage of ``target`` saw of its process (its primary output)."""
    [output] = (project.out / "demo" / "1.0.0" / target).glob("demo-1.0.0-*")
    return json.loads(output.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def seen_targets(*tags: int) -> str:
    return "".join(f"  seen{t}: {{format: fixture.seen, options: {{fixture.seen: {{tag: {t}}}}}}}\n" for t in tags)


def with_plugin(project: ProjectDir) -> None:
    """For builds started by ``start_build`` (no ``-p``): the fixture plugin through the environment."""
    project.env.update(env_with(BUILDSYS_PLUGIN_MODULES="fixture_plugins.pool_faults"))


@pytest.fixture
def project(buildsys_project: ProjectDir) -> ProjectDir:
    buildsys_project.write("model.txt", MODEL)
    return buildsys_project


def build(project: ProjectDir, targets: str, *args: str, **env: str):
    project.manifest(manifest(targets))
    return project.cli(*PLUGIN, "build", "manifest.yaml", "-j", "1", *args, env=env_with(**env))


# -- sharing, and what a job finds ---------------------------------------------------------------


def test_jobs_share_a_worker_that_each_finds_as_fresh(project):
    result = build(project, seen_targets(1, 2, 3)).assert_ok()
    result.assert_nodes(built=["text.normalize", "fixture.seen", "fixture.seen", "fixture.seen"])
    runs = sorted((seen(project, f"seen{t}") for t in (1, 2, 3)), key=lambda s: s["at"])
    assert len({r["pid"] for r in runs}) == 1, runs  # one warm worker ran them all
    for run in runs:  # each polluted env, sys.path and cwd; the next one saw none of it
        assert run["polluted_env"] is None and not run["polluted_path"], run
        assert Path(run["cwd"]).name.startswith(".fixture.seen.tmp-"), run
        assert run["stdin"] == "end-of-file", run  # as in a one-job worker: never the pool's pipe
    assert not alive(runs[0]["pid"]), "the pool's worker outlived the build"
    noop = project.cli(*PLUGIN, "build", "manifest.yaml", env=env_with()).assert_ok()
    noop.assert_nodes(built=0)


def test_no_pool_gives_every_job_its_own_process(project):
    build(project, seen_targets(1, 2), "--no-pool").assert_ok()
    assert seen(project, "seen1")["pid"] != seen(project, "seen2")["pid"]
    assert seen(project, "seen1")["stdin"] == "end-of-file"


def test_pool_false_in_buildsys_toml_and_env_turn_it_off(project):
    project.write("buildsys.toml", "[build]\npool = false\n")
    build(project, seen_targets(1, 2)).assert_ok()
    assert seen(project, "seen1")["pid"] != seen(project, "seen2")["pid"]
    project.write("buildsys.toml", "[build]\npool = 'no'\n")
    build(project, seen_targets(3)).assert_error(2, "build.pool = 'no' is not true or false")
    project.write("buildsys.toml", "[build]\n")
    build(project, seen_targets(4, 5), BUILDSYS_POOL="0").assert_ok()
    assert seen(project, "seen4")["pid"] != seen(project, "seen5")["pid"]


def test_local_executor_options_from_file_then_environment():
    build_table = {"pool": True, "worker_jobs": 3}
    assert local_executor_options(build_table, {}) == {"pool": True, "worker_jobs": 3}
    assert local_executor_options(build_table, {"BUILDSYS_POOL": "off", "BUILDSYS_WORKER_RSS_MB": "512"}) == \
        {"pool": False, "worker_jobs": 3, "worker_rss_mb": 512}
    with pytest.raises(ManifestError, match="BUILDSYS_WORKER_JOBS='many' is not a number"):
        local_executor_options({}, {"BUILDSYS_WORKER_JOBS": "many"})


def test_isolated_stage_gets_a_process_of_its_own(project):
    targets = seen_targets(1) + "  alone: {format: fixture.alone}\n" + seen_targets(2)
    build(project, targets).assert_ok()
    alone = seen(project, "alone")
    shared = {seen(project, "seen1")["pid"], seen(project, "seen2")["pid"]}
    assert len(shared) == 1 and alone["pid"] not in shared
    assert alone["polluted_env"] is None


def test_worker_is_replaced_after_worker_jobs(project):
    build(project, seen_targets(1, 2, 3), BUILDSYS_WORKER_JOBS="2").assert_ok()
    # normalize (1st job) and the first fixture.seen share a worker; the next two get a new one
    runs = sorted((seen(project, f"seen{t}") for t in (1, 2, 3)), key=lambda s: s["at"])
    assert runs[0]["pid"] != runs[1]["pid"] == runs[2]["pid"], runs


# -- faults ---------------------------------------------------------------------------------------


def test_segfault_fails_only_its_node_and_later_nodes_get_a_new_worker(project):
    targets = ("  crash: {format: text.stats, options: {text.wordcount: {crash: segv}}}\n"
               + seen_targets(1))
    result = build(project, targets, "--keep-going")
    result.assert_error(1, "worker process died with SIGSEGV (the backend crashed)")
    [crashed] = node_ids(result.stderr, "wordcount")
    assert set(stderr_lines(result, "failed")) == {crashed}
    result.assert_nodes(failed=["text.wordcount"], built=["text.normalize", "fixture.seen"])
    assert_consistent(project)
    assert leftovers(project) == []


def test_stage_past_its_timeout_fails_only_its_node(project, tmp_path):
    pid_file = tmp_path / "hang.pid"
    started = time.monotonic()
    result = build(project, "  hung: {format: fixture.hung}\n" + seen_targets(1), "--keep-going",
                   FIXTURE_HANG_PID_FILE=str(pid_file))
    result.assert_error(1, "ran past its timeout of 1 s; its worker process was killed")
    result.assert_nodes(failed=["fixture.hang"], built=["text.normalize", "fixture.seen"])
    assert time.monotonic() - started < 60, "the hung stage was not stopped at its timeout"
    assert not alive(int(pid_file.read_text())), "the hung worker is still running"
    assert leftovers(project) == []


def test_stage_past_its_timeout_without_the_pool(project, tmp_path):
    pid_file = tmp_path / "hang.pid"
    result = build(project, "  hung: {format: fixture.hung}\n", "--no-pool", FIXTURE_HANG_PID_FILE=str(pid_file))
    result.assert_error(1, "ran past its timeout of 1 s")
    assert not alive(int(pid_file.read_text()))


def test_worker_over_the_memory_limit_is_replaced(project):
    targets = ("  leaked: {format: fixture.leaked, options: {fixture.leak: {mb: 200}}}\n"
               + seen_targets(1))
    build(project, targets, BUILDSYS_WORKER_RSS_MB="150").assert_ok()
    leaked = seen(project, "leaked")
    after = seen(project, "seen1")
    assert leaked["leaked_mb"] == 200
    assert after["pid"] != leaked["pid"] and after["leaked_mb"] == 0, (leaked, after)
    assert not alive(leaked["pid"]), "the worker above the memory limit was not retired"
    # under the limit the same worker goes on, leak and all: the limit is what bounds it
    build(project, targets.replace("mb: 200", "mb: 20") + seen_targets(2)).assert_ok()
    assert seen(project, "seen2")["leaked_mb"] == 20


def test_worker_killed_from_outside_fails_only_its_node(project):
    project.manifest(manifest("  stats: {format: text.stats, options: {text.wordcount: {delay: 3}}}\n"
                              + seen_targets(1)))
    with_plugin(project)
    proc = start_build(project, "-j", "1", "--keep-going")
    wait_until_running(project, proc)
    [worker] = children(proc.pid)
    os.kill(worker, signal.SIGKILL)
    result = finish(proc)
    result.assert_error(1, "worker process died with SIGKILL")
    result.assert_nodes(failed=["text.wordcount"], built=["text.normalize", "fixture.seen"])
    assert seen(project, "seen1")["pid"] != worker
    assert_group_gone(proc)
    assert leftovers(project) == []


def test_ctrl_c_stops_every_pooled_worker(project):
    with_plugin(project)
    project.manifest(manifest(seen_targets(1) + "  stats: {format: text.stats, options: "
                              "{text.wordcount: {delay: 5}}}\n  lower: {format: text, options: "
                              "{text.normalize: {lowercase: true}}}\n"))
    proc = start_build(project, "-j", "2")
    wait_until_running(project, proc)
    workers = children(proc.pid)
    assert workers, "no pooled worker is running"
    kill_group(proc, signal.SIGINT)
    result = finish(proc, timeout=30)
    assert result.exit_code == 130, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert_group_gone(proc)
    assert not any(alive(pid) for pid in workers)
    assert leftovers(project) == []
    assert assert_consistent(project) is None


def test_sigkill_of_the_build_takes_its_idle_workers_along(project):
    """Only the driver is killed (not its group): its workers must not outlive it."""
    with_plugin(project)
    project.manifest(manifest(seen_targets(1) + "  stats: {format: text.stats, options: "
                              "{text.wordcount: {delay: 5}}}\n"))
    proc = start_build(project, "-j", "1")
    wait_until_running(project, proc)
    workers = children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers), "a pooled worker outlived the killed build"


# -- torch: imported once, same checksums ---------------------------------------------------------


def test_torch_stages_share_one_worker_and_match_no_pool_checksums(buildsys_project, tmp_path):
    pytest.importorskip("torch")
    from test_torch import tiny

    tiny(buildsys_project, targets="portable: {format: onnx}")
    digests = {}
    for mode in ("pool", "no-pool"):
        trace = tmp_path / f"{mode}.jsonl"
        args = ("--no-pool",) if mode == "no-pool" else ()
        shutil_rmtree(buildsys_project.out)
        result = buildsys_project.cli("build", "manifest.yaml", *args, env={"BUILDSYS_TRACE_IMPORTS": str(trace)})
        result.assert_ok().assert_nodes(built=["torch.export", "torch.reference", "validate", "onnx.export",
                                               "validate"])
        jobs = [json.loads(line) for line in trace.read_text().splitlines()]
        workers = [j for j in jobs if j.get("process") == "worker"]
        torch_jobs = [j for j in workers if "torch" in j["modules"]]
        assert len(workers) == 5 and len(torch_jobs) >= 4, (mode, [j["node"] for j in torch_jobs])
        # with the pool, one process imported torch for every torch stage; without, one each
        pids = {j["pid"] for j in torch_jobs}
        assert len(pids) == (1 if mode == "pool" else len(torch_jobs)), (mode, pids)
        lock = tomllib.loads(buildsys_project.lock().read_text())
        digests[mode] = {n: v.get("digest") for n, v in lock["nodes"].items() if v.get("deterministic")}
    assert digests["pool"] and digests["pool"] == digests["no-pool"]


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
