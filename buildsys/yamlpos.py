"""YAML loading that remembers where every value came from, within fixed bounds.

``load(text, filename)`` returns the data and a map from key path (``("targets", "cpu",
"format")``) to 1-based ``(line, column)``, so that schema errors can point at the file. It
rejects duplicate keys, which plain PyYAML silently lets the last one win.

A manifest is a page of settings, so anything far past that is a mistake or an attack, and is
refused with its position while the document is composed, before it can cost time or memory:

- ``MAX_DEPTH`` levels of nesting, counted through aliases (deeper input would otherwise
  exhaust Python's recursion);
- ``MAX_ALIASES`` uses of an alias (``*name``);
- ``MAX_NODES`` keys and values, counting each alias as everything it repeats, so that an
  alias bomb ("billion laughs") is measured without being expanded;
- an alias inside the value it names (a cycle), a merge key (``<<``), and a key that is not a
  plain scalar.

Only PyYAML's safe constructors run, and only on scalars: no tag can execute code.
"""

from __future__ import annotations

import re

import yaml

from .errors import ManifestError

Path_ = tuple  # a key path: str keys and int list indices

MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 100_000

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SURROGATE = re.compile("[\ud800-\udfff]")


def load(text: str, filename: str) -> tuple[object, dict[Path_, tuple[int, int]]]:
    loader = None
    try:
        loader = _BoundedLoader(text, filename)
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text, filename) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise ManifestError("the manifest is empty (no keys, only blanks or comments)", where=f"{filename}:1:1",
                            hint="start with 'schema: 1', 'name:', 'version:', 'model:' and 'targets:'")
    converter = _Converter(loader, filename)
    return converter.convert(node, ()), converter.positions


def _where(filename: str, mark) -> str:
    return f"{filename}:{mark.line + 1}:{mark.column + 1}"


def _syntax_error(exc: yaml.YAMLError, text: str, filename: str) -> ManifestError:
    if isinstance(exc, yaml.reader.ReaderError):
        return _control_character(exc, text, filename)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = _where(filename, mark) if mark else f"{filename}:1:1"
    problem = getattr(exc, "problem", None) or str(exc)
    return ManifestError(f"malformed YAML: {problem}", where=where,
                         hint="check indentation and that every 'key: value' has a space after the colon")


