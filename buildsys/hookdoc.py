"""Render the hook reference (docs/plugins.md) from buildsys/hookspecs.py.

``python -m buildsys.hookdoc > docs/plugins.md``; a test keeps the committed file in sync.
"""

from __future__ import annotations

import inspect
import re

from . import hookspecs

HEADER = """# buildsys plugin hooks

Generated from `buildsys/hookspecs.py` by `python -m buildsys.hookdoc` — do not edit by hand;
`tests/unit/test_hookdoc.py` fails when this file and the contract disagree.

Contract version: **{version}**. Implement a hook with a function of the same name decorated with
`buildsys.hookimpl`, in a module registered under the `buildsys` entry-point group. An
implementation may take fewer arguments than the spec lists.
"""


def _sections() -> list[tuple[str, list[str]]]:
    """(banner title, hook names) in the order hookspecs.py declares them."""
    source = inspect.getsource(hookspecs)
    sections: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        banner = re.match(r"^# (\S.*[.:])\s*$", line)
        hook = re.match(r"^def (buildsys_\w+)\(", line)
        if banner and not line.startswith("# ---"):
            sections.append((banner.group(1).rstrip(".:"), []))
        elif hook and sections:
            sections[-1][1].append(hook.group(1))
    return [(title, hooks) for title, hooks in sections if hooks]


def render() -> str:
    parts = [HEADER.format(version=hookspecs.CONTRACT_VERSION)]
    for title, hooks in _sections():
        parts.append(f"## {title}\n")
        for name in hooks:
            function = getattr(hookspecs, name)
            signature = str(inspect.signature(function)).replace("'", "")
            parts.append(f"### `{name}{signature}`\n\n{inspect.getdoc(function)}\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
