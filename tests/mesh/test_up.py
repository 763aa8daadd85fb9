"""Smoke test of `make up` (`python -m localmesh up`): start, use, SIGTERM, nothing left behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from restaurant_sentiment.values import Values
from tests.mesh.conftest import Up, alive, descendants, no_cookies
from tests.support import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_up_prints_urls_serves_and_stops_cleanly(
    up: Up, values: Values, stop_signal: signal.Signals
) -> None:
    gateway_port = up.env["GATEWAY_PORT"]
    app_line = up.wait_for(f"http://{values.hosts.app}:{gateway_port}/")
    api_line = up.wait_for(f"http://{values.hosts.service}:{gateway_port}/apidocs")
    assert "app" in app_line and "API" in api_line
    assert up.proc.poll() is None

    base = f"http://127.0.0.1:{gateway_port}"
    with httpx.Client(base_url=base, cookies=no_cookies(), timeout=15) as client:
        prediction = client.post(
            "/predict",
            headers={"host": values.hosts.service},
            json={"review": "Wonderful food, friendly staff.", "restaurantName": "Gourmet Haven"},
        )
        assert prediction.status_code == 200, prediction.text
        assert prediction.json()["modelVersion"] in values.version_names

        homepage = client.get("/", headers={"host": values.hosts.app})
        assert homepage.status_code == 200 and "Gourmet Haven" in homepage.text

        # The frontend reaches the model-service through the mesh listener, so the browser's
        # cookie (relayed by the frontend) picks the version, as in the cluster.
        for version in values.version_names:
            review = client.post(
                "/restaurants/gourmet-haven/reviews",
                headers={"host": values.hosts.app, "cookie": f"model-service-version={version}"},
                data={"review": "The soup was cold and the waiter rude."},
            )
            assert review.status_code == 200, review.text
            assert f"model version <strong>{version}</strong>" in review.text

    if shutil.which("prometheus"):
        prometheus = f"http://127.0.0.1:{up.env['PROMETHEUS_PORT']}"
        up.wait_for(prometheus)
        # Ready is not yet discovered: the targets appear a moment after /-/ready.
        jobs: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(jobs) < 3:
            targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()
            jobs = {t["labels"]["job"] for t in targets["data"]["activeTargets"]}
            time.sleep(0.2)
        assert jobs == {"model-service", "frontend", "envoy"}
        rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()
        assert rules["data"]["groups"], "the project's alert rules were not loaded"
    else:
        assert any("prometheus is not on the PATH" in line for line in up.lines)

    # A second `make up` while this one runs fails at once, naming the port.
    second = subprocess.run(
        [sys.executable, "-m", "restaurant_sentiment.tools.localmesh", "up"],
        cwd=ROOT,
        env=up.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2
    assert f"port {gateway_port} (GATEWAY_PORT) is already in use" in second.stderr

    children = descendants(up.proc.pid)
    assert len(children) >= 4, children
    # Ctrl-C in a terminal signals the whole foreground process group, not only `make up`.
    if stop_signal == signal.SIGINT:
        os.killpg(up.proc.pid, signal.SIGINT)
    else:
        up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(timeout=60) == 0, up.output
    up.drain()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.2)
    left = {pid for pid in children if alive(pid)}
    assert not left, f"processes left behind: {left}\n{up.output}"
    assert f"{stop_signal.name} received" in up.output
    # The routes and state that `make promote` uses go with the run.
    assert not (Path(up.env["LOCALMESH_RUN_DIR"]) / f"gateway-{gateway_port}").exists()
    # Each service's log lines are prefixed with its name; the gateway logs each request.
    prefixes = {line.split("|")[0].split()[-1] for line in up.lines if "|" in line}
    assert {"model-service-stable", "model-service-canary", "frontend", "gateway"} <= prefixes
    assert any(
        line.split("|")[0].split()[-1] == "gateway" and '"POST /predict" 200' in line
        for line in up.lines
    ), up.output
