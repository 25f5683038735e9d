"""A plugin for executor tests: it records the build's lifecycle, and offers a slow stage.

Load it with ``-p buildsys.testing.recorder`` and set ``BUILDSYS_TEST_EVENTS=FILE``: the driver
appends one JSON object per event to FILE — ``build_started`` (with every node's inputs),
``stage_started``, ``stage_finished`` (with the status) and ``build_finished``. Without the
variable it records nothing.

The stage ``contract.wait`` (``text`` -> ``text``, ``options: {contract.wait: {seconds: S}}``)
copies its input after ``S`` seconds, adding a line that says so: put it in a target's ``pipeline`` to make the nodes after
it start late, e.g. well after another node failed. Imports only the standard library, pydantic
and buildsys.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..hookspecs import hookimpl
from ..specs import StageSpec

EVENTS_ENV = "BUILDSYS_TEST_EVENTS"


class WaitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=0.0, ge=0, le=60)


def wait(ctx, inputs, options: WaitOptions) -> dict:
    time.sleep(options.seconds)
    # a line of its own, so that what follows is not a cache hit of the same stage without the wait
    text = inputs[0].primary.read_text(encoding="utf-8") + f"(waited {options.seconds:g} s)\n"
    (Path(ctx.out_dir) / "text.txt").write_text(text, encoding="utf-8")
    return {"primary": "text.txt", "waited": options.seconds}


@hookimpl
def buildsys_register_stages():
    return [StageSpec("contract.wait", consumes=("text",), produces="text", run=wait, options=WaitOptions,
                      description="copy the input (and a line) after a delay (buildsys.testing, for executor tests)")]


def _write(event: dict) -> None:
    path = os.environ.get(EVENTS_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(event) + "\n")


def read_events(path: Path) -> list[dict]:
    """The events recorded in ``path``, in order ([] if none were)."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


@hookimpl
def buildsys_build_started(graph, host, jobs):
    _write({"event": "build_started", "jobs": jobs,
            "inputs": {node_id: list(node.inputs) for node_id, node in graph.nodes.items()}})


@hookimpl
def buildsys_stage_started(node):
    _write({"event": "stage_started", "node": node.id})


@hookimpl
def buildsys_stage_finished(node, outcome):
    _write({"event": "stage_finished", "node": node.id, "status": outcome.status})


@hookimpl
def buildsys_build_finished(outcomes, ok):
    _write({"event": "build_finished", "ok": ok})
