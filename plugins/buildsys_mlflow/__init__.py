"""Publish built targets to an MLflow Model Registry (MLflow 3).

URLs::

    mlflow+http://host:port[/path]     the tracking server at http://host:port[/path]
    mlflow+https://host[/path]         ... over https
    mlflow:                            the server MLFLOW_TRACKING_URI names
    ...?experiment=NAME                where the files are logged (default: buildsys)

Layout: one registered model per manifest name; one model version per (version, target),
whose source is an MLflow 3 logged model holding the target's files and artifact.json (plain
files, no MLflow flavor). Version tags: ``buildsys.{name,version,target,kind,format,precision,
hardware,digest,buildsys_version}``, ``digest`` being the artifact digest (the sha256 of the
canonical artifact.json, which lists every file's sha256). ``--alias A`` sets the model alias
``A-<target>`` ('.' and '+' in the target become '_').

A publish logs every file into a new logged model (status PENDING), artifact.json last, marks
it READY and only then creates the model version, with all its tags in that one request: an
interrupted publish leaves a pending logged model and no version. A version is complete when
it carries ``buildsys.digest``; ``list``, ``exists`` and ``pull`` see no other. A pull fetches
artifact.json first and checks it against that digest (and every file name it lists) before
fetching a file.

Credentials are MLflow's own: ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``
(or ``~/.mlflow/credentials``), or ``MLFLOW_TRACKING_TOKEN``. MLflow's client retries up to 7
times with long sleeps; this plugin turns that off (``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0``
unless set) and retries with ``buildsys.Retry`` instead; it also turns off MLflow's telemetry
and progress bars unless set. mlflow is imported on first use.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, urlparse

from buildsys import (ArtifactRef, ImmutableVersion, PublishResult, RegistryError, RegistrySpec, Requirement,
                      Retry, check_pin, check_same_digest, fetched_record, hookimpl, listed_files, local_tree,
                      staged_pull)

from .errors import translated

__version__ = "0.1.0"

TAG = "buildsys."
DIGEST = TAG + "digest"
PROVENANCE = "provenance.json"  # the artifact's provenance envelope, when it has one
PROVENANCE_TAG = TAG + "provenance"
RECORD_KEYS = ("name", "version", "target", "kind", "format", "precision", "hardware")
MLFLOW = Requirement("mlflow", ">=3", "pip install 'buildsys[mlflow]'")
_CLIENT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_DISABLE_TELEMETRY": "true",
                    "MLFLOW_HTTP_REQUEST_TIMEOUT": "120", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


class MlflowRegistry:
    """The model registry of one MLflow tracking server; see the module docstring."""

    def __init__(self, url: str):
        parsed = urlparse(url)
        if parsed.scheme == "mlflow":
            self.tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
            if not self.tracking_uri.startswith(("http://", "https://")):
                raise RegistryError("'mlflow:' needs MLFLOW_TRACKING_URI set to the server's http(s) URL",
                                    hint="or use mlflow+http://host:port")
        else:
            if not parsed.hostname:
                raise RegistryError(f"MLflow URL '{url}' names no server", hint="use mlflow+http://host:port")
            self.tracking_uri = f"{parsed.scheme.split('+', 1)[1]}://{parsed.netloc}{parsed.path.rstrip('/')}"
        self.experiment = parse_qs(parsed.query).get("experiment", ["buildsys"])[0]
        self.display = f"mlflow+{self.tracking_uri}"
        self.retry = Retry.from_env()
        self._client = None

    # -- the Registry protocol ------------------------------------------------------------------

    def publish(self, directory: Path, *, dry_run: bool = False, progress=None,
                alias: str | None = None) -> PublishResult:
        directory = Path(directory)
        ref, record = local_tree(directory)
        alias_name = _alias(alias, ref.target) if alias else None
        existing = self._find(ref)
        if existing is not None:
            where = f"{self.display} models:/{ref.name}/{existing.version}"
            check_same_digest(ref, existing.tags[DIGEST], where)
            if alias_name and not dry_run:
                self._set_alias(ref.name, alias_name, existing.version)
            return PublishResult(ref, created=False, location=where, dry_run=dry_run)
        if dry_run:
            return PublishResult(ref, created=True, location=f"{self.display} models:/{ref.name}", dry_run=True)
        tags = _tags(record, ref) | ({PROVENANCE_TAG: "yes"} if (directory / PROVENANCE).is_file() else {})
        model = self._log_files(directory, record, ref, tags, progress)
        version = self._create_version(ref, tags, model)
        if alias_name:
            self._set_alias(ref.name, alias_name, version.version)
        return PublishResult(ref, created=True, location=f"{self.display} models:/{ref.name}/{version.version}")

    def pull(self, ref: ArtifactRef, dest: Path, *, progress=None) -> Path:
        ref.check()
        found = self._find(ref)
        if found is None:
            known = [str(r) for r in self.list(ref.name)]
            raise RegistryError(f"{ref} is not in {self.display}",
                                hint=f"published versions of '{ref.name}': {', '.join(known) or 'none'}")
        held = ArtifactRef(ref.name, ref.version, ref.target, found.tags[DIGEST],
                           hardware=found.tags.get(TAG + "hardware", ""))
        check_pin(ref, held)
        repo = self._repository(found.source)
        with staged_pull(dest, held) as staged:
            self._download(repo, "artifact.json", staged)
            for f in listed_files(fetched_record(staged / "artifact.json"), held):
                self._download(repo, f["name"], staged)
                if progress is not None:
                    progress(f["name"], f["size"])
            if found.tags.get(PROVENANCE_TAG):
                self._download(repo, PROVENANCE, staged)
        return Path(dest) / ref.target

    def list(self, name: str | None = None) -> list[ArtifactRef]:
        if name is not None:
            ArtifactRef(name, "0", "0").check()
        seen: dict[tuple[str, str, str], ArtifactRef] = {}
        for mv in sorted(self._versions(f"name='{name}'" if name else ""), key=lambda v: int(v.version)):
            tags = mv.tags or {}
            if DIGEST not in tags:
                continue
            key = (mv.name, tags.get(TAG + "version", ""), tags.get(TAG + "target", ""))
            seen.setdefault(key, ArtifactRef(*key, tags[DIGEST], hardware=tags.get(TAG + "hardware", "")))
        return list(seen.values())

    def exists(self, ref: ArtifactRef) -> bool:
        ref.check()
        return self._find(ref) is not None

    # -- helpers --------------------------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            MLFLOW.check()
            for key, value in _CLIENT_DEFAULTS.items():
                os.environ.setdefault(key, value)
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def _call(self, fn, what: str):
        """``fn()`` with MLflow's errors translated, transient ones retried."""
        return self.retry.call(lambda: translated(fn, what, self.tracking_uri), what)

    def _versions(self, filter_string: str) -> list:
        versions, token = [], None
        while True:
            page = self._call(lambda: self.client.search_model_versions(filter_string, max_results=1000,
                                                                         page_token=token),
                              f"searching model versions at {self.display}")
            versions += list(page)
            token = page.token
            if not token:
                return versions

    def _find(self, ref: ArtifactRef):
        """The complete model version of ``ref`` (the oldest, should a race have made two), or None."""
        ref.check()
        candidates = self._versions(f"name='{ref.name}' and tags.`{TAG}version`='{ref.version}' "
                                    f"and tags.`{TAG}target`='{ref.target}'")
        complete = sorted((v for v in candidates if DIGEST in (v.tags or {})), key=lambda v: int(v.version))
        return complete[0] if complete else None

    def _repository(self, source: str):
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(source, tracking_uri=self.tracking_uri)

    def _download(self, repo, name: str, staged: Path) -> None:
        self._call(lambda: repo.download_artifacts(name, str(staged)), f"download of {name}")

    def _experiment_id(self) -> str:
        """The id of the experiment the files are logged in, created on first use."""
        found = self._call(lambda: self.client.get_experiment_by_name(self.experiment), "finding the experiment")
        if found is None:
            found = self._call(lambda: _create_experiment(self.client, self.experiment), "creating the experiment")
        if found.lifecycle_stage == "deleted":
            raise RegistryError(f"experiment '{self.experiment}' at {self.display} is deleted",
                                hint="restore it in MLflow, or choose another with ?experiment=NAME in the URL")
        return found.experiment_id

    def _log_files(self, directory: Path, record: dict, ref: ArtifactRef, tags: dict, progress):
        """Upload every file, then artifact.json, into a new logged model; mark it READY."""
        from mlflow.entities import LoggedModelStatus

        experiment = self._experiment_id()
        name = re.sub(r"[^A-Za-z0-9_-]", "_", f"{ref.name}-{ref.version}-{ref.target}")  # no '.' allowed
        model = self._call(lambda: self.client.create_logged_model(experiment, name=name, tags=tags),
                           "creating a logged model")
        repo = self._repository(model.artifact_location)
        extra = [(PROVENANCE, None)] if (directory / PROVENANCE).is_file() else []
        for name, size in [(f["name"], f["size"]) for f in record["files"]] + extra + [("artifact.json", None)]:
            parent = str(PurePosixPath(name).parent)
            self._call(lambda: repo.log_artifact(str(directory / name), None if parent == "." else parent),
                       f"upload of {name}")
            if progress is not None and size is not None:
                progress(name, size)
        self._call(lambda: self.client.finalize_logged_model(model.model_id, LoggedModelStatus.READY),
                   "finalizing the logged model")
        return model

    def _create_version(self, ref: ArtifactRef, tags: dict, model):
        """Create the model version, the step that makes it visible. A retry first looks for the
        version a lost answer may have created, so one publish never makes two."""
        from .errors import NotFound, Unavailable

        try:
            self._call(lambda: self.client.get_registered_model(ref.name), "finding the registered model")
        except NotFound:
            self._call(lambda: _create_quietly(self.client, ref.name), "registering the model")

        def create():
            try:
                return translated(lambda: self.client.create_model_version(
                    ref.name, source=model.artifact_location, tags=tags, model_id=model.model_id,
                    await_creation_for=0), "creating the model version", self.tracking_uri)
            except Unavailable:
                found = self._find(ref)
                if found is not None and found.tags.get(DIGEST) == ref.digest:
                    return found
                raise

        version = self.retry.call(create, f"creating {ref} at {self.display}")
        return self._settle(ref, version)

    def _settle(self, ref: ArtifactRef, version):
        """Two publishers racing may both have created a version: the oldest one stands."""
        oldest = self._find(ref)
        if oldest is None or oldest.version == version.version:
            return version
        self._call(lambda: self.client.delete_model_version(ref.name, version.version), "removing a duplicate")
        if oldest.tags[DIGEST] != ref.digest:
            raise ImmutableVersion(f"{ref} was published concurrently with digest {oldest.tags[DIGEST][:23]}…, "
                                   f"this one is {ref.digest[:23]}…", where=self.display,
                                   hint="versions are immutable: bump the manifest's version")
        return oldest

    def _set_alias(self, name: str, alias: str, version: str) -> None:
        self._call(lambda: self.client.set_registered_model_alias(name, alias, version), f"setting alias {alias}")


