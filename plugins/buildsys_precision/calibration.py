"""Calibration data: where it comes from, its digest, and the checks every batch passes.

``calibration.data`` in the manifest is an entrypoint yielding batches
(``models/cnn.py:calibration_batches``) or a folder of ``.npz`` (one batch per file, arrays
named like the model's inputs) or ``.npy`` files (one batch per file, single-input models).
A batch is a dict ``{input name: array}``, a list/tuple of arrays in input order, or one array
for a single-input model. Samples are counted along each input's sample axis: where it declares
the manifest's batch dim (``state: [2, batch, 128]`` counts along axis 1; see ``sample_axes``).
Batches may differ in size (a short last batch); ``uniform`` regroups them for calibrators that
need one shape.

The digest (plan time, no code runs) hashes the block and the files that produce the data: the
folder's files, or the entrypoint's module and its sibling modules. The batches themselves are
only made inside the ``onnx.int8`` worker.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from buildsys import BuildsysError, entrypoint_files, resolve_entrypoint, user_frame

DATA_SUFFIXES = (".npz", ".npy")


class CalibrationError(BuildsysError):
    """The calibration data is missing, malformed or insufficient."""


# -- plan time ----------------------------------------------------------------------------


def data_digest(block: dict, root: Path | None) -> str:
    """sha256 over the calibration block and the bytes of whatever produces the data."""
    h = hashlib.sha256(json.dumps(block, sort_keys=True).encode())
    for path in _data_files(block["data"], root):
        h.update(path.name.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _data_files(data: str, root: Path | None) -> list[Path]:
    if root is None:
        return []
    folder = Path(root) / data
    if ":" not in data or folder.is_dir():
        if not folder.is_dir():
            raise ValueError(f"calibration.data '{data}' is neither a folder nor an entrypoint "
                             "('path/to/file.py:function' or 'package.module:function')")
        return _folder_files(folder)
    try:
        return entrypoint_files(data, root)
    except BuildsysError as exc:
        raise ValueError(f"calibration.data: {exc.message}") from None


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix in DATA_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise ValueError(f"calibration.data folder {folder} holds no .npz or .npy files")
    return files


# -- in the worker ------------------------------------------------------------------------


def sample_axes(model) -> dict[str, int | None]:
    """Each input's sample axis: where it declares the batch dim — the dim most inputs declare at
    axis 0, else the first dim the first input names. None for an input without it (the same
    array for every sample, e.g. a fixed table)."""
    from collections import Counter

    leading = Counter(spec.shape[0] for spec in model.inputs if spec.shape and isinstance(spec.shape[0], str))
    named = [d for spec in model.inputs for d in spec.shape if isinstance(d, str)]
    batch = leading.most_common(1)[0][0] if leading else (named[0] if named else None)
    axes = {}
    for spec in model.inputs:
        axes[spec.name] = spec.shape.index(batch) if batch in spec.shape else (0 if batch is None and spec.shape else None)
    return axes


def rows_of(array, axis: int | None, start: int, stop: int):
    """Samples ``start:stop`` of ``array`` along its sample ``axis`` (all of it when it has none)."""
    if axis is None:
        return array
    return array[(slice(None),) * axis + (slice(start, stop),)]


def collect(block: dict, model, root: Path, progress=None) -> list[dict[str, Any]]:
    """Exactly ``block['samples']`` samples, as batches ``{input name: array}``, each checked."""
    wanted = block["samples"]
    specs = {spec.name: spec for spec in model.inputs}
    limits = _dim_limits(model)
    axes = sample_axes(model)
    batches, count = [], 0
    for index, raw in _enumerate_batches(block["data"], root):
        batch = _normalise(raw, list(specs), index)
        rows = _check_batch(batch, specs, limits, index, axes)
        take = min(rows, wanted - count)
        batches.append({name: rows_of(array, axes[name], 0, take) for name, array in batch.items()})
        count += take
        if progress:
            progress(count, wanted, "calibration samples")
        if count >= wanted:
            return batches
    raise CalibrationError(f"calibration data gave {count} sample(s); calibration.samples asks for {wanted}",
                           hint="provide more data or lower calibration.samples")


def _enumerate_batches(data: str, root: Path) -> Iterable[tuple[int, Any]]:
    folder = Path(root) / data
    if folder.is_dir():
        yield from enumerate(_load_file(p) for p in _folder_files(folder))
        return
    function = resolve_entrypoint(data, root)
    try:
        iterator = iter(function())
    except Exception as exc:
        raise CalibrationError(f"calibration entrypoint '{data}' raised {type(exc).__name__}: {exc}",
                               where=user_frame(exc, root)) from None
    index = 0
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise CalibrationError(f"calibration entrypoint '{data}' raised {type(exc).__name__} while "
                                   f"producing batch {index}: {exc}", where=user_frame(exc, root)) from None
        yield index, batch
        index += 1


def _load_file(path: Path):
    import numpy as np

    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except Exception as exc:
        raise CalibrationError(f"cannot read calibration file {path}: {type(exc).__name__}: {exc}") from None


def _normalise(raw, names: list[str], index: int) -> dict[str, Any]:
    import numpy as np

    if isinstance(raw, dict):
        unknown = sorted(set(raw) - set(names))
        missing = [n for n in names if n not in raw]
        if unknown or missing:
            raise CalibrationError(f"calibration batch {index}: " + "; ".join(
                ([f"unknown input(s) {unknown}"] if unknown else []) + ([f"missing input(s) {missing}"] if missing else [])),
                hint=f"the model's inputs are {names}")
        return {n: np.asarray(raw[n]) for n in names}
    if isinstance(raw, (list, tuple)):
        if len(raw) != len(names):
            raise CalibrationError(f"calibration batch {index} has {len(raw)} array(s); the model has "
                                   f"{len(names)} input(s) {names}")
        return {n: np.asarray(a) for n, a in zip(names, raw)}
    if hasattr(raw, "shape") and len(names) == 1:
        return {names[0]: np.asarray(raw)}
    raise CalibrationError(f"calibration batch {index} is a {type(raw).__name__}",
                           hint="yield a dict {input name: array}, a list of arrays in input order, "
                                "or one array for a single-input model")


def _dim_limits(model) -> dict[str, tuple[int, int]]:
    limits = {}
    for name, dim in model.dims.items():
        ranges = dim.ranges()
        limits[name] = (min(r[0] for r in ranges), max(r[2] for r in ranges))
    return limits


def _check_batch(batch: dict, specs: dict, limits: dict, index: int, axes: dict) -> int:
    """Samples in the batch; raises on a wrong dtype, rank, dim or a non-finite value."""
    import numpy as np

    rows = None
    for name, array in batch.items():
        spec = specs[name]
        where = f"calibration batch {index}, input '{name}'"
        if str(array.dtype) != spec.dtype:
            raise CalibrationError(f"{where}: dtype {array.dtype}, the manifest declares {spec.dtype}",
                                   hint=f"yield arrays of dtype {spec.dtype} (e.g. array.astype('{spec.dtype}'))")
        if array.ndim != len(spec.shape):
            raise CalibrationError(f"{where}: shape {list(array.shape)} has rank {array.ndim}, the manifest "
                                   f"declares [{', '.join(str(d) for d in spec.shape)}]")
        for axis, (size, declared) in enumerate(zip(array.shape, spec.shape)):
            _check_dim(where, axis, size, declared, limits)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise CalibrationError(f"{where}: {bad} NaN/Inf value(s)", hint="clean the calibration data")
        axis = axes.get(name)
        if axis is None:
            continue
        if rows is not None and array.shape[axis] != rows:
            raise CalibrationError(f"calibration batch {index}: inputs disagree on the number of samples "
                                   f"({rows} vs {array.shape[axis]} along axis {axis} of '{name}')")
        rows = array.shape[axis]
    return rows or 1


def _check_dim(where: str, axis: int, size: int, declared, limits: dict) -> None:
    if isinstance(declared, int):
        if size != declared:
            raise CalibrationError(f"{where}: axis {axis} is {size}, the manifest declares {declared}")
        return
    low, high = limits.get(declared, (1, None))
    if size < low or (high is not None and size > high):
        raise CalibrationError(f"{where}: axis {axis} ('{declared}') is {size}, outside the manifest's "
                               f"dims {declared}: [{low}, {high}]")


def stack(batches: list[dict[str, Any]], axes: dict[str, int | None]) -> dict[str, Any]:
    """One array per input, the batches joined along each input's sample axis (modelopt takes
    the calibration set whole); their other axes must agree."""
    import numpy as np

    names = list(batches[0])
    for name in names:
        axis = axes.get(name)
        shapes = {tuple(d for i, d in enumerate(b[name].shape) if i != axis) for b in batches}
        if len(shapes) > 1:
            raise CalibrationError(f"calibrator 'modelopt' needs every calibration batch in one shape; input "
                                   f"'{name}' comes in {sorted(shapes)}",
                                   hint="pad the batches to one shape, or use options: {onnx.int8: {calibrator: ort}}")
    return {name: batches[0][name] if axes.get(name) is None
            else np.concatenate([b[name] for b in batches], axis=axes[name]) for name in names}


def uniform(batches: list[dict[str, Any]], axes: dict[str, int | None], limits: tuple[int, int] = (1, 1 << 30)):
    """The same samples regrouped into batches of one size, for ONNX Runtime's calibrators (they
    stack every batch's activations, and a short last batch made numpy raise 'inhomogeneous
    shape' deep inside them). The size: the largest divisor of the sample count not above the
    largest batch given, within the batch dim's ``limits``. Batches already of one size, or of
    shapes that differ elsewhere (sequence lengths: those calibrators take them one by one), are
    returned as they are."""
    sizes = {_rows(b, axes) for b in batches}
    if len(sizes) <= 1 or any(len({tuple(d for i, d in enumerate(b[n].shape) if i != axes.get(n)) for b in batches}) > 1
                              for n in batches[0]):
        return batches
    total = sum(_rows(b, axes) for b in batches)
    low, high = limits
    size = next((c for c in range(min(max(sizes), high), 0, -1) if total % c == 0 and c >= low), None)
    if size is None:
        return batches
    joined = stack(batches, axes)
    return [{n: rows_of(a, axes.get(n), start, start + size) for n, a in joined.items()}
            for start in range(0, total, size)]


def _rows(batch: dict, axes: dict) -> int:
    return next((a.shape[axes[n]] for n, a in batch.items() if axes.get(n) is not None), 1)


def sample_digests(batches: list[dict[str, Any]], axes: list[int | None]) -> list[str]:
    """A short digest per sample, to tell held-out samples from calibration ones."""
    return sorted({digest for batch in batches for digest in row_digests(list(batch.values()), axes)})


def row_digests(arrays: list[Any], axes: list[int | None] | None = None) -> list[str]:
    """sha256[:16] of each sample across ``arrays`` (the inputs of one batch, in input order),
    taken along each input's sample axis (``axes``, default 0; None: the whole array)."""
    import numpy as np

    axes = list(axes) if axes is not None else [0] * len(arrays)
    counted = [(a, ax) for a, ax in zip(arrays, axes) if ax is not None and np.ndim(a) > ax]
    rows = counted[0][0].shape[counted[0][1]] if counted else 0
    out = []
    for r in range(rows):
        h = hashlib.sha256()
        for array, axis in zip(arrays, axes):
            part = array if axis is None else np.take(array, r, axis=axis)
            h.update(np.ascontiguousarray(part).tobytes())
        out.append(h.hexdigest()[:16])
    return out
