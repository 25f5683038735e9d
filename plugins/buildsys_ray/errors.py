"""The Ray executor's errors: what went wrong, where, and how to fix it."""

from __future__ import annotations

from buildsys import BuildsysError, PlanError


class ClusterLacksHardware(PlanError):
    """No alive node of the cluster has the hardware some node must run on (exit code 3)."""


class RayExecutorError(BuildsysError):
    """The Ray executor cannot start: bad options, no address or shared store, cluster unreachable."""
