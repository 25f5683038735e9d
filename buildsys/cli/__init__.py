"""The ``buildsys`` command line: the only place where errors become exit codes.

Exit codes (``ExitCode``)::

    0   success
    1   a build ran and some node failed            (BuildFailed, StageFailed)
    2   bad input: manifest, options, usage          (ManifestError, InputRejected, click usage errors)
    3   a target cannot be planned                   (PlanError)
    4   the lockfile would change (--locked/--frozen) (LockMismatch)
    5   artifacts do not match their checksums       (VerifyError)
    6   a registry refused or failed                 (RegistryError, ImmutableVersion)
    7   a needed backend is not installed            (BackendUnavailable)
    8   a plugin is broken                           (PluginError)
    9   the cache is unreadable                      (CacheError)
    10  a target is not built (here)                 (NotBuilt)
    70  internal error (a bug: rerun with --traceback and report it)
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import sys

import click

from .. import errors
from .common import ExitCode


_CODES = [
    (errors.InputRejected, ExitCode.BAD_INPUT),
    (errors.BuildFailed, ExitCode.BUILD_FAILED),
    (errors.StageFailed, ExitCode.BUILD_FAILED),
    (errors.ManifestError, ExitCode.BAD_INPUT),
    (errors.ManifestErrors, ExitCode.BAD_INPUT),
    (errors.PlanError, ExitCode.PLAN_REFUSED),
    (errors.LockMismatch, ExitCode.LOCK_MISMATCH),
    (errors.NotBuilt, ExitCode.NOT_BUILT),
    (errors.VerifyError, ExitCode.VERIFY_FAILED),
    (errors.RegistryError, ExitCode.REGISTRY),
    (errors.BackendUnavailable, ExitCode.BACKEND_UNAVAILABLE),
    (errors.PluginError, ExitCode.PLUGIN),
    (errors.CacheError, ExitCode.CACHE),
]


def exit_code_for(exc: BaseException) -> ExitCode:
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return ExitCode.BAD_INPUT if isinstance(exc, errors.BuildsysError) else ExitCode.INTERNAL


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``buildsys`` console script."""
    from .app import cli

    argv = sys.argv[1:] if argv is None else argv
    show_traceback = "--traceback" in argv
    _interrupt_on_termination()
    try:
        returned = cli.main(args=argv, prog_name="buildsys", standalone_mode=False)
        if isinstance(returned, int):  # ctx.exit(code) in non-standalone mode
            return returned
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return ExitCode.BAD_INPUT
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted: nothing half-written was kept; rerun to continue", err=True)
        return ExitCode.INTERRUPTED
    except errors.BuildsysError as exc:
        if show_traceback:
            raise
        click.secho(f"error: {exc}", err=True, fg="red")
        code = exit_code_for(exc)
        if "--json" in argv:
            _json_error(argv, exc, code)
        return code
    except Exception as exc:
        if show_traceback:
            raise
        click.secho(f"internal error: {type(exc).__name__}: {exc} (rerun with --traceback and report it)",
                    err=True, fg="red")
        return ExitCode.INTERNAL
    finally:
        _trace_imports()
    return ExitCode.OK


def _json_error(argv: list[str], exc: BaseException, code: int) -> None:
    """The envelope of a ``--json`` command that failed, on stdout (what it did, if it says)."""
    from ..envelope import dumps, json_envelope
    from .common import command_of

    click.echo(dumps(json_envelope(command_of(argv) or "", getattr(exc, "json_result", None), exc, int(code))))


def _interrupt_on_termination() -> None:
    """SIGTERM/SIGHUP (CI cancel, docker stop, a closed terminal) stop the build like Ctrl-C:
    the executor then terminates its workers and removes their work folders."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def _trace_imports() -> None:
    """With BUILDSYS_TRACE_IMPORTS=FILE, append the modules the CLI imported (for tests)."""
    import os

    trace = os.environ.get("BUILDSYS_TRACE_IMPORTS")
    if trace:
        import json

        with open(trace, "a") as f:
            f.write(json.dumps({"process": "cli", "argv": sys.argv[1:], "modules": sorted(sys.modules)}) + "\n")


def run() -> None:
    sys.exit(main())
