"""Fault injection against the real CLI: kill -9 (of the build mid-stage, and of the driver at
the exact moment it renames shared state into place), Ctrl-C, SIGTERM, concurrent builds,
segfaulting and failing stages, hostile names.

Every test runs ``python -m buildsys`` in a subprocess inside an isolated project
(``buildsys_project``). Builds that must be interrupted are started with ``Popen`` in their own
session, so signalling the process group reaches the driver and its workers, like a terminal's
Ctrl-C or an OOM-killer / CI-timeout ``kill -9`` of the whole job.

After every fault the on-disk state is checked, not just the exit code: artifact directories
are whole (``artifact.json`` lists exactly the files present, with matching sha256), cache
entries reference only blobs that exist and hash to their names, the lockfile parses and
matches the artifacts, and no temp file survives (a killed build's, once ``gc`` has run).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from buildsys.testing import CliResult, ProjectDir, json_result

NAME, VERSION = "demo", "1.0.0"
MODEL = "The quick brown fox\n  jumps over the lazy dog\nthe end\n"
SLOW = 2.0  # seconds the slow wordcount sleeps: long enough to hit it mid-run, short for CI
NODE_RE = r"text\.{stage}#[0-9a-f]+"


def manifest(targets: str, name: str = NAME, version: str = VERSION) -> str:
    return (f"schema: 1\nname: {name}\nversion: {version}\n"
            "model: {framework: text, entrypoint: model.txt}\n"
            f"targets:\n{targets}")


SLOW_MANIFEST = manifest(
    "  normalized: {format: text}\n"
    f"  stats: {{format: text.stats, options: {{text.wordcount: {{delay: {SLOW}}}}}}}\n")


# -- helpers ---------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def like_a_terminal() -> None:
    """In the child: Ctrl-C's default action, as in a terminal. A test run started in the
    background by a shell (``cmd &``) inherits SIGINT ignored, and exec keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_build(project: ProjectDir, *args: str) -> subprocess.Popen:
    """``buildsys build manifest.yaml --json ARGS`` in its own session (process group).

    stdout and stderr go to files beside the project, so a test can watch stderr while it runs."""
    logs = project.root.parent / "builds"
    logs.mkdir(exist_ok=True)
    n = len(list(logs.glob("*.err")))
    out, err = open(logs / f"{n}.out", "w+"), open(logs / f"{n}.err", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "buildsys", "build", "manifest.yaml", "--json", *args],
                            cwd=project.root, env={**os.environ, **project.env}, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=err, preexec_fn=like_a_terminal)
    proc.out_path, proc.err_path = Path(out.name), Path(err.name)
    out.close()
    err.close()
    _STARTED.append(proc)
    return proc


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_stray_builds():
    """Whatever a test asserts, no build it started outlives it."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        kill_group(proc, signal.SIGKILL)
        proc.wait(timeout=30)


def stderr_of(proc: subprocess.Popen) -> str:
    return proc.err_path.read_text()


def finish(proc: subprocess.Popen, timeout: float = 60) -> CliResult:
    proc.wait(timeout=timeout)
    stdout, stderr = proc.out_path.read_text(), stderr_of(proc)
    summary = json_result(stdout)
    return CliResult(list(map(str, proc.args)), proc.returncode, stdout, stderr, summary)


def job_dirs(project: ProjectDir, pid: int | None = None, stage: str = "text.wordcount") -> list[Path]:
    """Work folders of ``stage`` jobs under the cache's tmp/ (of the build ``pid``, if given)."""
    tmp = project.cache / "tmp"
    if not tmp.is_dir():
        return []
    return sorted(tmp.glob(f".{stage}.tmp-{pid if pid is not None else '*'}-*"))


