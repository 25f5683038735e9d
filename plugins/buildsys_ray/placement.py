"""Where a node may run on the Ray cluster: Ray resources from its hardware tag, checked up front.

A node whose stage must run on particular hardware (``Node.runs_on``: a TARGET or HOST stage,
or the validation of an artifact made for that hardware) asks Ray for a custom resource named
after the hardware tag; operators declare what each machine has when they start it::

    cuda-sm90           ray start --address HEAD:6379 --num-gpus 8 --resources '{"cuda-sm90": 8}'
    cuda-sm86.sm89      a node built on the target for two compute capabilities asks for one
                        resource per capability: "cuda-sm86" and "cuda-sm89"
    cpu-x86_64-avx512   a host-specific CPU build (ORT "all" level, AOTInductor for CPU):
                        ray start ... --resources '{"cpu-x86_64-avx512": 16}'

Each such task asks for 1 unit of each resource, so N is how many of those nodes a machine
builds at once (its GPU count, for GPUs). A node that needs CUDA hardware also asks for
``num_gpus=1``, so Ray hands it one GPU (``CUDA_VISIBLE_DEVICES``). Every task asks for
``num_cpus`` CPUs (1 unless set). Nodes without ``runs_on`` run anywhere.

Pure functions over ``ray.nodes()`` records: unit-tested without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Demand:
    """What one task asks Ray for."""

    resources: tuple[tuple[str, float], ...] = ()
    num_gpus: float = 0
    num_cpus: float = 1

    def ray_options(self) -> dict:
        return {"resources": dict(self.resources), "num_gpus": self.num_gpus, "num_cpus": self.num_cpus}

    def describe(self) -> str:
        parts = [name for name, _ in self.resources]
        parts += [f"{self.num_gpus:g} GPU"] if self.num_gpus else []
        return " + ".join(parts) or f"{self.num_cpus:g} CPU"


def resource_names(tag: str) -> list[str]:
    """The Ray resources a hardware tag stands for: one per CUDA compute capability, else the tag."""
    if tag.startswith("cuda-"):
        return [f"cuda-{sm}" for sm in tag[len("cuda-"):].split(".")]
    return [tag]


def demand_for(runs_on: str | None, num_cpus: float = 1) -> Demand:
    """The task's request for a node that must run on ``runs_on`` (None or ``any``: anywhere)."""
    if not runs_on or runs_on == "any":
        return Demand(num_cpus=num_cpus)
    names = resource_names(runs_on)
    return Demand(resources=tuple((name, 1.0) for name in names),
                  num_gpus=1 if runs_on.startswith("cuda") else 0, num_cpus=num_cpus)


def fits(demand: Demand, node: dict) -> bool:
    """Whether one alive Ray node (a ``ray.nodes()`` record) has everything ``demand`` asks for."""
    have = node.get("Resources", {})
    return bool(node.get("Alive")) and all(have.get(name, 0) >= amount for name, amount in demand.resources) \
        and have.get("GPU", 0) >= demand.num_gpus and have.get("CPU", 0) >= demand.num_cpus


def unmet(demands: dict[str, Demand], nodes: list[dict]) -> dict[Demand, list[str]]:
    """Demands no single alive node meets, each with the graph nodes that make it."""
    missing: dict[Demand, list[str]] = {}
    for node_id, demand in demands.items():
        if not any(fits(demand, node) for node in nodes):
            missing.setdefault(demand, []).append(node_id)
    return missing


def offered(nodes: list[dict]) -> list[str]:
    """The hardware resources alive nodes declare (``cuda-…``, ``cpu-…``), for error messages."""
    names = {name for node in nodes if node.get("Alive") for name in node.get("Resources", {})
             if name.startswith(("cuda-", "cpu-"))}
    return sorted(names)


def start_command(demand: Demand, address: str) -> str:
    """The ``ray start`` line that adds a node meeting ``demand``."""
    resources = ", ".join(f'"{name}": N' for name, _ in demand.resources)
    gpus = " --num-gpus N" if demand.num_gpus else ""
    declared = f" --resources '{{{resources}}}'" if resources else f" --num-cpus {demand.num_cpus:g}"
    return f"ray start --address {address}{gpus}{declared}"
