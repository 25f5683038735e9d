"""Read what planning needs from an .onnx file without importing onnx: its inputs and the
external data files its tensors name.

The driver process imports no ML framework (planning and a no-op rebuild stay light), yet a
``framework: onnx`` source must be fingerprinted and its inputs read at plan time. A ModelProto
is plain protobuf, so this walks the few fields needed (numbers from onnx/onnx.proto3) and skips
the rest by length; tensor payloads are never decoded.
"""

from __future__ import annotations

from pathlib import Path

# onnx.proto3 field numbers
MODEL_GRAPH = 7
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_INPUT = 1, 5, 11
NODE_ATTRIBUTE = 5
ATTRIBUTE_T, ATTRIBUTE_G, ATTRIBUTE_TENSORS, ATTRIBUTE_GRAPHS = 5, 6, 10, 11
TENSOR_NAME, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 8, 13, 14
EXTERNAL = 1


class WireError(ValueError):
    """The bytes are not a protobuf message (a truncated or foreign file)."""


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: memoryview):
    """``(field number, value)`` of a message: an int for varints, a memoryview for bytes."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, kind = tag >> 3, tag & 7
        if kind == 0:
            value, pos = _varint(data, pos)
        elif kind == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise WireError("a field runs past the end of the message")
            value, pos = data[pos:pos + size], pos + size
        elif kind in (1, 5):
            value, pos = None, pos + (8 if kind == 1 else 4)
        else:
            raise WireError(f"wire type {kind} is not protobuf's")
        if number == 0:
            raise WireError("field number 0")
        yield number, value


def _all(data: memoryview, number: int) -> list:
    return [value for n, value in fields(data) if n == number]


def _text(value) -> str:
    return bytes(value).decode("utf-8", errors="replace")


def graph(path: Path) -> memoryview:
    """The GraphProto bytes of the ModelProto in ``path``."""
    found = _all(memoryview(Path(path).read_bytes()), MODEL_GRAPH)
    if not found or not isinstance(found[-1], memoryview):
        raise WireError("no graph in the file")
    return found[-1]


def external_locations(graph_bytes: memoryview) -> set[str]:
    """The ``location`` of every tensor stored outside the file, subgraphs included."""
    found = set()
    for tensor in _tensors(graph_bytes):
        values = dict(fields(tensor))
        if values.get(TENSOR_DATA_LOCATION) == EXTERNAL:
            for entry in _all(tensor, TENSOR_EXTERNAL_DATA):
                pair = dict(fields(entry))
                if _text(pair.get(1, b"")) == "location":
                    found.add(_text(pair.get(2, b"")))
    return found


def _tensors(graph_bytes: memoryview):
    for number, value in fields(graph_bytes):
        if number == GRAPH_INITIALIZER:
            yield value
        elif number == GRAPH_NODE:
            for attribute in _all(value, NODE_ATTRIBUTE):
                for n, item in fields(attribute):
                    if n in (ATTRIBUTE_T, ATTRIBUTE_TENSORS):
                        yield item
                    elif n in (ATTRIBUTE_G, ATTRIBUTE_GRAPHS):
                        yield from _tensors(item)


def inputs(graph_bytes: memoryview) -> list[tuple[str, int | None, list[int | str | None]]]:
    """``(name, elem_type, dims)`` of each graph input that is not an initializer; a dim is its
    size, its symbolic name, or None (unknown); elem_type None for a non-tensor input."""
    initializers = {_text(dict(fields(t)).get(TENSOR_NAME, b"")) for t in _all(graph_bytes, GRAPH_INITIALIZER)}
    found = []
    for value_info in _all(graph_bytes, GRAPH_INPUT):
        info = dict(fields(value_info))
        name = _text(info.get(1, b""))
        if name in initializers:
            continue
        tensor = dict(fields(info.get(2, b""))).get(1)  # TypeProto.tensor_type
        if tensor is None:
            found.append((name, None, []))
            continue
        tensor_fields = dict(fields(tensor))
        shape = tensor_fields.get(2)
        dims = [_dim(d) for d in _all(shape, 1)] if shape is not None else []
        found.append((name, tensor_fields.get(1), dims))
    return found


def _dim(dimension: memoryview) -> int | str | None:
    values = dict(fields(dimension))
    if 2 in values and len(values[2]):
        return _text(values[2])
    return values.get(1)
