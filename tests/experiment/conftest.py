"""Fixtures of the experiment tests: real model-services behind the real Envoy gateway."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import CHART_VALUES, PYTHON, ROOT
from tests.support import prometheus as run_prometheus


@dataclass(frozen=True)
class Mesh:
    """Where the local mesh of a test listens."""

    gateway: str
    service_host: str
    model_service_ports: dict[str, int]
    env: dict[str, str]

    def metrics_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}/metrics" for p in self.model_service_ports.values()]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run `python -m experiment` as a person would."""
    return subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.tools.experiment", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def decide_json(*args: str, env: dict[str, str] | None = None) -> dict:
    result = run_cli("decide", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """`make up` itself (`python -m localmesh up`): both versions behind the generated gateway."""
    from restaurant_sentiment.values import load_values
    from tests.mesh.conftest import start_up

    values = load_values(CHART_VALUES)
    with start_up(tmp_path_factory.mktemp("run")) as up:
        up.wait_for("Press Ctrl-C to stop everything.")
        yield Mesh(
            gateway=f"http://127.0.0.1:{up.env['GATEWAY_PORT']}",
            service_host=values.hosts.service,
            model_service_ports=json.loads(up.env["MODEL_SERVICE_PORTS"]),
            env=up.env,
        )


@contextlib.contextmanager
def prometheus(targets: list[str], workdir: Path) -> Iterator[str]:
    """The real Prometheus scraping targets every second; yields its base URL."""
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "test", "static_configs": [{"targets": targets}]}],
    }
    with run_prometheus(config, workdir) as url:
        yield url
