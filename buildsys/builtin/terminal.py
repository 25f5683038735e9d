"""The builtin ``terminal`` plugin: progress of a build on stderr.

When a command that builds asks for progress (``buildsys_configure`` with ``progress`` set), it
registers a ``TerminalReporter``, a plugin of the lifecycle hooks: on a terminal, a live table of
running nodes with elapsed time and progress, and one line per settled node; elsewhere (CI,
pipes) the settled lines only. Everything goes to stderr, so ``--json`` output on stdout stays
clean. ``-p no:terminal`` blocks it (another reporter plugin may take its place).
"""

from __future__ import annotations

import time

from ..hookspecs import hookimpl
from ..records import BUILT, CACHED, FAILED, RESOLVED, SKIPPED

_STYLE = {BUILT: "green", CACHED: "cyan", FAILED: "bold red", SKIPPED: "yellow", RESOLVED: "dim"}


class TerminalReporter:
    def __init__(self, quiet: bool = False, live: bool | None = None):
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.live_enabled = self.console.is_terminal if live is None else live
        self.running: dict[str, float] = {}
        self.progress: dict[str, str] = {}
        self._last_note: dict[str, float] = {}
        self.total = 0
        self.done = 0
        self._live = None

    @hookimpl
    def buildsys_build_started(self, graph, host, jobs):
        self.total = sum(1 for n in graph.nodes.values() if not n.is_source)
        if self.live_enabled and not self.quiet:
            from rich.live import Live

            self._live = Live(self._render(), console=self.console, refresh_per_second=8,
                              transient=True, get_renderable=self._render)
            self._live.start()

    @hookimpl
    def buildsys_stage_started(self, node):
        self.running[node.id] = time.perf_counter()

    @hookimpl
    def buildsys_stage_progress(self, node, done, total, message):
        percent = f"{100 * done / total:3.0f}%" if total else f"{done:g}"
        self.progress[node.id] = f"{percent} {message}".strip()
        now = time.perf_counter()
        # Without a live display (CI logs), say something about long nodes every 10 seconds.
        if self._live is None and not self.quiet and now - self._last_note.get(node.id, self.running.get(node.id, now)) >= 10:
            self._last_note[node.id] = now
            elapsed = now - self.running.get(node.id, now)
            self.console.print(f"        running {node.id} {elapsed:.0f}s {self.progress[node.id]}", soft_wrap=True)

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
        self.console.print(f"[{self.done}/{self.total}] [{style}]{outcome.status:>7}[/] {node.id}{detail}{reason}",
                           markup=True, soft_wrap=True)
        if outcome.warnings:
            from rich.markup import escape

            for warning in outcome.warnings:
                self.console.print(f"        [yellow]warning:[/] {escape(warning)}", markup=True, soft_wrap=True)

    @hookimpl
    def buildsys_build_finished(self, outcomes, ok):
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self):
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        now = time.perf_counter()
        for node_id, started in self.running.items():
            table.add_row("[blue]running[/]", node_id, f"{now - started:5.1f}s", self.progress.get(node_id, ""))
        table.add_row("", f"[dim]{self.done}/{self.total} settled[/]", "", "")
        return table


@hookimpl
def buildsys_configure(pluginmanager, settings):
    if settings.get("progress"):
        pluginmanager.register(TerminalReporter(quiet=bool(settings.get("quiet"))), name="terminal-reporter")
