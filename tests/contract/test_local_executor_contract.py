"""The builtin local executor passes the executor contract a third-party executor would use."""

from __future__ import annotations

from buildsys.testing import ExecutorContract


class TestLocalExecutor(ExecutorContract):
    executor = "local"

