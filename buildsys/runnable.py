"""Whether this host can run a built artifact, and why not: one answer for ``buildsys bench``
(which lists what it cannot time) and ``buildsys.load`` (which refuses with the reason)."""

from __future__ import annotations

from .errors import BackendUnavailable, BuildsysError, IncompatibleHardware


def refusal(host, runners: dict, record: dict, device: str, chosen: str) -> BuildsysError | None:
    """The error that says why ``record``'s artifact cannot run here on ``device`` (``cpu`` or
    ``cuda``), or None when it can. ``chosen`` says where the device choice came from, for the
    message (``--device``, ``device='cpu'``).

    ``IncompatibleHardware``: built for hardware (or a CPU microarchitecture) this host lacks;
    ``BackendUnavailable``: no runner for the kind, its package missing, a runtime outside the
    range the artifact was built for, or a precision the runner does not run here.
    """
    from .artifacts import runtime_mismatches
    from .hardware import CPU_TARGET, check_cpu_target, parse

    hardware = record.get("hardware", "any")
    if hardware != "any":
        try:
            offered = host.match(parse(hardware))
        except Exception:  # a tag this buildsys cannot parse: say so rather than guess
            offered = None
        if offered is None:
            return IncompatibleHardware(f"built for {hardware}; this host offers "
                                        f"{', '.join(str(t) for t in host.tags())}")
        if str(offered).startswith("cuda") and device != "cuda":
            return IncompatibleHardware(f"built for {hardware}; running on {device} ({chosen})")
    try:
        check_cpu_target((record.get("meta") or {}).get(CPU_TARGET), "it")
    except IncompatibleHardware as exc:
        return exc
    kind = record.get("kind")
    runner = runners.get(kind)
    if runner is None:
        return BackendUnavailable(f"no runner for kind {kind} on this host (no installed plugin registers one)",
                                  hint="install the plugin that builds this kind (buildsys plugins lists them)")
    mismatches = runtime_mismatches(record)
    if mismatches:
        return BackendUnavailable("; ".join(mismatches), hint="install a runtime in the range it was built for")
    for requirement in runner.requires:
        if requirement.installed_version() is None:
            return BackendUnavailable(f"runner '{runner.name}' needs {requirement.distribution} "
                                      f"({requirement.install or 'pip install ' + requirement.distribution})")
    if runner.precisions is not None and record.get("precision") not in runner.precisions:
        return BackendUnavailable(f"runner '{runner.name}' runs {', '.join(runner.precisions)} here, "
                                  f"not {record.get('precision')}")
    return None


def runs_on(call, device: str) -> str:
    """Where a loaded runner really runs: ONNX Runtime falls back to the CPU (saying so only in
    its log) when asked for CUDA without the libraries; its ``providers`` tell."""
    providers = getattr(call, "providers", None)
    if device == "cuda" and providers is not None and not any("CUDA" in p or "Tensorrt" in p for p in providers):
        return "cpu"
    return device
