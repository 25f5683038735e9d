"""The one exception tree of buildsys.

Every message says what went wrong, where (manifest line, target, stage, plugin) and how to
fix it. Only ``buildsys.cli`` turns these into exit codes; library code raises, never exits.
"""

from __future__ import annotations


class BuildsysError(Exception):
    """Root of every error buildsys raises on purpose.

    ``where`` locates the problem (``hello.yaml:12:5``, ``target 'cpu'``, ``plugin 'text'``);
    ``hint`` says how to fix it. Both are optional and rendered on one line by ``str()``.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class ManifestError(BuildsysError):
    """The manifest cannot be read or does not validate; one instance per problem."""


class ManifestErrors(BuildsysError):
    """Several ``ManifestError``s collected from one manifest, reported together."""

    def __init__(self, errors: list[ManifestError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return self.message


class PluginError(BuildsysError):
    """A plugin is broken: it fails to load, misspells a hook, or clashes with another."""


class BackendUnavailable(BuildsysError):
    """A stage needs a package this host lacks; the hint is the install command."""


class PlanError(BuildsysError):
    """A target cannot be planned: no chain of stages reaches it, or hardware is missing."""


class IncompatibleHardware(PlanError):
    """An artifact compiled for a CPU (or device) this machine is not: loading it could die with
    an illegal instruction, so it is refused first (exit 3, as a target that cannot be planned)."""


class StageFailed(BuildsysError):
    """A stage ran and failed; ``where`` names the target and stage."""


class BuildFailed(BuildsysError):
    """One or more nodes failed; carries every failure and what was skipped because of it."""

    def __init__(self, failures: list[str], skipped: list[str], refused: list[str] = ()):
        self.failures = failures
        self.skipped = skipped
        self.refused = list(refused)
        counts = [f"{len(failures)} node(s) failed"] if failures else []
        counts += [f"{len(self.refused)} target(s) refused"] if self.refused else []
        lines = [f"build incomplete: {', '.join(counts)}:"] + [f"  {f}" for f in self.refused + failures]
        if skipped:
            lines.append(f"not built (skipped): {', '.join(skipped)}")
        super().__init__("\n".join(lines))


class InputRejected(BuildFailed):
    """Every node that failed was stopped by a ``ManifestError`` its stage raised: the manifest is
    wrong in a way only the built graph shows (an ``exclude`` entry that matches no node of the
    exported ONNX). Exit 2, like any manifest error; ``failures`` name the entries."""


class CacheError(BuildsysError):
    """The content-addressed store is unreadable or an entry is corrupt."""


class LockMismatch(BuildsysError):
    """``--locked``/``--frozen`` found the lockfile out of date; the message holds the diff."""


class VerifyError(BuildsysError):
    """Artifacts on disk do not match their recorded checksums."""


class RegistryError(BuildsysError):
    """A registry cannot be reached, or refuses an operation."""


class RegistryUnavailable(RegistryError):
    """A registry could not be reached or answered with a transient failure (connection refused
    or reset, timeout, 429, 5xx). Safe to retry: ``buildsys.Retry`` retries exactly these.
    ``retry_after`` is the wait in seconds the registry asked for (its ``Retry-After``), if any."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None,
                 retry_after: float | None = None):
        super().__init__(message, where=where, hint=hint)
        self.retry_after = retry_after


class ImmutableVersion(RegistryError):
    """A different digest was published for a name/version/target that already exists."""


class NotBuilt(VerifyError):
    """A target asked about has no artifact where this project keeps them (never built, or built
    into another artifact root)."""
