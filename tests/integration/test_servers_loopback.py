"""Every socket the test registries listen on is bound to 127.0.0.1 (read from /proc, like ss -ltnp)."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path


def listening(group: int) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket owned by a process of process group ``group``."""
    inodes = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (OSError, ValueError, IndexError):
            continue
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # state LISTEN
                address, port = fields[1].split(":")
                raw = bytes.fromhex(address)
                words = struct.unpack(f"<{len(raw) // 4}I", raw)  # /proc prints 32-bit words in host order
                found.add((socket.inet_ntop(family, struct.pack(f">{len(words)}I", *words)), int(port, 16)))
    return found


def test_registry_servers_listen_on_loopback_only(oci_server, oci_auth_server, mlflow_server, mlflow_auth_server):
    for server in (oci_server, oci_auth_server, mlflow_server, mlflow_auth_server):
        sockets = listening(server.process.pid)
        assert ("127.0.0.1", server.port) in sockets, f"{server.address} not found among {sockets}"
        assert {address for address, _ in sockets} == {"127.0.0.1"}, f"{server.address}: {sockets}"
