"""The python backend's ``model.py``: copied verbatim into ``<model>/1/`` of a repository.

It serves the buildsys artifact in ``artifact/`` beside it through ``buildsys.load``, on the
device of its instance (``KIND_GPU`` -> cuda, else cpu); names, dtypes and the batch axis come
from the model's configuration. Requests the dynamic batcher groups are run as one batch.

Two facts about Triton's python backend stub shape it: the stub's embedded interpreter ignores
``PYTHONPATH`` (so it is applied here, with ``site.addsitedir``, which also runs the ``.pth``
files of an editable install), and its numpy interop (``as_numpy``, ``Tensor(name, ndarray)``)
is compiled against numpy 1.x and silently corrupts data under numpy 2, so tensors cross by
DLPack instead. Nothing here is imported by buildsys itself.
"""

from __future__ import annotations

import json
import os
import site
import sys
from pathlib import Path

ARTIFACT = "artifact"


def _use_pythonpath() -> None:
    """PYTHONPATH's folders (and what their .pth files add) ahead of the stub interpreter's own
    site-packages, as PYTHONPATH would put them; modules the stub imported before this file
    (numpy, for triton_python_backend_utils) stay those of the stub's interpreter."""
    before = list(sys.path)
    for entry in filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        site.addsitedir(entry)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before


def _quiet_dlpack_capsules() -> None:
    """The stub renames a consumed DLPack capsule; numpy's capsule destructor then reports a
    harmless ValueError as unraisable on every response. Drop exactly that report."""
    default = sys.unraisablehook

    def hook(report):
        if not (report.exc_type is ValueError and "PyCapsule_GetPointer" in str(report.exc_value)):
            default(report)

    sys.unraisablehook = hook


class TritonPythonModel:
    def initialize(self, args):
        _use_pythonpath()
        _quiet_dlpack_capsules()
        import buildsys

        config = json.loads(args["model_config"])
        self.batched = config.get("max_batch_size", 0) > 0
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config.get("output", [])]
        device = "cuda" if args.get("model_instance_kind") == "GPU" else "cpu"
        self.session = buildsys.load(Path(__file__).resolve().parent / ARTIFACT, device=device)
        if not self.outputs:
            self.outputs = [o.name for o in self.session.outputs]

    def execute(self, requests):
        import numpy as np
        import triton_python_backend_utils as pb_utils

        feeds = [{name: np.from_dlpack(pb_utils.get_input_tensor_by_name(r, name)) for name in self.inputs}
                 for r in requests]
        results = self._run(feeds)
        return [pb_utils.InferenceResponse([pb_utils.Tensor.from_dlpack(name, exportable(out[name]))
                                            for name in self.outputs]) for out in results]

    def _run(self, feeds: list[dict]) -> list[dict]:
        """One call for the whole group when batched and shapes agree past the batch axis."""
        import numpy as np

        if not self.batched or len(feeds) == 1 or not _stackable(feeds):
            return [self.session.run(feed) for feed in feeds]
        sizes = [len(next(iter(feed.values()))) for feed in feeds]
        joined = self.session.run({name: np.concatenate([f[name] for f in feeds]) for name in self.inputs})
        bounds = np.cumsum([0] + sizes)
        return [{name: value[a:b] for name, value in joined.items()} for a, b in zip(bounds[:-1], bounds[1:])]

    def finalize(self):
        self.session = None


def exportable(array):
    """``array`` as DLPack can hand it over: C-contiguous and writeable (the stub's DLPack has no
    read-only flag, and runtimes such as JAX return read-only arrays)."""
    import numpy as np

    array = np.ascontiguousarray(array)
    return array if array.flags.writeable else array.copy()


def _stackable(feeds: list[dict]) -> bool:
    first = feeds[0]
    return all(f[name].shape[1:] == first[name].shape[1:] and f[name].dtype == first[name].dtype
               for f in feeds for name in first)
