"""A framework-free example backend: text files as "models".

It exists so that every behaviour of the core (planning, caching, hardware tags, precision,
nondeterminism, slow and failing stages, crashes) can be exercised without torch. It is built
only on the public API, exactly like a third-party plugin.

Kinds: ``text.source`` (a .txt file named by ``model.entrypoint``) -> ``text`` (normalized)
-> ``text.stats`` (word counts; deliberately slow with ``delay``), ``text.stamped``
(nondeterministic), ``text.bin`` (built on the target hardware), ``text.pack`` (built ahead of
time for any hardware). ``text.ascii`` lowers ``text`` to precision ``int8`` (lossy).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from buildsys import (BuildsysError, HardwarePolicy, KindSpec, Requirement, RunnerSpec, SourceSpec,
                      StageSpec, hookimpl)

__version__ = "0.1.0"


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NormalizeOptions(_Options):
    lowercase: bool = False
    strip: bool = True


class WordcountOptions(_Options):
    delay: float = Field(default=0.0, ge=0, description="seconds to sleep: a deliberately slow stage")
    fail: bool = Field(default=False, description="raise an error (for testing failure handling)")
    crash: Literal["none", "segv", "exit"] = Field(default="none", description="kill the worker")


class CompileOptions(_Options):
    optimize: int = Field(default=1, ge=0, le=3)


# -- source ------------------------------------------------------------------------------------


def _source_file(model, root: Path) -> Path:
    return (Path(root) / model.entrypoint).resolve()


def _text_file(model, root: Path) -> Path:
    """The file ``model.entrypoint`` names, refused unless it is a file (a folder, a missing
    name, ``model.txt:build`` read as a file name)."""
    path = _source_file(model, root)
    if path.is_file():
        return path
    what = "is a folder" if path.is_dir() else "is not a regular file" if path.exists() else "does not exist"
    hint = ("the text framework reads the whole entrypoint as a file name; it has no ':function' part"
            if ":" in model.entrypoint else "name a UTF-8 text file, relative to the manifest's folder")
    raise BuildsysError(f"text model '{model.entrypoint}' {what} (looked in {root})", hint=hint)


def _load(model, root: Path) -> str:
    path = _source_file(model, root)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildsysError(f"cannot read text model {path}: {exc}") from None


# -- stages ------------------------------------------------------------------------------------


def _read(inputs) -> str:
    return inputs[0].primary.read_text(encoding="utf-8")


def normalize(ctx, inputs, options: NormalizeOptions):
    text = ctx.load_model()
    lines = [line.strip() if options.strip else line for line in text.splitlines()]
    text = "\n".join(lines) + "\n"
    (ctx.out_dir / "text.txt").write_text(text.lower() if options.lowercase else text, encoding="utf-8")
    return {"primary": "text.txt", "lines": len(lines)}


def to_ascii(ctx, inputs, options):
    text = _read(inputs)
    lowered = text.encode("ascii", errors="replace").decode("ascii")
    (ctx.out_dir / "text.txt").write_text(lowered, encoding="ascii")
    return {"primary": "text.txt", "replaced": sum(a != b for a, b in zip(text, lowered))}


def wordcount(ctx, inputs, options: WordcountOptions):
    if options.crash == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if options.crash == "exit":
        os._exit(3)
    if options.fail:
        raise BuildsysError("wordcount failed because the target asked it to (fail: true)")
    steps = max(1, int(options.delay * 10))
    for step in range(steps):
        ctx.progress(step, steps, "counting")
        time.sleep(options.delay / steps)
    words = _read(inputs).split()
    counts: dict[str, int] = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    (ctx.out_dir / "stats.json").write_text(json.dumps({"words": len(words), "counts": counts},
                                                       sort_keys=True, indent=1))
    return {"primary": "stats.json", "words": len(words)}


def stamp(ctx, inputs, options):
    nonce = secrets.token_hex(8)  # nondeterministic on purpose: like an engine builder's tactics
    (ctx.out_dir / "stamped.txt").write_text(f"{nonce}\n{_read(inputs)}", encoding="utf-8")
    return {"primary": "stamped.txt"}


def compile_text(ctx, inputs, options: CompileOptions):
    payload = f"{ctx.hardware}\n{options.optimize}\n{_read(inputs)}".encode()
    (ctx.out_dir / "program.bin").write_bytes(payload[::-1])
    return {"primary": "program.bin", "tool_tag": "txtc1"}


def pack(ctx, inputs, options):
    (ctx.out_dir / "packed.bin").write_bytes(f"{ctx.hardware}\n".encode() + _read(inputs).encode()[::-1])
    return {"primary": "packed.bin"}


def spellcheck(ctx, inputs, options):
    from spellchecker import SpellChecker  # only if the requirement is met

    unknown = sorted(SpellChecker().unknown(_read(inputs).split()))
    (ctx.out_dir / "unknown.json").write_text(json.dumps(unknown))
    return {"primary": "unknown.json"}


# -- hooks -------------------------------------------------------------------------------------


@hookimpl
def buildsys_register_kinds():
    return [
        KindSpec("text.source", 1, "a UTF-8 text file named by model.entrypoint", stored=False),
        KindSpec("text", 2, "normalized text", aliases=("txt",)),
        KindSpec("text.stats", 3, "word counts as JSON"),
        KindSpec("text.stamped", 3, "text with a random nonce (nondeterministic)"),
        KindSpec("text.spelling", 3, "unknown words as JSON"),
        KindSpec("text.bin", 4, "text 'compiled' on and for the target hardware"),
        KindSpec("text.pack", 4, "text packed ahead of time for any hardware"),
    ]


@hookimpl
def buildsys_register_sources():
    return [SourceSpec(framework="text", kind="text.source",
                       fingerprint=lambda model, root: [_text_file(model, root)], load=_load)]


@hookimpl
def buildsys_register_stages():
    return [
        StageSpec("text.normalize", consumes=("text.source",), produces="text", run=normalize,
                  options=NormalizeOptions, description="strip (and lowercase) every line"),
        StageSpec("text.ascii", consumes=("text",), produces="text", precision="int8", run=to_ascii,
                  description="lossy: replace non-ASCII characters"),
        StageSpec("text.wordcount", consumes=("text",), produces="text.stats", run=wordcount,
                  options=WordcountOptions, description="count words (delay makes it slow)"),
        StageSpec("text.stamp", consumes=("text",), produces="text.stamped", run=stamp,
                  deterministic=False, description="prefix a random nonce"),
        StageSpec("text.compile", consumes=("text",), produces="text.bin", run=compile_text,
                  options=CompileOptions, hardware=HardwarePolicy.TARGET,
                  description="must run on the hardware it builds for"),
        StageSpec("text.pack", consumes=("text",), produces="text.pack", run=pack,
                  hardware=HardwarePolicy.AHEAD_OF_TIME, description="builds for any hardware from here"),
        StageSpec("text.spellcheck", consumes=("text",), produces="text.spelling", run=spellcheck,
                  requires=(Requirement("pyspellchecker", ">=0.8", "pip install pyspellchecker"),),
                  description="needs pyspellchecker"),
    ]


@hookimpl
def buildsys_register_runners():
    # Runs a text artifact: whatever the inputs, its "output" is its text.
    return [RunnerSpec(name="text", kind="text",
                       load=lambda artifact, device: lambda inputs: [artifact.primary.read_text()])]


@hookimpl
def buildsys_tool_versions():
    return {"buildsys-text": __version__}
