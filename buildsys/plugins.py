"""Plugin manager factory and the per-invocation registry of catalog.

Nothing here runs at import. ``load(config)`` builds a fresh ``pluggy.PluginManager`` with the
builtins (``DEFAULT_PLUGINS``), the entry points of group ``buildsys`` allowed by ``config``,
and any extra modules named with ``-p`` or ``BUILDSYS_PLUGIN_MODULES``; then
``Catalog.collect(pm)`` gathers what they register.

A plugin may declare the contract versions it supports with a module attribute,
``BUILDSYS_CONTRACT = ">=1.1,<2"`` (a PEP 440 specifier set, checked against
``buildsys.CONTRACT_VERSION``). An installed plugin that cannot be used (it fails to import,
or was built for another contract) is left out with a warning naming it, and the others load;
one asked for by name (``-p MODULE``) is an error. A plugin that loads but breaks the contract
(an unknown hook, a signature the spec lacks, a name another plugin owns) is always an error.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .builtin import DEFAULT_PLUGINS
from .errors import BuildsysError, PluginError

ENTRY_POINT_GROUP = "buildsys"
CONTRACT_ATTRIBUTE = "BUILDSYS_CONTRACT"
MODULES_ENV = "BUILDSYS_PLUGIN_MODULES"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginConfig:
    """Which plugins to load: passed verbatim to worker processes so they load the same set.

    ``allow``: entry-point names to load (None: all); from ``BUILDSYS_PLUGINS=a,b``.
    ``block``: names never loaded, from ``-p no:NAME``. ``extra``: modules from ``-p MODULE``
    and ``BUILDSYS_PLUGIN_MODULES=mod_a,mod_b`` (for plugins that are not installed, e.g. a
    plugin's own test suite run from its source tree).
    """

    allow: tuple[str, ...] | None = None
    block: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, options: tuple[str, ...] = (), env: dict | None = None) -> PluginConfig:
        env = os.environ if env is None else env
        allow = env.get("BUILDSYS_PLUGINS")
        block = tuple(o[3:] for o in options if o.startswith("no:"))
        extra = tuple(o for o in options if not o.startswith("no:"))
        extra += tuple(m for m in _split(env.get(MODULES_ENV, "")) if m not in extra)
        return cls(allow=tuple(_split(allow)) if allow is not None else None, block=block, extra=extra)

    def to_json(self) -> dict:
        return {"allow": self.allow, "block": list(self.block), "extra": list(self.extra)}

    @classmethod
    def from_json(cls, data: dict) -> PluginConfig:
        allow = data.get("allow")
        return cls(tuple(allow) if allow is not None else None, tuple(data["block"]), tuple(data["extra"]))


def _split(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers the installed plugins it had to leave out.

    ``broken`` maps each such plugin's name to the ``PluginError`` saying why.
    """

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.broken: dict[str, PluginError] = {}
        self.add_hookspecs(hookspecs)
        # Each plugin implementing it is called as it is registered: backends add their own hooks.
        self.hook.buildsys_addhooks.call_historic(kwargs={"pluginmanager": self})


def load(config: PluginConfig | None = None) -> PluginManager:
    """A new plugin manager with builtins, allowed entry points and extras, validated."""
    config = config or PluginConfig()
    pm = PluginManager()
    for module_name in DEFAULT_PLUGINS:
        if module_name.rsplit(".", 1)[-1] not in config.block:
            _register(pm, importlib.import_module(module_name), module_name)
    for ep in _entry_points():
        if ep.name in config.block or (config.allow is not None and ep.name not in config.allow):
            continue
        _load_installed(pm, ep)
    for module_name in config.extra:
        _register(pm, _import_extra(module_name), module_name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc), where=f"plugin '{_plugin_name(pm, exc.plugin)}'",
                          hint="a function named buildsys_* must match a hook in buildsys.hookspecs") from exc
    return pm


def _load_installed(pm: PluginManager, ep: importlib.metadata.EntryPoint) -> None:
    """Register one entry point; if it cannot be used, record why and carry on without it."""
    try:
        plugin = _load_entry_point(ep)
        check_contract(plugin, ep.name)
    except PluginError as exc:
        pm.broken[ep.name] = exc
        log.warning("warning: %s; the other plugins are loaded without it", exc)
        return
    _register(pm, plugin, ep.name)


def check_contract(plugin: Any, name: str) -> None:
    """Raise ``PluginError`` naming ``name`` unless the plugin supports this contract version.

    A plugin without ``BUILDSYS_CONTRACT`` is assumed to support every version.
    """
    declared = getattr(plugin, CONTRACT_ATTRIBUTE, None)
    if declared is None:
        return
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        supported = SpecifierSet(str(declared))
    except InvalidSpecifier:
        raise PluginError(f"{CONTRACT_ATTRIBUTE} = {declared!r} is not a version specifier",
                          where=f"plugin '{name}'", hint='write a range such as ">=1.1,<2"') from None
    if not supported.contains(hookspecs.CONTRACT_VERSION, prereleases=True):
        raise PluginError(
            f"built for buildsys plugin contract {declared}, but this buildsys implements contract "
            f"{hookspecs.CONTRACT_VERSION}", where=f"plugin '{name}'",
            hint=f"install a release of the plugin that supports contract {hookspecs.CONTRACT_VERSION}, "
                 f"or block it with -p no:{name}")


