"""Real processes on loopback for the fault tests: model-services, a frontend and Envoy."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

from restaurant_sentiment.tools.localmesh import gateway
from restaurant_sentiment.tools.localmesh.up import envoy_binary
from restaurant_sentiment.values import Values, load_values
from tests.support import CHART_VALUES, free_port, frontend_args, running

# One key for every model-service of a test, as the chart's Secret gives them.
FEEDBACK_SECRET = secrets.token_urlsafe(32)


def values() -> Values:
    return load_values(CHART_VALUES)


@contextlib.contextmanager
def envoy(
    model_service_ports: dict[str, int], frontend_port: int, workdir: Path
) -> Iterator[gateway.Listen]:
    """The generated gateway (the same config `make up` runs) in front of the given ports."""
    listen = gateway.Listen(
        gateway=gateway.Address("127.0.0.1", free_port()),
        mesh=gateway.Address("127.0.0.1", free_port()),
        admin=gateway.Address("127.0.0.1", free_port()),
    )
    upstreams = gateway.local_upstreams(model_service_ports, frontend_port)
    config = workdir / f"envoy-{listen.admin.port}.yaml"
    config.write_text(yaml.safe_dump(gateway.build_bootstrap(values(), upstreams, listen)))
    args = [envoy_binary(), "-c", str(config), "--disable-hot-restart", "--log-level", "error"]
    with running(args, f"http://127.0.0.1:{listen.admin.port}/ready", timeout=30):
        yield listen


@contextlib.contextmanager
def frontend(port: int, model_service_url: str, read_timeout: float) -> Iterator[int]:
    """The real frontend on port, calling the model-service at model_service_url."""
    args = frontend_args(port, model_service_url)
    env = {"FRONTEND_READ_TIMEOUT": str(read_timeout), "FRONTEND_LOG_LEVEL": "warning"}
    with running(args, f"http://127.0.0.1:{port}/healthz", env=env, timeout=90):
        yield port


def client(port: int, host: str) -> httpx.Client:
    """A client of the gateway on loopback that names the virtual host (httpx cannot resolve
    *.localhost here) and keeps no cookies of its own."""
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"host": host},
        timeout=30,
        follow_redirects=False,
    )
