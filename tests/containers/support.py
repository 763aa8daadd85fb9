"""The container tier's tools: the Docker engine, image builds, compose projects, containers.

Every container a test starts carries the label RUN_LABEL=<run id>, every compose project is
named after the run, and every port is published on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ARTEFACTS, ROOT, in_ci

DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
ENGINE = DEPLOY / "docker" / "engine.sh"
LOCAL_BASE = DEPLOY / "docker" / "local-base.sh"
GATEWAY_DOCKERFILE = DEPLOY / "docker" / "envoy.Dockerfile"
REPORT = ARTEFACTS / "containers" / "report.json"
RUN_LABEL = "io.restaurant-sentiment.test-run"
PROJECT_VERSION: str = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
    "project"
]["version"]
# Where the published images live by default; the tier tags its own builds under this prefix.
TEST_IMAGE_PREFIX = "restaurant-sentiment-test/restaurant-sentiment"
LOOPBACK = "127.0.0.1"


def unavailable(message: str) -> None:
    """Skip with the reason, or fail when running in CI, which must provide the tool."""
    if in_ci():
        pytest.fail(f"{message}; CI must provide it")
    pytest.skip(message)


def docker_client() -> str | None:
    """The docker CLI: $DOCKER, else Debian's client (it builds with BuildKit), else PATH."""
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    if Path("/usr/bin/docker").is_file():
        return "/usr/bin/docker"
    return shutil.which("docker")


@dataclass
class Docker:
    """A docker CLI bound to one engine, for one test run."""

    client: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    started_engine: bool = False
    # The run's own bridge network, for the containers started without compose.
    network: str | None = None

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.client, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            **kwargs,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def inspect(self, kind: str, name: str) -> dict[str, Any]:
        document = json.loads(self(kind, "inspect", name).stdout)
        assert isinstance(document, list) and len(document) == 1
        result: dict[str, Any] = document[0]
        return result

    def labelled(self, kind: str) -> list[str]:
        """The ids of this run's containers, networks or volumes."""
        flag = ["--all"] if kind == "container" else []
        out = self(kind, "ls", *flag, "--quiet", "--filter", f"label={RUN_LABEL}={self.run_id}")
        return out.stdout.split()

    def create_network(self) -> None:
        name = f"rstest{self.run_id}"
        self("network", "create", "--label", f"{RUN_LABEL}={self.run_id}", name)
        self.network = name

    def clean_up(self) -> None:
        """Remove everything this run created (containers first, then networks and volumes)."""
        for kind in ("container", "network", "volume"):
            ids = self.labelled(kind)
            if ids:
                remove = ["rm", "--force", "--volumes"] if kind == "container" else ["rm"]
                self(kind, *remove, *ids, check=False)