def _control_character(exc: yaml.reader.ReaderError, text: str, filename: str) -> ManifestError:
    # The reader checks the whole text up front and reports an offset, not a line.
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - text.rfind("\n", 0, exc.position)
    if exc.character >= 0x100:  # U+FFFE, U+FFFF: not characters at all
        return ManifestError(f"character U+{exc.character:04X} is not allowed in YAML",
                             where=f"{filename}:{line}:{column}", hint="delete it")
    return ManifestError(f"control character U+{exc.character:04X} is not allowed in YAML",
                         where=f"{filename}:{line}:{column}",
                         hint=f"delete it; inside a double-quoted string write it as \"\\x{exc.character:02x}\"")


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that counts as it composes and stops at the first bound passed.

    PyYAML composes an alias as a second reference to its anchor's node, so counting here costs
    nothing; the expansion happens later, in ``_Converter``, and only once the totals are known.
    """

    def __init__(self, text: str, filename: str):
        super().__init__(text)
        self.filename = filename
        self._depth = 0  # level of the node being composed; the document's root is 1
        self._deepest = 0  # deepest level reached so far, through aliases too
        self._nodes = 0  # nodes so far, an alias counting as every node it repeats
        self._aliases = 0
        self._measured: dict[yaml.Node, tuple[int, int]] = {}  # finished anchors: (nodes, height)

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        self._enter(event.start_mark)
        nodes_before, deepest_outside = self._nodes, self._deepest
        self._deepest = self._depth
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self._measured[node] = (self._nodes - nodes_before, self._deepest - self._depth)
        self._deepest = max(self._deepest, deepest_outside)
        self._depth -= 1
        return node

    def fetch_flow_collection_start(self, TokenClass):
        # Bounded in the scanner too: it reads up to 1,024 characters ahead, and its simple-key
        # bookkeeping costs time per open '[' or '{', so 1,000 of them took 0.4 s to reach the composer.
        if self.flow_level >= MAX_DEPTH:
            raise self._error(f"nesting deeper than {MAX_DEPTH} levels", self.get_mark(),
                              "a manifest needs a handful of levels; flatten this value")
        super().fetch_flow_collection_start(TokenClass)

    def _enter(self, mark) -> None:
        self._depth += 1
        self._deepest = max(self._deepest, self._depth)
        self._check(1, self._depth, mark)

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise self._error(f"more than {MAX_ALIASES} aliases ('*name')", event.start_mark,
                              "write the values out, or use fewer anchors")
        node = self.anchors.get(event.anchor)
        if node is None:
            return  # the composer reports the undefined alias
        if node not in self._measured:
            raise self._error(f"alias '*{event.anchor}' refers to itself (its anchor is still open here)",
                              event.start_mark, "an alias may only repeat a value that is complete")
        nodes, height = self._measured[node]
        deepest = self._depth + 1 + height
        self._deepest = max(self._deepest, deepest)
        self._check(nodes, deepest, event.start_mark)

    def _check(self, new_nodes: int, depth: int, mark) -> None:
        self._nodes += new_nodes
        if depth > MAX_DEPTH:
            raise self._error(f"nesting deeper than {MAX_DEPTH} levels", mark,
                              "a manifest needs a handful of levels; flatten this value")
        if self._nodes > MAX_NODES:
            raise self._error(f"more than {MAX_NODES} keys and values, counting what aliases repeat",
                              mark, "aliases here repeat too much; write a smaller manifest")

    def _error(self, message: str, mark, hint: str) -> ManifestError:
        return ManifestError(message, where=_where(self.filename, mark), hint=hint)


class _Converter:
    """Turns a composed node graph into plain data, recording the position of each key path."""

    def __init__(self, constructor: yaml.constructor.SafeConstructor, filename: str):
        self.constructor = constructor
        self.filename = filename
        self.positions: dict[Path_, tuple[int, int]] = {}

    def convert(self, node: yaml.Node, path: Path_) -> object:
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict:
        result: dict = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if key in result:
                raise ManifestError(f"duplicate key '{key}'", where=_where(self.filename, key_node.start_mark),
                                    hint="each key may appear once in a mapping; remove one")
            result[key] = self.convert(value_node, path + (key,))
            # Point key errors (unknown key) at the key itself, not at its value.
            self.positions[path + (key, "<key>")] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return result

    def _key(self, node: yaml.Node) -> str:
        where = _where(self.filename, node.start_mark)
        if node.tag == _MERGE_TAG:
            raise ManifestError("merge keys ('<<') are not supported", where=where,
                                hint="repeat the keys in this mapping instead")
        if not isinstance(node, yaml.ScalarNode):
            raise ManifestError("a mapping key must be a plain value", where=where)
        return str(self._scalar(node))

    def _scalar(self, node: yaml.ScalarNode) -> object:
        try:
            value = self.constructor.construct_object(node, deep=True)
        # A constructor raises whatever its conversion does (int() a ValueError, a timestamp
        # that does not match an AttributeError): any of them means this value is bad input.
        except Exception as exc:  # noqa: BLE001
            raise self._bad_value(node, exc) from None
        if isinstance(value, str) and _SURROGATE.search(value):
            raise ManifestError("a string holds a lone surrogate escape (\\ud800-\\udfff), which is not text",
                                where=_where(self.filename, node.start_mark),
                                hint="write the character itself, or escape it as \\UXXXXXXXX")
        return value

    def _bad_value(self, node: yaml.ScalarNode, exc: Exception) -> ManifestError:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        if isinstance(exc, yaml.YAMLError):
            problem = getattr(exc, "problem", None) or str(exc)
        else:  # ValueError from int() or float() says what is wrong; others say nothing useful
            problem = str(exc) if isinstance(exc, ValueError) else "not a value of that type"
        return ManifestError(f"cannot read {node.value[:40]!r} as {tag}: {problem}",
                             where=_where(self.filename, node.start_mark),
                             hint=f"remove the tag {tag}, or write a value of that type")
