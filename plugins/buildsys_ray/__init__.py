"""The Ray executor: ``buildsys build MANIFEST --executor ray --address HOST:PORT --store URL``.

Every node of the build DAG becomes a Ray task; a node that must run on particular hardware
(``cuda-sm90``, ``cpu-x86_64-avx512`` ...) asks Ray for the custom resource of that name (see
``buildsys_ray.placement`` for the naming operators declare with ``ray start --resources``).
Outputs travel through the shared content-addressed store (``--store``), and the driver
verifies them and writes cache entries, artifacts and the lockfile as the local executor does.
Built only on ``buildsys.__all__``; ray is imported when a build first needs the cluster.
"""

from __future__ import annotations

from buildsys import ExecutorSpec, hookimpl

__version__ = "0.1.0"


def _create(**options):
    from .executor import RayExecutor

    return RayExecutor(**options)


@hookimpl
def buildsys_register_executors():
    return [ExecutorSpec(name="ray", create=_create,
                         description="Ray tasks on a cluster, placed by hardware (--address, --store)")]
