"""Fixtures of the local mesh tests: real Envoy, real model-services, free loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import pytest
import yaml

from restaurant_sentiment.tools.localmesh import gateway
from restaurant_sentiment.tools.localmesh.up import envoy_binary
from restaurant_sentiment.values import Values, load_values
from tests.support import CHART_VALUES, ROOT, free_port, frontend_args, running
from tests.support import model_services as start_model_services


@pytest.fixture(scope="session")
def values() -> Values:
    return load_values(CHART_VALUES)


def no_cookies() -> CookieJar:
    """A jar that stores nothing, so each request is a new visitor unless it sends a cookie."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def loopback_listen(access_log: bool = False) -> gateway.Listen:
    return gateway.Listen(
        gateway=gateway.Address("127.0.0.1", free_port()),
        mesh=gateway.Address("127.0.0.1", free_port()),
        admin=gateway.Address("127.0.0.1", free_port()),
        access_log=access_log,
    )


@contextlib.contextmanager
def envoy(bootstrap: dict[str, Any], workdir: Path) -> Iterator[None]:
    """Run the real Envoy on a bootstrap until the block ends."""
    config = workdir / f"envoy-{free_port()}.yaml"
    config.write_text(yaml.safe_dump(bootstrap))
    admin = bootstrap["admin"]["address"]["socket_address"]["port_value"]
    args = [envoy_binary(), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"]
    with running(args, f"http://127.0.0.1:{admin}/ready", timeout=30):
        yield


@pytest.fixture(scope="session")
def model_services(values: Values) -> Iterator[dict[str, int]]:
    """Every version of the values file as a real model-service; yields version -> port."""
    if not (ROOT / "ml-model" / "stable" / "metadata.json").exists():
        pytest.fail("ml-model/ has no trained models: run `make models` first")
    with start_model_services(values.version_names) as ports:
        yield ports


@pytest.fixture(scope="session")
def mesh(
    values: Values, model_services: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gateway.Listen]:
    """One Envoy in front of the real model-services (the app host has no live frontend here)."""
    listen = loopback_listen()
    upstreams = gateway.local_upstreams(model_services, free_port())
    with envoy(
        gateway.build_bootstrap(values, upstreams, listen), tmp_path_factory.mktemp("envoy")
    ):
        yield listen


@pytest.fixture(scope="session")
def app_stack(
    values: Values, model_services: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gateway.Listen]:
    """The whole app as `make up` wires it: model-services, a frontend calling the mesh listener,
    and one Envoy in front of both."""
    listen = loopback_listen()
    frontend_port = free_port()
    upstreams = gateway.local_upstreams(model_services, frontend_port)
    frontend = frontend_args(frontend_port, f"http://127.0.0.1:{listen.mesh.port}")
    bootstrap = gateway.build_bootstrap(values, upstreams, listen)
    with (
        running(frontend, f"http://127.0.0.1:{frontend_port}/healthz", timeout=90),
        envoy(bootstrap, tmp_path_factory.mktemp("app")),
    ):
        yield listen


@dataclass
class Up:
    """A running `python -m localmesh up` and the lines it printed so far."""

    proc: subprocess.Popen[str]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def start_reader(self) -> None:
        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=read, daemon=True).start()

    def wait_for(self, text: str, timeout: float = 150.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"up exited before printing {text!r}:\n" + self.output)
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed after {timeout}s:\n" + self.output)

    def drain(self) -> None:
        while True:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                return
            if line is None:
                return
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def experiment(self) -> dict[str, Any]:
        """`make experiment JSON=1` against this `make up`: the analysis it prints."""
        # Through make, as a user pipes it: stdout must be the JSON alone, without the recipe.
        decided = subprocess.run(
            ["make", "--no-print-directory", "experiment", "JSON=1"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert decided.returncode == 0, decided.stderr
        return json.loads(decided.stdout)  # type: ignore[no-any-return]


def descendants(pid: int) -> set[int]:
    """Every live process below pid, from /proc (children may sit in their own sessions)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextlib.contextmanager
def start_up(run_dir: Path, command: list[str] | None = None) -> Iterator[Up]:
    """`make up`'s command (or `command`, e.g. `make up` itself) on free ports, stopped after."""
    if not (ROOT / "ml-model" / "stable" / "metadata.json").exists():
        pytest.fail("ml-model/ has no trained models: run `make models` first")
    ports = {
        "GATEWAY_PORT": free_port(),
        "MESH_PORT": free_port(),
        "ENVOY_ADMIN_PORT": free_port(),
        "FRONTEND_PORT": free_port(),
        "PROMETHEUS_PORT": free_port(),
    }
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    env["MODEL_SERVICE_PORTS"] = json.dumps({"stable": free_port(), "canary": free_port()})
    env["LOCALMESH_RUN_DIR"] = str(run_dir)
    proc = subprocess.Popen(
        command or [sys.executable, "-m", "restaurant_sentiment.tools.localmesh", "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = Up(proc, env)
    running.start_reader()
    try:
        yield running
    finally:
        if proc.poll() is None:
            # A failed test must not leave the whole app running.
            for pid in descendants(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    with start_up(tmp_path / "run") as running:
        yield running
