"""Records the core passes between its parts and to plugins: plain frozen data, no behaviour
beyond (de)serialising. Part of the public API where ``buildsys.__all__`` names them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileRecord:
    """One stored file: its name (relative, POSIX), sha256 and size in bytes."""

    name: str
    sha256: str
    size: int

    def to_json(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "size": self.size}
