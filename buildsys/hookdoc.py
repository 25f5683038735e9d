"""Render the hook reference (docs/plugins.md) from buildsys/hookspecs.py, and the extension
hooks the installed backends add (``buildsys_addhooks``).

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
    """(banner title, hook names) in the order hookspecs.py declares them. A banner is the
    comment between two rule lines; its first sentence is the title."""
    source = inspect.getsource(hookspecs)
    sections: list[tuple[str, list[str]]] = []
    banner: list[str] | None = None
    for line in source.splitlines():
        if line.startswith("# ---"):
            if banner:
                sections.append((_title(banner), []))
            banner = [] if banner is None or banner else None
        elif banner is not None and line.startswith("# "):
            banner.append(line[2:].strip())
        elif (hook := re.match(r"^def (buildsys_\w+)\(", line)) and sections:
            banner = None
            sections[-1][1].append(hook.group(1))
    return [(title, hooks) for title, hooks in sections if hooks]


def _title(banner: list[str]) -> str:
    text = " ".join(banner)
    return re.split(r"(?<=\.)\s", text, maxsplit=1)[0].rstrip(".:")


def extension_hooks() -> dict[str, list]:
    """``{declaring module: [hook function, ...]}`` for the hooks installed backends add."""
    from . import plugins

    pm = plugins.load()
    found: dict[str, list] = {}
    for name in sorted(vars(pm.hook)):
        caller = getattr(pm.hook, name)
        spec = getattr(caller, "spec", None)
        if spec is not None and spec.namespace is not hookspecs:
            found.setdefault(spec.namespace.__name__, []).append(spec.function)
    return found


def _entry(name: str, function) -> str:
    signature = str(inspect.signature(function)).replace("'", "")
    return f"### `{name}{signature}`\n\n{inspect.getdoc(function)}\n"


def render() -> str:
    major, minor = hookspecs.CONTRACT_VERSION.split(".")[:2]
    parts = [HEADER.format(version=hookspecs.CONTRACT_VERSION, major=major, minor=minor,
                           next_major=int(major) + 1)]
    for title, hooks in _sections():
        parts.append(f"## {title}\n")
        parts += [_entry(name, getattr(hookspecs, name)) for name in hooks]
    for module, functions in extension_hooks().items():
        parts.append(f"## Extension hooks of `{module.split('.')[0]}` (declared in `{module}`)\n")
        parts += [_entry(f.__name__, f) for f in functions]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
