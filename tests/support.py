"""Helpers shared by tests that start real processes: commands, binaries, the chart's values.

Starting a process and waiting for it is the tools' own code (`restaurant_sentiment.tools.procs`),
so the tests start services exactly as `make up`, `make load` and `make bench` do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from restaurant_sentiment.tools.paths import ARTEFACTS, CHART, CHART_VALUES, MODEL_DIR, ROOT
from restaurant_sentiment.tools.procs import free_port, stop, wait_http
from restaurant_sentiment.tools.procs import running as _running

__all__ = [
    "ARTEFACTS",
    "CHART",
    "CHART_VALUES",
    "MODEL_DIR",
    "PYTHON",
    "ROOT",
    "free_port",
    "frontend_args",
    "in_ci",
    "model_service",
    "model_service_args",
    "model_services",
    "prometheus",
    "redis_server",
    "require_binary",
    "running",
    "stop",
    "wait_http",
]

PYTHON = sys.executable


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


@contextlib.contextmanager
def running(
    args: Sequence[str],
    ready_url: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> Iterator[subprocess.Popen[str]]:
    """Start a process from the repository root, its output in a pipe the test can read."""
    with _running(
        args, ready_url, env=env, timeout=timeout, cwd=ROOT, output=subprocess.PIPE, text=True
    ) as proc:
        yield proc


def model_service_args(version: str, port: int, values: Path = CHART_VALUES) -> list[str]:
    """The command line that starts one model-service version on a loopback port."""
    return [PYTHON, "-m", "restaurant_sentiment.model_service", "--host", "127.0.0.1",
            "--port", str(port), "--model-version", version,
            "--values-file", str(values)]  # fmt: skip


def frontend_args(port: int, model_service_url: str, values: Path = CHART_VALUES) -> list[str]:
    """The command line that starts the frontend on a loopback port."""
    return [PYTHON, "-m", "restaurant_sentiment.frontend", "--host", "127.0.0.1",
            "--port", str(port), "--model-service-url", model_service_url,
            "--values-file", str(values)]  # fmt: skip


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
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(_running(model_service_args(version, port), cwd=ROOT))
            for version, port in ports.items()
        ]
        for proc, port in zip(procs, ports.values(), strict=True):
            wait_http(f"http://127.0.0.1:{port}/readyz", timeout=timeout, proc=proc)
        yield ports


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


@contextlib.contextmanager
def redis_server(*args: str) -> Iterator[str]:
    """The real redis-server on a free loopback port, nothing saved; yields its URL."""
    binary = require_binary("redis-server", "apt-get install redis-server")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    proc = subprocess.Popen(
        [*command, "--appendonly", "no", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # synchronise on its own log line
            if "Ready to accept connections" in line:
                break
        else:
            pytest.fail(f"redis-server exited with {proc.wait()}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def values_variant(path: Path, **changes: object) -> Path:
    """A copy of the chart's values with top-level keys replaced (camelCase), written to path."""
    import yaml

    raw = yaml.safe_load(CHART_VALUES.read_text(encoding="utf-8"))
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path
