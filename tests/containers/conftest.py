"""Session fixtures of the container tier: the engine, the three images, the compose stack."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.containers.support import (
    ARTEFACTS,
    COMPOSE_FILE,
    DEPLOY,
    GATEWAY_DOCKERFILE,
    LOOPBACK,
    PROJECT_VERSION,
    REPORT,
    REPORT_DATA,
    RUN_LABEL,
    TEST_IMAGE_PREFIX,
    Built,
    ComposeProject,
    Docker,
    Report,
    base_images,
    build_image,
    compose_command,
    docker_client,
    start_engine,
    stop_engine,
    unavailable,
    wait_healthy,
)
from tests.support import free_port

# Services whose public images no registry here can serve; compose starts the others.
UNREACHABLE = ("prometheus", "grafana")
LOGS = ARTEFACTS / "containers"


def compose_document() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    client = docker_client()
    if client is None:
        unavailable("docker is not installed (apt-get install docker.io)")
    assert client is not None
    started = start_engine(client)
    engine = Docker(client, started_engine=started)
    REPORT_DATA.add("engine", "server", engine("version", "--format", "{{.Server.Version}}").stdout)
    try:
        engine.create_network()
        yield engine
    finally:
        engine.clean_up()
        if started:
            stop_engine(client)


@pytest.fixture(scope="session")
def report() -> Report:
    return REPORT_DATA


@pytest.fixture(scope="session")
def bases(docker: Docker) -> dict[str, str]:
    started = time.monotonic()
    args = base_images(docker)
    REPORT_DATA.add("build seconds", "local bases", round(time.monotonic() - started, 1))
    return args


def _build_service(docker: Docker, bases: dict[str, str], service: str, name: str) -> Built:
    """Build a service's image from the Dockerfile its compose service names."""
    build = compose_document()["services"][service]["build"]
    context = (DEPLOY / build["context"]).resolve()
    dockerfile = context / build["dockerfile"]
    tag = f"{TEST_IMAGE_PREFIX}-{name}:{PROJECT_VERSION}"
    built = build_image(docker, dockerfile, tag, bases, LOGS / f"build-{name}.log")
    REPORT_DATA.add("build seconds", name, round(built.seconds, 1))
    return built


@pytest.fixture(scope="session")
def model_service_image(docker: Docker, bases: dict[str, str]) -> str:
    return _build_service(docker, bases, "model-service-stable", "model-service").tag


@pytest.fixture(scope="session")
def frontend_image(docker: Docker, bases: dict[str, str]) -> str:
    return _build_service(docker, bases, "app", "frontend").tag


@pytest.fixture(scope="session")
def gateway_image(docker: Docker, bases: dict[str, str]) -> str:
    tag = f"{TEST_IMAGE_PREFIX}-gateway:{PROJECT_VERSION}"
    built = build_image(docker, GATEWAY_DOCKERFILE, tag, bases, LOGS / "build-gateway.log")
    REPORT_DATA.add("build seconds", "gateway", round(built.seconds, 1))
    return built.tag


@pytest.fixture(scope="session")
def images(model_service_image: str, frontend_image: str, gateway_image: str) -> dict[str, str]:
    return {
        "model-service": model_service_image,
        "frontend": frontend_image,
        "gateway": gateway_image,
    }


def override_file(path: Path, docker: Docker, gateway_image: str) -> Path:
    """The only change to deploy/compose.yaml: the gateway runs the locally built Envoy image
    (envoyproxy/envoy cannot be pulled here), and containers carry the run's label."""
    services: dict[str, Any] = {
        name: {"labels": {RUN_LABEL: docker.run_id}} for name in compose_document()["services"]
    }
    services["gateway"]["image"] = gateway_image
    path.write_text(yaml.safe_dump({"services": services}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def compose_project(
    docker: Docker, images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeProject]:
    """deploy/compose.yaml started by a real Compose implementation, without Prometheus and
    Grafana; ports on 127.0.0.1."""
    command = compose_command(docker)
    version = subprocess.run([*command, "version", "--short"], capture_output=True, text=True)
    REPORT_DATA.add("compose", "implementation", " ".join(command))
    REPORT_DATA.add("compose", "version", version.stdout.strip())
    folder = tmp_path_factory.mktemp("compose")
    project = ComposeProject(
        docker,
        command,
        name=f"rstest{docker.run_id}",
        files=[COMPOSE_FILE, override_file(folder / "override.yaml", docker, images["gateway"])],
        env={
            "IMAGE_PREFIX": TEST_IMAGE_PREFIX,
            "TAG": PROJECT_VERSION,
            "BIND_ADDRESS": LOOPBACK,
            "APP_PORT": str(free_port()),
            "GATEWAY_PORT": str(free_port()),
        },
    )
    services = [s for s in compose_document()["services"] if s not in UNREACHABLE]
    REPORT_DATA.add(
        "notes",
        "unreachable images",
        "not started: "
        + ", ".join(f"{s} ({compose_document()['services'][s]['image']})" for s in UNREACHABLE)
        + " - no image registry is reachable here; their configuration is checked statically "
        "by tests/deploy/test_compose.py",
    )
    started = time.monotonic()
    try:
        # Compose starts each service once those it depends on report healthy.
        project("up", "--detach", "--no-build", *services, timeout=600)
        for service in services:
            wait_healthy(docker, project.container(service))
        REPORT_DATA.add("compose", "up to all healthy (s)", round(time.monotonic() - started, 1))
        yield project
    finally:
        logs = project("logs", "--no-color", check=False)
        LOGS.mkdir(parents=True, exist_ok=True)
        (LOGS / "compose.log").write_text(logs.stdout + logs.stderr, encoding="utf-8")
        project.down()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT_DATA.data:
        return
    REPORT_DATA.write()
    terminalreporter.section("containers")
    for section, values in sorted(REPORT_DATA.data.items()):
        for key, value in values.items():
            shown = json.dumps(value) if isinstance(value, dict | list) else value
            terminalreporter.write_line(f"{section}: {key}: {shown}")
    terminalreporter.write_line(f"(also in {REPORT.relative_to(ARTEFACTS.parent)})")
