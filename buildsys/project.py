"""A ``Project`` is one invocation's view of a manifest: plugins, catalog, host, store, paths."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import types
from pathlib import Path

from . import manifest as manifest_mod, plugins
from .config import project_settings
from .cache import Store
from .errors import BuildsysError, ManifestError
from .fsutil import atomic_write
from .hardware import Host
from .graph import Graph
from .hashing import canonical, sha256_text
from .plan import plan
from .specs import distribution_version, installed_versions



def _with_signature(manifest, catalog, store: Store):
    """The manifest with the inputs its model file declares (``SourceSpec.signature``).

    The inputs are remembered per digest of the model block and the source's files: reading a
    model file may import its framework, which a no-op rebuild must not. Only an accepted answer
    is remembered, so a refused manifest leaves nothing behind."""
    try:
        source = catalog.source(manifest.model.framework)
    except BuildsysError:
        return manifest  # an unknown framework is reported by the planner, with the known ones
    if source.signature is None:
        return manifest
    try:
        memo = _signature_memo(manifest, source, store)
        inputs = _read_memo(memo)
        fresh = inputs is None
        if fresh:
            inputs = source.signature(manifest.model, manifest.root)
    except ManifestError as exc:
        if exc.where is not None:
            raise
        raise ManifestError(exc.message, where=manifest.where("model", "entrypoint"), hint=exc.hint) from None
    filled = manifest.with_signature(inputs, manifest.model.entrypoint)
    if fresh:
        try:
            atomic_write(memo, json.dumps({"inputs": inputs}))
        except OSError:
            pass  # a read-only cache: asked again next time
    return filled


def _signature_memo(manifest, source, store: Store) -> Path:
    return _memo(store, "signatures", manifest, source)


def _memo(store: Store, folder: str, manifest, source, **more) -> Path:
    """A file under the cache's ``folder`` named by the digest of the model block, the bytes of
    the source's fingerprint files and ``more``: what a source read from them, remembered."""
    files = sorted({Path(p).resolve() for p in source.fingerprint(manifest.model, manifest.root)})
    key = sha256_text(canonical({"framework": manifest.model.framework, "model": manifest.model_block(),
                                 "files": [[str(p), store.file_digest(p)] for p in files], **more}))
    return store.root / folder / key[:2] / f"{key}.json"


