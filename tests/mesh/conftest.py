"""Fixtures of the local mesh tests: real Envoy, real model-services, free loopback ports."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import pytest
import yaml

from localmesh import gateway
from localmesh.up import envoy_binary
from localmesh.values import Values, load_values
from tests.support import PYTHON, ROOT, free_port, running
from tests.support import model_services as start_model_services


@pytest.fixture(scope="session")
def values() -> Values:
    return load_values()


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
    frontend = [PYTHON, "-m", "frontend", "--host", "127.0.0.1", "--port", str(frontend_port)]
    frontend += ["--model-service-url", f"http://127.0.0.1:{listen.mesh.port}"]
    bootstrap = gateway.build_bootstrap(values, upstreams, listen)
    with (
        running(frontend, f"http://127.0.0.1:{frontend_port}/healthz", timeout=90),
        envoy(bootstrap, tmp_path_factory.mktemp("app")),
    ):
        yield listen
