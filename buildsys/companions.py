"""Companion files: files of the model's own that every artifact built from it carries (a
language model's tokenizer), so a user of the artifact needs nothing of the model's folder.

A source names them (``SourceSpec.companions``, contract 1.7) by the path they take inside an
artifact (``tokenizer/tokenizer.json``). The worker copies them into the output of the stage
that consumes the source, and from then on into the output of every stage that consumes an
artifact carrying them, whichever plugin the stage comes from — except references and
validations, which are not deployed. So they enter each stage's cache entry, the artifact's
``files`` and checksums (``buildsys.load`` refuses a changed one), and ``meta.companion_files``
lists them. Each must be a file the source's fingerprint covers: its bytes are then in every
action key downstream, and an executor that ships the fingerprinted files ships them too.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from .errors import BuildsysError
from .graph import REFERENCE_KIND

#: The key of a stage's metadata that lists the companion files its output carries.
COMPANION_FILES = "companion_files"
NOT_CARRIED = (REFERENCE_KIND, "validation")


def carry(ctx, source, produces: str, inputs) -> list[str]:
    """Copy the companion files of ``inputs`` (``InputArtifact``s; the model source's from
    ``source``, its ``SourceSpec``) into ``ctx.out_dir``, after the stage ran; return their names."""
    if produces in NOT_CARRIED:
        return []
    files: dict[str, Path] = {}
    for item in inputs:
        if item.directory is None:
            files.update(of_source(ctx.model, ctx.root, source))
        else:
            files.update({name: item.files[name] for name in item.meta.get(COMPANION_FILES) or ()})
    for name, path in sorted(files.items()):
        target = Path(ctx.out_dir) / name
        if target.exists():
            raise BuildsysError(f"stage '{ctx.stage}' wrote {name}, which is a companion file its input carries",
                                hint="write the stage's own files under other names")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return sorted(files)


def of_source(model, root: Path, source) -> dict[str, Path]:
    """``{name in the artifact: file}`` the source attaches, each checked: a safe relative name,
    a file its fingerprint covers."""
    if source is None or source.companions is None:
        return {}
    files = {name: Path(path) for name, path in source.companions(model, Path(root)).items()}
    covered = {Path(p).resolve() for p in source.fingerprint(model, Path(root))}
    for name, path in files.items():
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name:
            raise BuildsysError(f"source '{source.framework}' names companion file '{name}': not a relative path "
                                "inside the artifact")
        if path.resolve() not in covered:
            raise BuildsysError(f"source '{source.framework}' names companion file {path}, which its fingerprint "
                                "does not cover", hint="fingerprint every companion file, so its bytes are in the "
                                                       "action keys")
    return files
