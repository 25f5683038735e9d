"""YAML loading that remembers where every value came from.

``load(text, filename)`` returns the data and a map from key path (``("targets", "cpu",
"format")``) to 1-based ``(line, column)``, so that schema errors can point at the file. It
rejects duplicate keys, which plain PyYAML silently lets the last one win.
"""

from __future__ import annotations

import yaml

from .errors import ManifestError

Path_ = tuple  # a key path: str keys and int list indices


def load(text: str, filename: str) -> tuple[object, dict[Path_, tuple[int, int]]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(f"malformed YAML: {problem}", where=where,
                            hint="check indentation and that every 'key: value' has a space after the colon") from None
    if node is None:
        raise ManifestError("the manifest is empty", where=filename,
                            hint="start with 'schema: 1', 'name:', 'version:', 'model:' and 'targets:'")
    positions: dict[Path_, tuple[int, int]] = {}
    return _convert(node, (), positions, filename), positions


_constructor = yaml.constructor.SafeConstructor()


def _convert(node: yaml.Node, path: Path_, positions: dict, filename: str) -> object:
    positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        return _convert_mapping(node, path, positions, filename)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), positions, filename) for i, item in enumerate(node.value)]
    try:
        return _constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        line, col = positions[path]
        raise ManifestError(f"bad YAML value: {exc}", where=f"{filename}:{line}:{col}") from None


def _convert_mapping(node: yaml.MappingNode, path: Path_, positions: dict, filename: str) -> dict:
    result: dict = {}
    for key_node, value_node in node.value:
        key = _constructor.construct_object(key_node, deep=True)
        if isinstance(key, (dict, list)):
            raise ManifestError("a mapping key must be a plain value",
                                where=f"{filename}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}")
        key = str(key)
        if key in result:
            line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            raise ManifestError(f"duplicate key '{key}'", where=f"{filename}:{line}:{col}",
                                hint="each key may appear once in a mapping; remove one")
        result[key] = _convert(value_node, path + (key,), positions, filename)
        # Point key errors (unknown key) at the key itself, not at its value.
        positions[path + (key, "<key>")] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
    return result