def contract_of(plugin: Any) -> str:
    """The contract range a plugin declares, or "" where it declares none."""
    return str(getattr(plugin, CONTRACT_ATTRIBUTE, "") or "")


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)  # one dist installed twice on sys.path lists it twice
    return sorted(seen.values(), key=lambda ep: ep.name)


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> Any:
    try:
        return ep.load()
    except Exception as exc:
        raise PluginError(f"failed to import {ep.value}: {type(exc).__name__}: {exc}", where=f"plugin '{ep.name}'",
                          hint=f"fix the plugin or its dependencies, or skip it with -p no:{ep.name}") from exc


def _import_extra(module_name: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise PluginError(f"cannot import plugin module '{module_name}': {type(exc).__name__}: {exc}",
                          where=f"plugin '{module_name}'",
                          hint=f"-p and {MODULES_ENV} take importable module names; -p no:NAME blocks one") from exc
    check_contract(module, module_name)
    return module


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    # The same module under two names (installed, and named with -p) is one plugin.
    if pm.get_plugin(name) is not None or pm.is_registered(plugin):
        return
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(_one_line(exc), where=f"plugin '{name}'",
                          hint="a buildsys_* function must be a hook of buildsys.hookspecs and take only "
                               "arguments its hook declares (see docs/plugins.md)") from exc
    except ValueError as exc:
        raise PluginError(str(exc), where=f"plugin '{name}'") from exc


def _one_line(exc: Exception) -> str:
    """pluggy's validation messages span lines; users get one line per problem."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _plugin_name(pm: pluggy.PluginManager, plugin: Any) -> str:
    return pm.get_name(plugin) or repr(plugin)


# --------------------------------------------------------------------------------------------


_CATEGORIES = {
    "kinds": ("buildsys_register_kinds", "name"),
    "sources": ("buildsys_register_sources", "framework"),
    "stages": ("buildsys_register_stages", "name"),
    "runners": ("buildsys_register_runners", "kind"),
    "registries": ("buildsys_register_registries", "scheme"),
    "executors": ("buildsys_register_executors", "name"),
}


@dataclass
class Catalog:
    """The catalog of one invocation: every spec the loaded plugins registered, by name, with the
    plugin that owns it. Made once per process from the plugin manager (``collect``)."""

    kinds: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, Any] = field(default_factory=dict)
    runners: dict[str, Any] = field(default_factory=dict)
    registries: dict[str, Any] = field(default_factory=dict)
    executors: dict[str, Any] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    broken: dict[str, PluginError] = field(default_factory=dict)  # installed plugins left out

    @classmethod
    def collect(cls, pm: pluggy.PluginManager) -> Catalog:
        catalog = cls(broken=dict(getattr(pm, "broken", {})))
        for category, (hook_name, key_attr) in _CATEGORIES.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                for spec in _call_registration(impl, hook_name):
                    catalog._add(category, getattr(spec, key_attr), spec, impl.plugin_name)
        return catalog

    def _add(self, category: str, key: str, spec: Any, plugin: str) -> None:
        table = getattr(self, category)
        if key in table:
            other = self.owners[(category, key)]
            raise PluginError(
                f"{category[:-1]} '{key}' is registered by both plugin '{other}' and plugin '{plugin}'",
                hint=f"uninstall one, or block it with -p no:{plugin}")
        table[key] = spec
        self.owners[(category, key)] = plugin

    def owner(self, category: str, key: str) -> str:
        return self.owners[(category, key)]

    def stage(self, name: str):
        return self._lookup(self.stages, name, "stage")

    def source(self, framework: str):
        return self._lookup(self.sources, framework, "model framework")

    def registry(self, scheme: str):
        return self._lookup(self.registries, scheme, "registry scheme")

    def executor(self, name: str):
        return self._lookup(self.executors, name, "executor")

    def _lookup(self, table: dict, key: str, what: str, names: list[str] | None = None):
        try:
            return _lookup(table, key, what, names)
        except BuildsysError as exc:
            if self.broken:  # the name may belong to a plugin that could not be loaded
                exc.hint += f"; not loaded: plugin(s) {', '.join(sorted(self.broken))} (see the warnings above)"
            raise

    def kind_for_format(self, fmt: str):
        """The kind a target ``format`` names: a kind name or one of its aliases. Sources,
        references and reports (ladder < 2) are not buildable targets."""
        buildable = [k for k in self.kinds.values() if k.ladder >= 2]
        for kind in buildable:
            if fmt == kind.name or fmt in kind.aliases:
                return kind
        names = sorted({*(k.name for k in buildable), *(a for k in buildable for a in k.aliases)})
        return self._lookup({}, fmt, "target format", names)


def _call_registration(impl: Any, hook_name: str) -> list:
    try:
        result = impl.function()
    except Exception as exc:
        raise PluginError(f"{hook_name} raised {type(exc).__name__}: {exc}",
                          where=f"plugin '{impl.plugin_name}'") from exc
    return list(result or [])


def _lookup(table: dict, key: str, what: str, names: list[str] | None = None):
    if key in table:
        return table[key]
    names = sorted(table) if names is None else names
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(names) or 'none'}"
    raise BuildsysError(f"unknown {what} '{key}'", hint=hint)
