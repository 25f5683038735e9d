"""The byte forms buildsys hashes: canonical JSON, and sha256 of text and of files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def canonical(data: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, ASCII. The form hashed into recipes, action keys
    and artifact digests, so it never changes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
