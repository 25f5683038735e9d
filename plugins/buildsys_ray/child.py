"""``python -m buildsys_ray.child JOB.json``: a stage's worker process on a Ray node.

It is ``buildsys.run_worker(JOB.json)`` plus a watchdog: when the Ray worker that started
it dies (killed, out of memory, its node lost), this process exits too instead of building on
as an orphan that nobody will collect. Polling the parent id works on every POSIX system,
unlike ``PR_SET_PDEATHSIG``, which also fires when merely the spawning thread ends.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from buildsys import run_worker

EXIT_ORPHANED = 75


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.2)
        if os.getppid() != parent:
            os._exit(EXIT_ORPHANED)


def main(argv: list[str]) -> int:
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="parent-watchdog").start()
    return run_worker(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
