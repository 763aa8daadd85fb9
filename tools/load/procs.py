"""Which local process serves a port, and how much memory it holds (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PROC = Path("/proc")


def pid_listening_on(port: int) -> int:
    """The process holding a listening loopback TCP socket on port."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (PROC / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    if inodes:
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                for fd in (entry / "fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) in inodes:
                            return int(entry.name)
    raise LookupError(f"no process of this user listens on port {port}")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process."""
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"process {pid} reports no VmRSS")
