"""The one JSON envelope every ``--json`` command prints on stdout (part of the public API, for
plugins' commands too)::

    {"buildsys": "0.1.0", "command": "verify", "ok": true, "exit_code": 0,
     "result": {...}, "error": null}

``result`` is the command's own data (for a failed build, what did succeed); ``error`` is null or
``{"type", "message", "where", "hint"}`` of the ``BuildsysError`` that ended it.
"""

from __future__ import annotations

import json
from typing import Any

ENVELOPE_VERSION = 1


def json_envelope(command: str, result: Any = None, error: BaseException | None = None,
                  exit_code: int = 0) -> dict:
    from .project import buildsys_version

    return {"buildsys": buildsys_version(), "envelope": ENVELOPE_VERSION, "command": command,
            "ok": error is None and exit_code == 0, "exit_code": exit_code, "result": result,
            "error": _error(error) if error is not None else None}


def dumps(envelope: dict) -> str:
    return json.dumps(envelope, indent=1, default=str)


def _error(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "message": getattr(exc, "message", str(exc)),
            "where": getattr(exc, "where", None), "hint": getattr(exc, "hint", None)}
