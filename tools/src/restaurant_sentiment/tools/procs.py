"""Starting local processes and waiting for them: one way, for make up, load, bench and tests."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx
import psutil


class NotReady(RuntimeError):
    """A process exited, or did not answer, before it was ready."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str,
    timeout: float = 60.0,
    proc: subprocess.Popen | None = None,  # type: ignore[type-arg]
    interval: float = 0.05,
) -> None:
    """Poll url until it answers 200; NotReady if proc exits first or time runs out."""
    deadline = time.monotonic() + timeout
    last: object = None
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                code = proc.returncode
                raise NotReady(f"{_name(proc)} exited with {code} before {url} was ready")
            try:
                status = client.get(url).status_code
                if status == 200:
                    return
                last = f"HTTP {status}"
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(interval)
    raise NotReady(f"{url} not ready after {timeout:.0f}s (last answer: {last})")


def _name(proc: subprocess.Popen) -> str:  # type: ignore[type-arg]
    args = proc.args if isinstance(proc.args, list) else [str(proc.args)]
    return " ".join(str(a) for a in args[:4])


def start(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    output: int | IO[bytes] | IO[str] | None = subprocess.DEVNULL,
    text: bool = False,
) -> subprocess.Popen:  # type: ignore[type-arg]
    """Start a process in its own session, so that stop() ends it with all its children."""
    return subprocess.Popen(
        list(args),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        text=text,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:  # type: ignore[type-arg]
    """SIGTERM the process group, wait for it, SIGKILL what is left after timeout."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def running(
    args: Sequence[str],
    ready_url: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    cwd: Path | None = None,
    output: int | IO[bytes] | IO[str] | None = subprocess.DEVNULL,
    text: bool = False,
) -> Iterator[subprocess.Popen]:  # type: ignore[type-arg]
    """Start a process, wait until ready_url answers 200, and stop it when the block ends."""
    proc = start(args, env=env, cwd=cwd, output=output, text=text)
    try:
        if ready_url:
            wait_http(ready_url, timeout=timeout, proc=proc)
        yield proc
    finally:
        stop(proc)


def pid_listening_on(port: int) -> int:
    """The process holding a listening TCP socket on port."""
    for connection in psutil.net_connections(kind="tcp"):
        if (
            connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
            and connection.pid is not None
        ):
            return connection.pid
    raise LookupError(f"no process of this user listens on port {port}")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process."""
    return int(psutil.Process(pid).memory_info().rss)


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of values (share in 0..1)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]