def start_engine(client: str) -> bool:
    """Make sure a Docker engine answers; True when this call started it."""
    result = subprocess.run(
        ["bash", str(ENGINE), "start"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DOCKER": client},
    )
    if result.returncode in (3, 4):
        unavailable(result.stderr.strip())
    assert result.returncode == 0, f"the Docker engine did not start:\n{result.stderr}"
    return "started" in result.stdout


def stop_engine(client: str) -> None:
    subprocess.run(
        ["bash", str(ENGINE), "stop"],
        capture_output=True,
        timeout=60,
        env={**os.environ, "DOCKER": client},
        check=False,
    )


def base_images(docker: Docker) -> dict[str, str]:
    """Build arguments naming the external bases: local ones unless CONTAINER_BASE=public."""
    if os.environ.get("CONTAINER_BASE", "local") == "public":
        return {}
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        unavailable(
            "the local base images need root and debootstrap (apt-get install debootstrap); "
            "set CONTAINER_BASE=public to build on the public images instead"
        )
    result = subprocess.run(
        ["bash", str(LOCAL_BASE)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "DOCKER": docker.client},
    )
    assert result.returncode == 0, f"local-base.sh failed:\n{result.stderr}"
    pairs = (line.split("=", 1) for line in result.stdout.split())
    return dict(pairs)


def ca_bundle() -> Path | None:
    """The CA bundle package downloads inside a build trust in addition to the image's own."""
    configured = os.environ.get("DOCKER_BUILD_CA_BUNDLE")
    if configured is not None:
        return Path(configured) if configured else None
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


@dataclass(frozen=True)
class Built:
    tag: str
    seconds: float


def build_image(
    docker: Docker, dockerfile: Path, tag: str, build_args: dict[str, str], log: Path
) -> Built:
    """docker build from the repository root, with the CA bundle as a BuildKit secret."""
    args = ["build", "--file", str(dockerfile), "--tag", tag, "--progress", "plain"]
    for key, value in sorted(build_args.items()):
        args += ["--build-arg", f"{key}={value}"]
    bundle = ca_bundle()
    if bundle is not None:
        args += ["--secret", f"id=ca-bundle,src={bundle}"]
    started = time.monotonic()
    result = docker(*args, str(ROOT), check=False, timeout=1200)
    seconds = time.monotonic() - started
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(result.stdout + result.stderr, encoding="utf-8")
    assert result.returncode == 0, (
        f"building {dockerfile.relative_to(ROOT)} failed (log: {log}):\n"
        + "\n".join((result.stdout + result.stderr).splitlines()[-40:])
    )
    return Built(tag, seconds)


def compose_command(docker: Docker) -> list[str]:
    """A Compose implementation: the `docker compose` plugin, else docker-compose."""
    plugin = docker("compose", "version", check=False)
    if plugin.returncode == 0:
        return [docker.client, "compose"]
    binary = shutil.which("docker-compose")
    if binary is None:
        unavailable("no Compose implementation (apt-get install docker-compose)")
    return [str(binary)]


@dataclass
class ComposeProject:
    """One `docker compose -p NAME` project of deploy/compose.yaml plus an override file."""

    docker: Docker
    command: list[str]
    name: str
    files: list[Path]
    env: dict[str, str]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        files = [a for f in self.files for a in ("--file", str(f))]
        result = subprocess.run(
            [*self.command, "--project-name", self.name, *files, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=DEPLOY,
            env={**os.environ, **self.env},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"compose {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def container(self, service: str) -> str:
        ids = self("ps", "--quiet", service).stdout.split()
        assert len(ids) == 1, f"{service}: expected one container, found {ids}"
        return ids[0]

    def down(self) -> None:
        self("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)


def wait_healthy(docker: Docker, container: str, timeout: float = 90) -> float:
    """Wait until Docker reports the container healthy; return the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = docker.inspect("container", container)["State"]
        health = (state.get("Health") or {}).get("Status")
        if health == "healthy":
            return time.monotonic() - started
        if not state.get("Running"):
            break
        time.sleep(0.25)
    logs = docker("logs", "--tail", "30", container, check=False)
    raise AssertionError(
        f"container {container} not healthy: {json.dumps(state.get('Health'))[-600:]}\n"
        f"{logs.stdout}{logs.stderr}"
    )


def published_port(docker: Docker, container: str, port: int) -> int:
    """The loopback host port published for a container port."""
    lines = docker("port", container, f"{port}/tcp").stdout.split()
    loopback = [line for line in lines if line.startswith(f"{LOOPBACK}:")]
    assert loopback, f"port {port} of {container} is not published on {LOOPBACK}: {lines}"
    assert len(loopback) == len(lines), f"port {port} is published beyond loopback: {lines}"
    return int(loopback[0].rsplit(":", 1)[1])


def wait_ready(url: str, started: float, timeout: float = 60, **kwargs: Any) -> float:
    """Poll url until it answers 200; return the seconds since `started`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(url, timeout=1.0, **kwargs)
            if answer.status_code == 200:
                return time.monotonic() - started
            last = answer.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.02)
    raise AssertionError(f"{url} not ready after {timeout}s (last: {last})")


@contextlib.contextmanager
def running(
    docker: Docker,
    image: str,
    *options: str,
    command: Sequence[str] = (),
    network: str | None = None,
) -> Iterator[str]:
    """`docker run --detach` with this run's label, on the run's network unless another is
    named; the container is removed afterwards."""
    network = network or docker.network
    attach = ["--network", network] if network else []
    label = ["--label", f"{RUN_LABEL}={docker.run_id}"]
    started = docker("run", "--detach", *label, *attach, *options, image, *command)
    container = started.stdout.strip()
    try:
        yield container
    finally:
        docker("rm", "--force", "--volumes", container, check=False)


class Report:
    """Measurements the tier prints at the end and keeps in test-artefacts/containers/."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def add(self, section: str, key: str, value: Any) -> None:
        self.data.setdefault(section, {})[key] = value

    def notes(self) -> list[str]:
        return [str(n) for n in self.data.get("notes", {}).values()]

    def write(self) -> None:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


REPORT_DATA = Report()
