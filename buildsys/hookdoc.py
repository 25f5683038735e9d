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

Contract version: **{version}** (`buildsys.CONTRACT_VERSION`). Implement a hook with a function of
the same name decorated with `buildsys.hookimpl`, in a module registered under the `buildsys`
entry-point group. An implementation may take fewer arguments than the spec lists.

Minor versions add hooks or arguments; a major version removes some. Declare the versions your
plugin supports in its module, as a PEP 440 specifier set:

```python
BUILDSYS_CONTRACT = ">={major}.{minor},<{next_major}"
```

An installed plugin whose range excludes this buildsys's contract is not loaded: every command
says so, naming the plugin, and `buildsys plugins` lists it as broken. `buildsys new-plugin`
writes this line for you; `docs/first-backend.md` walks through a whole backend.
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
    major, minor = hookspecs.CONTRACT_VERSION.split(".")[:2]
    parts = [HEADER.format(version=hookspecs.CONTRACT_VERSION, major=major, minor=minor,
                           next_major=int(major) + 1)]
    for title, hooks in _sections():
        parts.append(f"## {title}\n")
        for name in hooks:
            function = getattr(hookspecs, name)
            signature = str(inspect.signature(function)).replace("'", "")
            parts.append(f"### `{name}{signature}`\n\n{inspect.getdoc(function)}\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