def _read_memo(memo: Path) -> list[dict] | None:
    try:
        return json.loads(memo.read_text())["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def buildsys_version() -> str:
    return distribution_version("buildsys") or "0+unknown"  # read once per process


class Project:
    def __init__(self, manifest_path: str | Path, config: plugins.PluginConfig | None = None,
                 out_dir: str | Path | None = None, cache_dir: str | Path | None = None):
        self.manifest = manifest_mod.load(manifest_path)
        self.config = config or plugins.PluginConfig()
        self.pm = plugins.load(self.config)
        self.catalog = plugins.Catalog.collect(self.pm)
        self._plugin_versions: dict[str, str] | None = None
        # artifacts and cache belong to the project (buildsys.config), not to the current folder
        self.settings = project_settings(self.manifest.path)
        self.out_root = self.settings.out_root(out_dir)
        self.store = Store(self.settings.cache_dir(self.out_root, cache_dir))
        self.manifest = described(self.manifest, self.catalog, self.store)
        self.manifest = _with_signature(self.manifest, self.catalog, self.store)

    @functools.cached_property
    def host(self) -> Host:
        return probe_host(self.pm)

    @functools.cached_property
    def graph(self) -> Graph:
        return plan(self.manifest, self.catalog, self.host)

    def source_digest(self) -> str:
        """Fingerprint of the model: framework, model block, the bytes of its files, and the
        versions of what the source needs to load it (transformers builds a Hugging Face model
        from its files: another transformers may build another module from the same files).

        A problem with those files is the manifest's: a ``ManifestError`` at the model key that
        names them (the entrypoint, unless it is the weights or the samples)."""
        model = self.manifest.model
        hashed = [[_display(p, self.manifest.root), self._file_digest(p)] for p in self._model_files()]
        return sha256_text(canonical({"framework": model.framework, "model": self.manifest.model_block(),
                                      "files": hashed, "tools": self.source_tools()}))

    def source_tools(self) -> dict[str, str]:
        """``{distribution: version}`` the model's source requires (``missing`` when absent)."""
        return installed_versions(self.catalog.source(self.manifest.model.framework).requires)

    def source_files(self) -> list[dict]:
        """``[{name, sha256}]`` of the model's files its fingerprint covers, names relative to the
        manifest (recorded in the lock, so a rebuild can say which file changed)."""
        return [{"name": _display(p, self.manifest.root), "sha256": self._file_digest(p)} for p in self._model_files()]

    def _model_files(self) -> list[Path]:
        model = self.manifest.model
        source = self.catalog.source(model.framework)
        try:
            return sorted({Path(p).resolve() for p in source.fingerprint(model, self.manifest.root)})
        except ManifestError:
            raise
        except BuildsysError as exc:  # e.g. an entrypoint without ':function'
            if type(exc) is not BuildsysError:
                raise  # a kind with its own exit code (a missing backend) keeps it
            key = _key_quoted(model, exc.message)
            raise ManifestError(f"model.{key}: {exc.message}", where=self.manifest.where("model", key),
                                hint=exc.hint) from exc
        except OSError as exc:
            raise self._unreadable(exc, Path(exc.filename) if exc.filename else None) from exc

    def _file_digest(self, path: Path) -> str:
        try:
            return self.store.file_digest(path)
        except OSError as exc:
            if exc.filename is not None and Path(exc.filename) != path:
                raise  # not the model's file: the cache's own (its memo of file digests)
            raise self._unreadable(exc, path) from exc

    def _unreadable(self, exc: OSError, path: Path | None) -> ManifestError:
        root = self.manifest.root
        key = "weights" if path is not None and _is_weights(self.manifest.model, root, path) else "entrypoint"
        what = _display(path, root) if path is not None else "the model's files"
        return ManifestError(f"model.{key}: cannot read {what}: {exc.strerror or exc}",
                             where=self.manifest.where("model", key),
                             hint=f"model.{key} must name readable files, relative to the manifest's folder")

    def plugin_versions(self) -> dict[str, str]:
        """``{plugin name: its distribution's version}`` (computed once per project)."""
        if self._plugin_versions is None:
            self._plugin_versions = self._read_plugin_versions()
        return dict(self._plugin_versions)

    def _read_plugin_versions(self) -> dict[str, str]:
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
            versions[name] = (distribution_version(dist) or "unknown") if dist else buildsys_version()
        return dict(sorted(versions.items()))

    def extension_plugins(self, hooks: tuple[str, ...]) -> dict[str, str]:
        """``{"hook:<hook>:<plugin>": version}`` for every plugin implementing one of ``hooks``."""
        if not hooks:
            return {}
        versions = self.plugin_versions()
        return {f"hook:{hook}:{impl.plugin_name}": versions.get(impl.plugin_name, "unknown")
                for hook in hooks for impl in getattr(self.pm.hook, hook).get_hookimpls()}

    def tool_versions(self, plugins: set[str] | None = None) -> dict[str, str]:
        """``{tool: version}`` from the plugins' ``buildsys_tool_versions``; only those of
        ``plugins`` (plugin names) when given — the lock records the tools of the plugins its
        nodes use, so installing, upgrading or blocking an unrelated plugin changes nothing."""
        tools: dict[str, str] = {}
        for impl in self.pm.hook.buildsys_tool_versions.get_hookimpls():
            if plugins is None or impl.plugin_name in plugins:
                tools.update(impl.function() or {})
        return dict(sorted(tools.items()))

    def plugins_of(self, graph: Graph, targets) -> set[str]:
        """The plugins owning the source and the stages ``targets`` need."""
        owners = {self.catalog.owner("sources", self.manifest.model.framework)}
        for target in targets:
            owners.update(self.catalog.owner("stages", n.stage) for n in graph.needs(target) if not n.is_source)
        return owners


def described(manifest, catalog, store: Store | None = None):
    """``manifest`` with its model block completed by the source's ``describe`` (if it has one):
    inputs and dims the source reads from the model's files. A problem is the manifest's, at
    ``model.id`` (or ``model.entrypoint``). With a ``store``, an accepted description is
    remembered per digest of the model block, the source's files and the versions it requires
    (reading a Hugging Face model's config, tokenizer and transformers' class tables costs a
    no-op rebuild ~0.1 s otherwise)."""
    source = catalog.sources.get(manifest.model.framework)
    if source is None or source.describe is None:
        return manifest
    key = "id" if manifest.model.id else "entrypoint"
    extras = _describe_extras(source.describe, manifest, catalog)
    memo = _description_memo(manifest, source, store, extras) if store is not None else None
    remembered = _read_description(memo, type(manifest.model)) if memo is not None else None
    if remembered is not None:
        return manifest.model_copy(update={"model": remembered})
    try:
        model = source.describe(manifest.model, manifest.root, **extras)
    except ManifestError as exc:
        if exc.where is not None:
            raise
        raise ManifestError(exc.message, where=manifest.where("model", key), hint=exc.hint) from None
    except BuildsysError as exc:
        if type(exc) is not BuildsysError:
            raise  # a kind with its own exit code (a missing backend) keeps it
        raise ManifestError(f"model.{key}: {exc.message}", where=manifest.where("model", key),
                            hint=exc.hint) from None
    if memo is not None:
        try:
            atomic_write(memo, json.dumps({"model": model.model_dump(mode="json", exclude_unset=True)}))
        except (OSError, TypeError, ValueError):
            pass  # a read-only cache, or a block JSON cannot hold: described again next time
    return manifest.model_copy(update={"model": model})


def _description_memo(manifest, source, store: Store, extras: dict) -> Path | None:
    """Where the description of this model block, files, tools and ``extras`` (the targets'
    kinds, for a describe that takes them) is remembered; None when the files cannot be listed
    (``describe`` then says what is wrong, in its own words)."""
    try:
        return _memo(store, "descriptions", manifest, source, tools=installed_versions(source.requires),
                     extras={k: sorted(v) for k, v in extras.items()})
    except Exception:
        return None


def _read_description(memo: Path, model_type):
    try:
        return model_type.model_validate(json.loads(memo.read_text())["model"])
    except Exception:  # missing, torn or from an older block schema: describe again
        return None


def _describe_extras(describe, manifest, catalog) -> dict:
    """``target_kinds`` for a ``describe`` that takes it (contract 1.8): the kinds the manifest's
    targets ask for, so a source can load its model in the form its consumers need."""
    import inspect

    try:
        if "target_kinds" not in inspect.signature(describe).parameters:
            return {}
    except (TypeError, ValueError):
        return {}
    kinds = set()
    for target in manifest.targets.values():
        try:
            kinds.add(catalog.kind_for_format(target.format).name)
        except Exception:  # noqa: BLE001 -- an unknown format is reported for its own target
            continue
    return {"target_kinds": frozenset(kinds)}


def probe_host(pm) -> Host:
    host = Host.basic()
    pm.hook.buildsys_probe_hardware(host=host)
    return host


def _key_quoted(model, message: str) -> str:
    """``samples`` if ``message`` quotes the samples entrypoint and not the model's; else ``entrypoint``."""
    def quotes(value: str | None) -> bool:
        return value is not None and f"'{value}'" in message

    return "samples" if quotes(model.samples) and not quotes(model.entrypoint) else "entrypoint"


def _is_weights(model, root: Path, path: Path) -> bool:
    try:
        return model.weights is not None and model.weights_path(root).resolve() == Path(path).resolve()
    except (OSError, ValueError):
        return False


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

