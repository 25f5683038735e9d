"""The builtin ``terminal`` plugin: progress of a build on stderr.

When a command that builds asks for progress (``buildsys_configure`` with ``progress`` set), it
registers a ``TerminalReporter``, a plugin of the lifecycle hooks: on a terminal, a live table of
running nodes with elapsed time and progress, and one line per settled node; elsewhere (CI,
pipes) the settled lines only. Everything goes to stderr, so ``--json`` output on stdout stays
clean. ``-p no:terminal`` blocks it (another reporter plugin may take its place).
"""

from __future__ import annotations

import os
import threading
import time

from ..hookspecs import hookimpl
from ..records import BUILT, CACHED, FAILED, RESOLVED, SKIPPED

_STYLE = {BUILT: "green", CACHED: "cyan", FAILED: "bold red", SKIPPED: "yellow", RESOLVED: "dim"}


HEARTBEAT_SECONDS = 30.0  # without a live display (CI logs): a line per running node this often


class TerminalReporter:
    """Node lines name the targets a node serves; a live table on a terminal; elsewhere, a
    heartbeat line for every node still running (``BUILDSYS_HEARTBEAT_SECONDS``), so a CI log
    shows a long export is alive even when its stage reports no progress."""

    def __init__(self, quiet: bool = False, live: bool | None = None):
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.live_enabled = self.console.is_terminal if live is None else live
        self.running: dict[str, float] = {}
        self.progress: dict[str, str] = {}
        self.labels: dict[str, str] = {}
        self.total = 0
        self.done = 0
        self._live = None
        self._heartbeat: threading.Event | None = None

    @hookimpl
    def buildsys_build_started(self, graph, host, jobs):
        self.total = sum(1 for n in graph.nodes.values() if not n.is_source)
        self.labels = {n: _label(n, graph.targets_using(n)) for n in graph.nodes}
        if self.quiet:
            return
        if self.live_enabled:
            from rich.live import Live

            self._live = Live(self._render(), console=self.console, refresh_per_second=8,
                              transient=True, get_renderable=self._render)
            self._live.start()
        else:
            self._start_heartbeat(float(os.environ.get("BUILDSYS_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)))

    @hookimpl
    def buildsys_stage_started(self, node):
        self.running[node.id] = time.perf_counter()

    @hookimpl
    def buildsys_stage_progress(self, node, done, total, message):
        # a fraction only while it says something: 0% until the end tells nothing
        percent = f"{100 * done / total:3.0f}% " if total and 0 < done < total else ""
        self.progress[node.id] = f"{percent}{message}".strip()

    @hookimpl
    def buildsys_stage_finished(self, node, outcome):
        self.running.pop(node.id, None)
        self.progress.pop(node.id, None)
        if node.is_source:
            return
        self.done += 1
        if self.quiet and outcome.ok and not outcome.warnings:
            return
        detail = f" {outcome.seconds:.2f}s" if outcome.status == BUILT else ""
        reason = f": {outcome.error}" if outcome.error else ""
        style = _STYLE.get(outcome.status, "")
        from rich.markup import escape

        self.console.print(f"[{self.done}/{self.total}] [{style}]{outcome.status:>7}[/] "
                           f"{escape(self.labels.get(node.id, node.id))}{detail}{escape(reason)}",
                           markup=True, soft_wrap=True)
        for warning in outcome.warnings:
            self.console.print(f"        [yellow]warning:[/] {escape(warning)}", markup=True, soft_wrap=True)

    @hookimpl
    def buildsys_build_finished(self, outcomes, ok):
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._heartbeat is not None:
            self._heartbeat.set()
            self._heartbeat = None

    def _start_heartbeat(self, every: float) -> None:
        stop = self._heartbeat = threading.Event()

        def beat():
            while not stop.wait(every):
                now = time.perf_counter()
                for node_id, started in list(self.running.items()):
                    note = self.progress.get(node_id, "")
                    self.console.print(f"        running {self.labels.get(node_id, node_id)} {now - started:.0f}s"
                                       f"{' ' + note if note else ''}", markup=False, soft_wrap=True)

        threading.Thread(target=beat, name="buildsys-heartbeat", daemon=True).start()

    def _render(self):
        from rich.markup import escape
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        now = time.perf_counter()
        for node_id, started in list(self.running.items()):
            table.add_row("[blue]running[/]", escape(self.labels.get(node_id, node_id)), f"{now - started:5.1f}s",
                          escape(self.progress.get(node_id, "")))
        table.add_row("", f"[dim]{self.done}/{self.total} settled[/]", "", "")
        return table


def _label(node_id: str, targets: list[str]) -> str:
    """``onnx.fp16#6f24191571 (cpu-fp16)``: the node and the targets it serves."""
    if not targets:
        return node_id
    shown = ", ".join(targets[:3]) + (f" +{len(targets) - 3}" if len(targets) > 3 else "")
    return f"{node_id} ({shown})"


@hookimpl
def buildsys_configure(pluginmanager, settings):
    if settings.get("progress"):
        pluginmanager.register(TerminalReporter(quiet=bool(settings.get("quiet"))), name="terminal-reporter")