def _tags(record: dict, ref: ArtifactRef) -> dict[str, str]:
    tags = {TAG + key: str(record.get(key, "")) for key in RECORD_KEYS}
    return tags | {DIGEST: ref.digest, TAG + "buildsys_version": str(record.get("buildsys", ""))}


def _create_experiment(client, name: str):
    """Create experiment ``name``, or find it if someone created it at the same moment."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_experiment(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return client.get_experiment_by_name(name)


def _create_quietly(client, name: str) -> None:
    """Register ``name``; someone registering it at the same moment is fine."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, tags={TAG + "name": name})
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _alias(alias: str, target: str) -> str:
    name = f"{alias}-{target}".replace(".", "_").replace("+", "_")
    reserved = name.lower() == "latest" or re.fullmatch(r"[vV]\d+", name)
    if reserved or not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", name):
        raise RegistryError(f"'{name}' is not a usable MLflow alias",
                            hint="use letters, digits, '_' and '-'; not 'latest' or v<number>")
    return name


@hookimpl
def buildsys_register_registries():
    return [RegistrySpec(scheme=scheme, open=MlflowRegistry,
                         description=f"MLflow Model Registry: {scheme}://host:port")
            for scheme in ("mlflow+http", "mlflow+https")] + [
        RegistrySpec(scheme="mlflow", open=MlflowRegistry, description="MLflow at MLFLOW_TRACKING_URI: mlflow:")]