def wait_until_running(project: ProjectDir, proc: subprocess.Popen, stage: str = "text.wordcount",
                       timeout: float = 30) -> Path:
    """Wait until ``proc``'s worker for ``stage`` is inside the stage (it reported progress)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in job_dirs(project, proc.pid, stage):
            log = job / "worker.log"
            try:
                if "buildsys-progress" in log.read_text(errors="replace"):
                    return job
            except FileNotFoundError:
                pass
        if proc.poll() is not None:
            pytest.fail(f"build exited {proc.returncode} before {stage} ran:\n{stderr_of(proc)}")
        time.sleep(0.02)
    kill_group(proc, signal.SIGKILL)
    pytest.fail(f"{stage} did not start within {timeout}s")


def kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def assert_group_gone(proc: subprocess.Popen, timeout: float = 10) -> None:
    """No process of the build's group (the driver's workers included) outlives the build."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    kill_group(proc, signal.SIGKILL)
    pytest.fail("a worker process outlived the build it belonged to")


def node_ids(text: str, stage: str) -> list[str]:
    return sorted(set(re.findall(NODE_RE.format(stage=re.escape(stage)), text)))


def stderr_lines(result: CliResult, status: str) -> dict[str, str]:
    """The reporter's lines ``[i/n] STATUS node: reason`` on stderr, as node -> line."""
    out = {}
    for line in result.stderr.splitlines():
        m = re.match(rf"\[\d+/\d+\]\s+{status}\s+(\S+?)(?::|\s|$)", line)
        if m:
            out[m.group(1)] = line
    return out


def target_dirs(project: ProjectDir) -> dict[str, Path]:
    root = project.out / NAME / VERSION
    return {p.name: p for p in sorted(root.iterdir()) if not p.name.startswith(".")} if root.is_dir() else {}


def leftovers(project: ProjectDir) -> list[Path]:
    """Temp files and folders a build left: staging or swapped-out folders in the artifact
    root, work folders in the cache's tmp/, temp entries in ac/, temp lockfiles."""
    out = [p for p in project.out.rglob(".*") if ".cache" not in p.relative_to(project.out).parts
           and p.name != ".manifest"]  # which manifest owns <name>/<version>/: kept on purpose
    out += sorted((project.cache / "tmp").glob("*")) + sorted((project.cache / "ac").glob("*/.*"))
    out += sorted(project.root.glob(".manifest.lock.*"))
    return out


def assert_consistent(project: ProjectDir, lock_matches: bool = True) -> dict | None:
    """Artifacts whole, cache entries complete, lockfile parseable (and matching the artifacts).

    Returns the parsed lockfile (None if there is none)."""

    # every target dir: artifact.json lists exactly its files, each matching its sha256
    for target, directory in target_dirs(project).items():
        meta_path = directory / "artifact.json"
        assert meta_path.is_file(), f"target dir {directory} has no artifact.json"
        record = json.loads(meta_path.read_text())
        listed = {f["name"]: f for f in record["files"]}
        present = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
        assert present == set(listed) | {"artifact.json", "provenance.json"}, f"{directory}: files {present} != recorded {set(listed)}"
        for name, f in listed.items():
            assert sha256(directory / name) == f["sha256"], f"{directory / name} does not match its sha256"
            assert (directory / name).stat().st_size == f["size"]

    # every cache entry: parses, and each blob it names exists and hashes to its name
    for entry_path in (project.cache / "ac").glob("*/[!.]*"):
        assert entry_path.suffix == ".json", f"unexpected file among cache entries: {entry_path}"
        entry = json.loads(entry_path.read_text())
        for f in entry["files"]:
            blob = project.cache / "cas" / f["sha256"][:2] / f["sha256"]
            assert blob.is_file(), f"cache entry {entry_path.name} references missing blob {blob}"
            assert sha256(blob) == f["sha256"], f"blob {blob} is damaged"

    # the lockfile: absent, or parses and describes the artifacts on disk
    lock_path = project.lock()
    if not lock_path.exists():
        return None
    lock = tomllib.loads(lock_path.read_text())
    if not lock_matches:
        return lock
    dirs = target_dirs(project)
    for target, entry in lock.get("targets", {}).items():
        assert target in dirs, f"the lock lists target '{target}' but {project.out} lacks it"
        record = json.loads((dirs[target] / "artifact.json").read_text())
        assert sorted((f["name"], f["sha256"]) for f in entry["files"]) == \
            sorted((f["name"], f["sha256"]) for f in record["files"]), f"lock and artifact of '{target}' differ"
        for node_id in entry["nodes"]:
            assert node_id in lock["nodes"], f"lock target '{target}' names unknown node {node_id}"
    return lock


