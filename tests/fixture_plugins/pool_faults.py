"""Stages for the warm worker pool's tests: one that reports its process and pollutes it, one
that hangs past its timeout, one that leaks memory, one that must run in a process of its own."""

import json
import os
import select
import sys
import time

from pydantic import BaseModel, ConfigDict

from buildsys import KindSpec, StageSpec, hookimpl

#: A stage polluting its process sets this variable and this sys.path entry; the next job must not see them.
POLLUTION = "FIXTURE_POOL_POLLUTED"
_leaked: list[bytearray] = []


class Tagged(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: int = 0
    mb: int = 0


def _stdin() -> str:
    """What reading stdin would give, without blocking: a pooled worker's requests must not be it."""
    if not select.select([0], [], [], 0)[0]:
        return "nothing yet (a pipe left open)"
    data = os.read(0, 1 << 16)
    return data.decode(errors="replace") if data else "end-of-file"


def _report(ctx, extra: dict | None = None) -> dict:
    seen = {"pid": os.getpid(), "cwd": os.getcwd(), "stdin": _stdin(), "polluted_env": os.environ.get(POLLUTION),
            "polluted_path": POLLUTION in sys.path, "leaked_mb": sum(map(len, _leaked)) // 2**20, "at": time.time(),
            **(extra or {})}
    (ctx.out_dir / "pid.json").write_text(json.dumps(seen))
    return {"primary": "pid.json", **seen}


def report_and_pollute(ctx, inputs, options):
    seen = _report(ctx)
    os.environ[POLLUTION] = "yes"
    sys.path.append(POLLUTION)
    os.chdir("/")
    return seen


def hang(ctx, inputs, options):
    pid_file = os.environ.get("FIXTURE_HANG_PID_FILE")
    if pid_file:
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
    ctx.progress(0, 1, "hanging")
    time.sleep(600)


def leak(ctx, inputs, options):
    block = bytearray(options.mb * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page: resident, not just reserved
    _leaked.append(block)
    return _report(ctx)


@hookimpl
def buildsys_register_kinds():
    return [KindSpec(f"fixture.{name}", 3, f"what the fixture.{name} stage saw of its process")
            for name in ("seen", "hung", "leaked", "alone")]


@hookimpl
def buildsys_register_stages():
    common = dict(consumes=("text",), options=Tagged, deterministic=False)
    return [StageSpec("fixture.seen", produces="fixture.seen", run=report_and_pollute, **common),
            StageSpec("fixture.hang", produces="fixture.hung", run=hang, timeout=1.0, **common),
            StageSpec("fixture.leak", produces="fixture.leaked", run=leak, **common),
            StageSpec("fixture.alone", produces="fixture.alone", run=report_and_pollute, isolated=True, **common)]
