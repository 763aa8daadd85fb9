"""Helpers shared by tests that start real processes: free ports, readiness waits, binaries."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ARTEFACTS = ROOT / "test-artefacts"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_binary(name: str, hint: str) -> str:
    """Return the path of a system binary, or skip (fail under CI) with the reason."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path:
        return path
    message = f"{name} is not installed ({hint})"
    if in_ci():
        pytest.fail(f"{message}; CI must install it")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Poll url until it answers 200, or fail with the process output."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            code = proc.returncode
            raise RuntimeError(f"process exited with {code} before {url} was ready:\n{out}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s (last error: {last})")


@contextlib.contextmanager
def running(
    args: Sequence[str],
    ready_url: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> Iterator[subprocess.Popen]:
    """Start a process, wait for ready_url, and stop it (and its group) afterwards."""
    proc = subprocess.Popen(
        list(args),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        if ready_url:
            wait_http(ready_url, timeout=timeout, proc=proc)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def model_service_args(version: str, port: int) -> list[str]:
    """The command line that starts one model-service version on a loopback port."""
    return [PYTHON, "-m", "model_service", "--host", "127.0.0.1", "--port", str(port),
            "--model-version", version]  # fmt: skip


@contextlib.contextmanager
def model_service(
    version: str = "stable", port: int | None = None, timeout: float = 90.0, **env: str
) -> Iterator[str]:
    """Run the real model-service with uvicorn on a free port; yield its base URL."""
    port = port or free_port()
    ready = f"http://127.0.0.1:{port}/readyz"
    with running(model_service_args(version, port), ready, env=env, timeout=timeout):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def model_services(versions: Iterable[str], timeout: float = 120.0) -> Iterator[dict[str, int]]:
    """Run several versions at once (their model loads overlap); yield version -> port."""
    ports = {version: free_port() for version in versions}
    procs = [
        subprocess.Popen(
            model_service_args(version, port),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for version, port in ports.items()
    ]
    try:
        for proc, port in zip(procs, ports.values(), strict=True):
            wait_http(f"http://127.0.0.1:{port}/readyz", timeout=timeout, proc=proc)
        yield ports
    finally:
        for proc in procs:
            stop(proc)


@contextlib.contextmanager
def prometheus(config: dict[str, object], workdir: Path) -> Iterator[str]:
    """The real Prometheus with this configuration on a free loopback port; yields its URL."""
    import yaml

    binary = require_binary("prometheus", "apt-get install prometheus")
    port = free_port()
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    args = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with running(args, f"http://127.0.0.1:{port}/-/ready", timeout=60):
        yield f"http://127.0.0.1:{port}"