@pytest.fixture
def project(buildsys_project: ProjectDir) -> ProjectDir:
    buildsys_project.manifest(SLOW_MANIFEST, files={"model.txt": MODEL})
    return buildsys_project


# -- 1. kill -9 of the whole build -----------------------------------------------------------


def test_sigkill_mid_stage_leaves_consistent_state_and_gc_cleans_up(project):
    project.cli("build", "manifest.yaml", "-t", "normalized").assert_ok()
    before = assert_consistent(project)
    assert before is not None and set(before["targets"]) == {"normalized"}
    normalized_json = (target_dirs(project)["normalized"] / "artifact.json").read_bytes()

    proc = start_build(project)
    job = wait_until_running(project, proc)
    kill_group(proc, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert_group_gone(proc)

    # the killed build's work folder is left behind, named with its pid (so gc can tell it is dead)
    assert job.is_dir() and f".tmp-{proc.pid}-" in job.name
    # nothing of the killed build became visible; what the first build wrote is intact
    assert leftovers(project) == [job]
    lock = assert_consistent(project)
    assert lock == before, "the lockfile changed although the build was killed before it finished"
    assert set(target_dirs(project)) == {"normalized"}
    assert (target_dirs(project)["normalized"] / "artifact.json").read_bytes() == normalized_json

    # the rerun is not blocked by the dead build's node lock, and builds only what is missing
    rerun = project.cli("build", "manifest.yaml")
    rerun.assert_ok()
    rerun.assert_nodes(built=["text.wordcount"], cached=["text.normalize"])
    lock = assert_consistent(project)
    assert set(lock["targets"]) == {"normalized", "stats"}
    project.cli("verify", "manifest.yaml").assert_ok()
    assert job.is_dir(), "the rerun should not need to touch the dead build's folder"

    # gc removes the dead build's temp folder, and nothing the lock or artifacts still use
    gc = project.cli("gc", "manifest.yaml").assert_ok()
    assert not job.exists(), f"gc left the killed build's temp folder {job}"
    assert "1 stale temp folder" in gc.stdout, gc.stdout
    assert leftovers(project) == []
    project.cli("verify", "manifest.yaml").assert_ok()
    project.cli("build", "manifest.yaml").assert_ok().assert_nodes(built=0, cached=2)


# -- 2. Ctrl-C ---------------------------------------------------------------------------------


def test_ctrl_c_mid_stage_exits_130_and_cleans_up(project):
    proc = start_build(project)
    job = wait_until_running(project, proc)
    kill_group(proc, signal.SIGINT)  # what a terminal does on Ctrl-C
    result = finish(proc, timeout=30)
    assert_group_gone(proc)

    assert result.exit_code == 130, f"exit {result.exit_code}\n{result.stderr}"
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr, result.stderr
    mentions = [line for line in result.stderr.splitlines() if "interrupted" in line.lower()]
    assert len(mentions) == 1, result.stderr
    if result.stdout.strip():  # a summary, if any, is whole
        json.loads(result.stdout)

    # the driver removed its work folders; nothing partial became visible
    assert not job.exists()
    assert leftovers(project) == []
    assert assert_consistent(project) is None, "an interrupted build must not write the lockfile"
    assert target_dirs(project) == {}

    rerun = project.cli("build", "manifest.yaml")
    rerun.assert_ok()
    # normalize had finished before Ctrl-C: its cache entry survives; wordcount runs again
    rerun.assert_nodes(built=["text.wordcount"], cached=["text.normalize"])
    assert set(assert_consistent(project)["targets"]) == {"normalized", "stats"}
    project.cli("verify", "manifest.yaml").assert_ok()


# -- 3. two builds at once ------------------------------------------------------------------


def test_concurrent_builds_build_the_slow_node_once(project):
    first = start_build(project)
    wait_until_running(project, first)  # the second build starts while the first holds the node
    second = start_build(project)
    a, b = finish(first), finish(second)
    a.assert_ok()
    b.assert_ok()

    for node in set(a.summary["nodes"]) | set(b.summary["nodes"]):
        if node.startswith("source:"):
            continue
        statuses = sorted([a.summary["nodes"][node]["status"], b.summary["nodes"][node]["status"]])
        assert statuses == ["built", "cached"], f"{node} ended {statuses} across the two builds"
    [wordcount] = [n for n in a.summary["nodes"] if n.startswith("text.wordcount#")]
    assert a.summary["nodes"][wordcount]["status"] == "built"
    assert b.summary["nodes"][wordcount]["status"] == "cached"
    assert b.summary["targets"] == a.summary["targets"]

    lock = assert_consistent(project)
    assert set(lock["targets"]) == {"normalized", "stats"}
    assert len(list((project.cache / "ac").glob("*/*.json"))) == 2  # normalize + wordcount, once each
    assert leftovers(project) == []
    project.cli("verify", "manifest.yaml").assert_ok()


def test_gc_during_a_build_waits_for_it_and_keeps_its_fresh_outputs(project):
    """A build holds the cache from its first lookup until its lockfile is written: gc waits
    (or, with --no-wait, skips) and says so, instead of deleting outputs no lock references yet."""
    build = start_build(project)
    wait_until_running(project, build)
    skipped = project.cli("gc", "manifest.yaml", "--no-wait").assert_ok()
    assert "skipped: a build is using this cache" in skipped.stderr
    logs = project.root.parent / "builds"
    gc_err = open(logs / "gc.err", "w+")
    gc = subprocess.Popen([sys.executable, "-m", "buildsys", "gc", "manifest.yaml"], cwd=project.root,
                          env={**os.environ, **project.env}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=gc_err, start_new_session=True)
    _STARTED.append(gc)
    deadline = time.monotonic() + 30
    while "waiting for the build" not in (logs / "gc.err").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert build.poll() is None, "the build ended before gc was seen waiting: the test proves nothing"
    assert "waiting for the build" in (logs / "gc.err").read_text()
    finish(build).assert_ok()
    assert gc.wait(timeout=60) == 0
    assert_consistent(project)
    project.cli("verify", "manifest.yaml").assert_ok()
    project.cli("build", "manifest.yaml").assert_ok().assert_nodes(built=0)


def test_waiting_build_takes_over_when_the_builder_is_killed(project):
    # slower than SLOW: the second build must start and reach the node while the first runs it
    project.manifest(SLOW_MANIFEST.replace(f"delay: {SLOW}", "delay: 3.0"))
    first = start_build(project)
    job = wait_until_running(project, first)
    second = start_build(project)
    # the second build finds normalize cached, then waits on the lock of the node the first runs
    deadline = time.monotonic() + 20
    while not re.search(r"cached\s+text\.normalize#", stderr_of(second)):
        assert second.poll() is None, f"second build exited early:\n{stderr_of(second)}"
        assert time.monotonic() < deadline, f"second build never reached the slow node:\n{stderr_of(second)}"
        time.sleep(0.02)
    time.sleep(0.3)
    assert job_dirs(project, second.pid) == [], "the second build ran the node another build holds"
    assert job.is_dir() and first.poll() is None
    kill_group(first, signal.SIGKILL)
    first.wait(timeout=30)
    assert_group_gone(first)

    b = finish(second)
    b.assert_ok()
    b.assert_nodes(built=["text.wordcount"], cached=["text.normalize"])
    assert set(assert_consistent(project)["targets"]) == {"normalized", "stats"}
    assert leftovers(project) == [job]  # the killed build's, for gc
    project.cli("verify", "manifest.yaml").assert_ok()


# -- 4. a backend that segfaults ----------------------------------------------------------------

CRASH_MANIFEST = manifest(
    "  crash: {format: text.stats, options: {text.wordcount: {crash: segv}}}\n"
    "  ascii: {format: text, precision: int8}\n"
    "  lowercase: {format: text, options: {text.normalize: {lowercase: true}}}\n")


def test_segfault_fails_only_its_node_with_keep_going(buildsys_project):
    project = buildsys_project
    project.manifest(CRASH_MANIFEST, files={"model.txt": MODEL})
    result = project.cli("build", "manifest.yaml", "--keep-going")
    result.assert_error(1, "SIGSEGV", "crash")
    [crashed] = node_ids(result.stderr, "wordcount")
    failure = [line for line in result.stderr.splitlines() if crashed in line and "SIGSEGV" in line]
    assert failure, f"no error line names both {crashed} and SIGSEGV:\n{result.stderr}"
    assert "[targets: crash]" in result.stderr

    logs = re.findall(r"\(log: ([^)]+)\)", result.stderr)
    assert logs, f"no log path in stderr:\n{result.stderr}"
    assert all(Path(log).is_file() for log in logs), logs

    # everything that does not depend on the crashed node was built and written
    assert set(stderr_lines(result, "failed")) == {crashed}
    assert stderr_lines(result, "skipped") == {}
    assert len(stderr_lines(result, "built")) == 3  # normalize (x2: plain, lowercase), ascii
    assert set(target_dirs(project)) == {"ascii", "lowercase"}
    lock = assert_consistent(project)
    assert set(lock["targets"]) == {"ascii", "lowercase"}
    assert crashed not in lock["nodes"]
    assert leftovers(project) == []


def test_segfault_without_keep_going_stops_the_build(buildsys_project):
    project = buildsys_project
    project.manifest(CRASH_MANIFEST, files={"model.txt": MODEL})
    result = project.cli("build", "manifest.yaml", "-j", "1")
    result.assert_error(1, "SIGSEGV")
    [crashed] = node_ids(result.stderr, "wordcount")
    skipped = stderr_lines(result, "skipped")
    # with -j 1 the crash comes before ascii and the lowercase normalize start
    assert {n.split("#")[0] for n in skipped} == {"text.ascii", "text.normalize"}, result.stderr
    for node, line in skipped.items():
        assert "not started" in line and crashed in line and "--keep-going" in line, line
    assert set(stderr_lines(result, "failed")) == {crashed}
    assert target_dirs(project) == {}
    assert_consistent(project)
    assert leftovers(project) == []


def test_json_summary_is_printed_for_a_failed_build(buildsys_project):
    """``build --json`` is what CI reads; it matters most when the build failed."""
    project = buildsys_project
    project.manifest(CRASH_MANIFEST, files={"model.txt": MODEL})
    result = project.cli("build", "manifest.yaml", "-j", "1")
    result.assert_error(1, "SIGSEGV")
    assert result.summary, f"build --json printed no summary for a failed build (stdout: {result.stdout!r})"
    result.assert_nodes(failed=["text.wordcount"], skipped=["text.ascii", "text.normalize"], built=1)
    [crashed] = result.nodes("failed")
    assert "SIGSEGV" in result.summary["nodes"][crashed]["error"]


# -- 5. --keep-going: failures, their dependents, unrelated targets -------------------------------


def test_keep_going_skips_every_dependent_of_a_failed_node(buildsys_project):
    """The only first-party chain with a failing node that has dependents: text.normalize fails
    on a model that is not UTF-8, and everything downstream of it (through ``from:``) is skipped."""
    project = buildsys_project
    project.manifest(manifest(
        "  lower: {format: text, options: {text.normalize: {lowercase: true}}}\n"
        "  lower_ascii: {format: text, precision: int8, from: lower}\n"
        "  lower_stats: {format: text.stats, from: lower}\n"))
    (project.root / "model.txt").write_bytes(b"caf\xe9 \xff not utf-8\n")
    result = project.cli("build", "manifest.yaml", "--keep-going")
    result.assert_error(1, "cannot read text model")
    [failed] = node_ids(result.stderr, "normalize")
    assert set(stderr_lines(result, "failed")) == {failed}
    assert f"{failed} [targets: lower, lower_ascii, lower_stats]" in result.stderr
    skipped = stderr_lines(result, "skipped")
    assert {n.split("#")[0] for n in skipped} == {"text.ascii", "text.wordcount"}
    for line in skipped.values():
        assert f"input '{failed}' failed" in line, line
    summary_line = [l for l in result.stderr.splitlines() if l.startswith("not built (skipped)")]
    assert len(summary_line) == 1 and all(n in summary_line[0] for n in skipped), result.stderr
    assert stderr_lines(result, "built") == {}
    assert target_dirs(project) == {}
    lock = assert_consistent(project)
    assert lock is None  # nothing was built: no lockfile is written
    assert leftovers(project) == []


def test_keep_going_builds_targets_unrelated_to_a_failing_stage(buildsys_project):
    """wordcount's output feeds no stage, so its failure has no dependents: it fails every target
    it serves (also one that builds ``from:`` it) and nothing else."""
    project = buildsys_project
    project.manifest(manifest(
        "  stats: {format: text.stats, options: {text.wordcount: {fail: true}}}\n"
        "  stats_again: {format: text.stats, from: stats}\n"
        "  ascii: {format: text, precision: int8}\n"
        "  lowercase: {format: text, options: {text.normalize: {lowercase: true}}}\n"),
        files={"model.txt": MODEL})
    result = project.cli("build", "manifest.yaml", "--keep-going")
    result.assert_error(1, "fail: true")
    [failed] = node_ids(result.stderr, "wordcount")
    assert set(stderr_lines(result, "failed")) == {failed}
    assert f"{failed} [targets: stats, stats_again]" in result.stderr
    assert stderr_lines(result, "skipped") == {}
    assert "skipped because" not in result.stderr
    assert set(target_dirs(project)) == {"ascii", "lowercase"}
    assert set(assert_consistent(project)["targets"]) == {"ascii", "lowercase"}
    assert leftovers(project) == []
    project.cli("verify", "manifest.yaml").assert_ok()

    # the failure is not cached: fixing the option rebuilds only that node
    (project.root / "manifest.yaml").write_text(
        (project.root / "manifest.yaml").read_text().replace("fail: true", "fail: false"))
    fixed = project.cli("build", "manifest.yaml")
    fixed.assert_ok()
    fixed.assert_nodes(built=["text.wordcount"], cached=3)
    assert set(assert_consistent(project)["targets"]) == {"stats", "stats_again", "ascii", "lowercase"}


# -- SIGTERM (CI cancel, docker stop, systemd) reaches only the driver ----------------------------


def test_sigterm_to_the_driver_stops_its_workers(buildsys_project):
    """``docker stop``, Kubernetes and most CI runners send SIGTERM to the build process alone,
    not to its process group: the driver must stop its workers and clean up, as on Ctrl-C."""
    project = buildsys_project
    project.manifest(manifest("  stats: {format: text.stats, options: {text.wordcount: {delay: 5}}}\n"),
                     files={"model.txt": MODEL})
    proc = start_build(project)
    job = wait_until_running(project, proc)
    try:
        os.kill(proc.pid, signal.SIGTERM)  # the driver only
        result = finish(proc, timeout=15)
        assert_group_gone(proc, timeout=2)  # far less than what is left of the 5 s stage
    finally:
        kill_group(proc, signal.SIGKILL)
    assert result.exit_code in (130, 143), f"exit {result.exit_code}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert not job.exists()
    assert leftovers(project) == []
    assert assert_consistent(project) is None and target_dirs(project) == {}


# -- SIGKILL at the exact moments the driver writes shared state ---------------------------------

# Loaded by every Python process of the build through PYTHONPATH: on the os.replace that
# BUILDSYS_TEST_CRASH_AT names, the process SIGKILLs itself, the way a power cut or the
# OOM killer would stop it there.
CRASH_HOOK = """
import os, signal

_point = os.environ.get("BUILDSYS_TEST_CRASH_AT")
_replace = os.replace


def _crashing_replace(src, dst, *args, **kwargs):
    src_name, dst_name = os.path.basename(os.fspath(src)), os.path.basename(os.fspath(dst))
    parent = os.path.basename(os.path.dirname(os.path.dirname(os.fspath(dst))))
    if _point == "cache-entry" and parent == "ac" and dst_name.endswith(".json"):
        os.kill(os.getpid(), signal.SIGKILL)          # blobs stored, entry not yet renamed in
    if _point == "lockfile" and src_name.startswith(".manifest.lock."):
        os.kill(os.getpid(), signal.SIGKILL)          # artifacts written, lock not yet renamed in
    _replace(src, dst, *args, **kwargs)
    if _point == "artifact-swap" and dst_name.startswith(".") and ".old-" in dst_name:
        os.kill(os.getpid(), signal.SIGKILL)          # old target dir moved aside, new not in yet


if _point:
    os.replace = _crashing_replace
"""


@pytest.mark.parametrize("point", ["cache-entry", "artifact-swap", "lockfile"])
def test_sigkill_while_writing_state_recovers_and_gc_cleans_up(buildsys_project, tmp_path, point):
    project = buildsys_project
    project.manifest(manifest("  normalized: {format: text}\n"), files={"model.txt": MODEL})
    project.cli("build", "manifest.yaml").assert_ok()
    (project.root / "model.txt").write_text(MODEL.upper())  # every node and artifact must change

    hook = tmp_path / "crash_hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASH_HOOK)
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    crashed = project.cli("build", "manifest.yaml", env={"PYTHONPATH": path, "BUILDSYS_TEST_CRASH_AT": point})
    assert crashed.exit_code == -signal.SIGKILL, f"the {point} crash did not fire:\n{crashed.stderr}"

    # a crash may leave the lock a build behind the artifacts, but nothing torn
    assert_consistent(project, lock_matches=False)
    rerun = project.cli("build", "manifest.yaml")
    rerun.assert_ok()
    assert set(assert_consistent(project)["targets"]) == {"normalized"}
    project.cli("verify", "manifest.yaml").assert_ok()

    gc = project.cli("gc", "manifest.yaml").assert_ok()
    assert leftovers(project) == [], f"after gc, the killed build's temp files remain ({gc.stdout.strip()})"
    # gc kept what the artifacts use, and nothing else: one entry, one blob
    assert len(list((project.cache / "ac").glob("*/*.json"))) == 1
    assert len(list((project.cache / "cas").glob("*/*"))) == 1


# -- 6. names that would escape the artifact root --------------------------------------------------


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("name, version, target", [
    ("../evil", VERSION, "x"),
    (NAME, VERSION, "../x"),
    (NAME, "../../evil", "x"),
    (NAME, VERSION, ".."),
    ("ABSOLUTE", VERSION, "x"),
    (NAME, VERSION, "a/../../b"),
], ids=["name", "target", "version", "dotdot-target", "absolute-name", "nested-target"])
def test_path_traversal_in_names_is_refused(buildsys_project, tmp_path, name, version, target):
    project = buildsys_project
    if name == "ABSOLUTE":  # an absolute name would replace the artifact root when joined to it
        name = "/tmp/evil"  # short: a name past 64 characters is refused for its length first
    project.manifest(manifest(f"  {json.dumps(target)}: {{format: text}}\n",
                              name=json.dumps(name), version=json.dumps(version)),
                     files={"model.txt": MODEL})
    before = _tree(tmp_path)
    for command in (("build", "manifest.yaml"), ("plan", "manifest.yaml")):
        result = project.cli(*command)
        result.assert_error(2, "not a safe name")
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert _tree(tmp_path) == before, f"'{command[0]}' wrote {_tree(tmp_path) - before}"
