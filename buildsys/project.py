"""A ``Project`` is one invocation's view of a manifest: plugins, catalog, host, store, paths."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import types
from pathlib import Path

from . import manifest as manifest_mod, plugins
from .cache import Store
from .hardware import Host
from .graph import Graph
from .hashing import canonical, sha256_text
from .plan import plan

DEFAULT_OUT = "artifacts"


def buildsys_version() -> str:
    try:
        return importlib.metadata.version("buildsys")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class Project:
    def __init__(self, manifest_path: str | Path, config: plugins.PluginConfig | None = None,
                 out_dir: str | Path | None = None, cache_dir: str | Path | None = None):
        self.manifest = manifest_mod.load(manifest_path)
        self.config = config or plugins.PluginConfig()
        self.pm = plugins.load(self.config)
        self.catalog = plugins.Catalog.collect(self.pm)
        self.out_root = Path(out_dir or os.environ.get("BUILDSYS_OUT") or DEFAULT_OUT).resolve()
        cache = cache_dir or os.environ.get("BUILDSYS_CACHE_DIR") or self.out_root / ".cache"
        self.store = Store(Path(cache).resolve())

    @functools.cached_property
    def host(self) -> Host:
        return probe_host(self.pm)

    @functools.cached_property
    def graph(self) -> Graph:
        return plan(self.manifest, self.catalog, self.host)

    def source_digest(self) -> str:
        """Fingerprint of the model: framework, model block, and the bytes of its files."""
        model = self.manifest.model
        source = self.catalog.source(model.framework)
        files = sorted({Path(p).resolve() for p in source.fingerprint(model, self.manifest.root)})
        hashed = [[_display(p, self.manifest.root), self.store.file_digest(p)] for p in files]
        return sha256_text(canonical({"framework": model.framework,
                                      "model": self.manifest.model_block(), "files": hashed}))

    def plugin_versions(self) -> dict[str, str]:
        # An entry point knows its distribution; scanning every installed dist's RECORD
        # (packages_distributions) is left to -p modules: it costs ~3 ms per 1000 files.
        ep_dists = {ep.name: ep.dist.name for ep in plugins._entry_points() if ep.dist is not None}
        versions = {}
        for name, plugin in self.pm.list_name_plugin():
            if not isinstance(plugin, types.ModuleType):
                continue  # reporters and other in-process objects are not part of the build
            if plugin.__name__.partition(".")[0] == "buildsys":
                versions[name] = buildsys_version()
                continue
            dist = ep_dists.get(name) or _distribution_of(plugin)
            versions[name] = importlib.metadata.version(dist) if dist else buildsys_version()
        return dict(sorted(versions.items()))

    def extension_plugins(self, hooks: tuple[str, ...]) -> dict[str, str]:
        """``{"hook:<hook>:<plugin>": version}`` for every plugin implementing one of ``hooks``."""
        if not hooks:
            return {}
        versions = self.plugin_versions()
        return {f"hook:{hook}:{impl.plugin_name}": versions.get(impl.plugin_name, "unknown")
                for hook in hooks for impl in getattr(self.pm.hook, hook).get_hookimpls()}

    def tool_versions(self) -> dict[str, str]:
        tools: dict[str, str] = {}
        for result in self.pm.hook.buildsys_tool_versions():
            tools.update(result or {})
        return dict(sorted(tools.items()))


def probe_host(pm) -> Host:
    host = Host.basic()
    pm.hook.buildsys_probe_hardware(host=host)
    return host


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distribution_of(plugin) -> str | None:
    module = getattr(plugin, "__name__", "") or type(plugin).__module__
    top = module.split(".")[0]
    dists = _packages_distributions().get(top, [])
    return dists[0] if dists else None

