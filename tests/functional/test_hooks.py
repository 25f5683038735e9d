"""Plugin hooks end to end: lifecycle hooks seen by a plugin registered in-process, and
broken plugins (unknown hook, bad signature, clashing kind, failed import, another contract,
a stage raising inside ``run``) as the command line reports them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from buildsys import hookimpl
from buildsys.builder import BuildOptions, build
from buildsys.project import Project


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def buildsys_build_started(self, graph, host, jobs):
        self.events.append(("started", len(graph.nodes), jobs))

    @hookimpl
    def buildsys_stage_started(self, node):
        self.events.append(("stage_started", node.stage))

    @hookimpl
    def buildsys_stage_progress(self, node, done, total, message):
        self.events.append(("progress", node.stage, done, total, message))

    @hookimpl
    def buildsys_stage_finished(self, node, outcome):
        self.events.append(("stage_finished", node.stage, outcome.status))

    @hookimpl
    def buildsys_build_finished(self, outcomes, ok):
        self.events.append(("finished", ok))


def test_lifecycle_order_and_progress(hello):
    (hello.root / "manifest.yaml").write_text((hello.root / "manifest.yaml").read_text().replace(
        "stats:      {format: text.stats}", "stats:      {format: text.stats, options: {text.wordcount: {delay: 1.0}}}"))
    project = Project(hello.root / "manifest.yaml")
    recorder = Recorder()
    project.pm.register(recorder)
    build(project, BuildOptions(targets=["stats"], jobs=2))
    events = recorder.events
    assert events[0] == ("started", 3, 2) and events[-1] == ("finished", True)
    assert events.index(("stage_started", "text.wordcount")) > events.index(("stage_finished", "text.normalize", "built"))
    progress = [e for e in events if e[0] == "progress"]
    assert len(progress) >= 5 and progress[0][1] == "text.wordcount" and progress[-1][3] == 10.0
    assert all(e[4] == "counting" for e in progress)
    assert events.index(progress[-1]) < events.index(("stage_finished", "text.wordcount", "built"))


# -- bad plugins, through the command line ------------------------------------------------------

TESTS = Path(__file__).resolve().parents[1]


def with_path(*paths: Path) -> dict:
    return {"PYTHONPATH": os.pathsep.join([*map(str, paths), os.environ.get("PYTHONPATH", "")])}


def fake_install(site: Path, entry_points: dict[str, str]) -> Path:
    """A distribution (metadata only) in ``site`` declaring these ``buildsys`` entry points."""
    info = site / "buildsys_fixture_dist-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: buildsys-fixture-dist\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[buildsys]\n" + "".join(f"{n} = {m}\n" for n, m in entry_points.items()))
    return site


@pytest.mark.parametrize("module, fragments", [
    ("misspelt", ["buildsys_register_stage", "unknown hook"]),
    ("bad_signature", ["buildsys_stage_finished", "'result'"]),
    ("kind_collision", ["kind 'text'", "plugin 'text'"]),
    ("import_fails", ["buildsys_fixture_dependency_that_is_not_installed"]),
    ("future_contract", [">=2,<3", "contract 1."]),
])
def test_a_broken_plugin_named_with_p_is_a_one_line_error(hello, module, fragments):
    result = hello.cli("-p", f"fixture_plugins.{module}", "build", "manifest.yaml", env=with_path(TESTS))
    result.assert_error(8, f"'fixture_plugins.{module}'", *fragments)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_installed_plugins_that_cannot_load_are_named_and_the_rest_work(hello, tmp_path):
    env = with_path(fake_install(tmp_path / "site", {"importfails": "fixture_plugins.import_fails",
                                                      "future": "fixture_plugins.future_contract"}), TESTS)
    listing = hello.cli("plugins", env=env)
    listing.assert_error(8, "2 installed plugin(s) could not be loaded: future, importfails")
    assert "plugin contract: 1." in listing.stdout and "text.normalize" in listing.stdout
    broken = [line for line in listing.stdout.splitlines() if "BROKEN" in line]
    assert len(broken) == 2 and "built for buildsys plugin contract >=2,<3" in broken[0]
    assert "failed to import fixture_plugins.import_fails" in broken[1]

    built = hello.cli("build", "manifest.yaml", "-t", "normalized", env=env).assert_ok()
    built.assert_nodes(built=["text.normalize"])
    warnings = [line for line in built.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and "plugin 'future'" in warnings[0] and "plugin 'importfails'" in warnings[1]


def test_a_stage_raising_inside_run_fails_its_node_only(hello):
    hello.write("manifest.yaml", (hello.root / "manifest.yaml").read_text() + "  ratio: {format: fixture.ratio}\n")
    result = hello.cli("-p", "fixture_plugins.raises_in_run", "build", "manifest.yaml", "-k", "-t", "ratio",
                       "-t", "normalized", "-t", "stats", env=with_path(TESTS))
    result.assert_error(1, "fixture.divide", "ZeroDivisionError: division by zero", "[targets: ratio]")
    result.assert_nodes(failed=["fixture.divide"], built=["text.normalize", "text.wordcount"], skipped=0)
    log = Path(re.search(r"\(log: ([^)]+)\)", result.stderr).group(1)).read_text()
    assert "about to divide" in log and "Traceback" in log and "1 / 0" in log
    assert (hello.out / "hello" / "1.0.0" / "stats").is_dir() and not (hello.out / "hello" / "1.0.0" / "ratio").exists()


def test_a_stage_that_writes_into_its_input_fails_and_the_cache_is_not_left_damaged(hello):
    """Inputs are hard links to cache blobs (and root ignores their read-only mode): a stage that
    rewrites one fails naming it, the damaged blob is dropped, and the next build rebuilds it."""
    hello.write("manifest.yaml", (hello.root / "manifest.yaml").read_text() + "  loud: {format: fixture.loud}\n")
    env = with_path(TESTS)
    result = hello.cli("-p", "fixture_plugins.writes_its_input", "build", "manifest.yaml", "-t", "loud", env=env)
    result.assert_error(1, "fixture.shout", "the stage wrote into its input", "[targets: loud]")
    assert not (hello.out / "hello" / "1.0.0" / "loud").exists()
    rebuilt = hello.cli("build", "manifest.yaml", "-t", "normalized", env=env).assert_ok()
    rebuilt.assert_nodes(built=["text.normalize"])  # its damaged output was dropped from the cache
    assert "hello, world" in next((hello.out / "hello" / "1.0.0" / "normalized").glob("*.txt")).read_text().lower()
    assert "HELLO" not in next((hello.out / "hello" / "1.0.0" / "normalized").glob("*.txt")).read_text()
