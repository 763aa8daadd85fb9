"""`make restart` on a running `make up`, under load through the real gateway: every service
process is replaced and no request fails; a replacement that cannot start changes nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from restaurant_sentiment.tools.procs import pid_listening_on
from restaurant_sentiment.values import Values
from tests.mesh.conftest import Up, alive, descendants, start_up
from tests.support import ARTEFACTS, MODEL_DIR, PYTHON, ROOT, require_binary

pytestmark = pytest.mark.slow

# Each load generator runs until the restart is over, bounded in time; requests are paced so the
# machine keeps the CPU the restart needs (well above 200 a second together).
LOAD_LIMIT_SECONDS = 600
RESTART_TIMEOUT = 600
VECTORIZER = "c1_BoW_Sentiment_Model.pkl"
PREDICT_LUA = """
wrk.method = "POST"
wrk.body = '{"review": "The food was lovely.", "restaurantName": "Gourmet Haven"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Host"] = "service.localhost"
function delay() return 5 end
"""
# What htmx sends when the review form is posted: the verdict fragment comes back.
REVIEW_LUA = """
wrk.method = "POST"
wrk.body = "review=The+soup+was+lovely+and+the+staff+were+kind."
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Host"] = "app.localhost"
wrk.headers["HX-Request"] = "true"
function delay() return 10 end
"""


@dataclass
class Outcome:
    """What a load generator saw: wrk's own summary."""

    name: str
    requests: int
    seconds: float
    failed: int
    errors: dict[str, int]
    text: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def parse_wrk(name: str, text: str) -> Outcome:
    found = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m|h),", text)
    assert found, text
    seconds = float(found[2]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[found[3]]
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, socket.groups()), strict=True))
        if socket
        else {}
    )
    return Outcome(name, int(found[1]), seconds, int(failed[1]) if failed else 0, errors, text)


class Load:
    """Cookieless predictions via service.localhost and htmx review posts via app.localhost,
    sent by wrk through the gateway until stopped (at most LOAD_LIMIT_SECONDS)."""

    def __init__(self, up: Up, workdir: Path) -> None:
        self.up = up
        self.wrk = require_binary("wrk", "apt-get install wrk")
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def _start(self, name: str, script: str, path: str, connections: int) -> None:
        lua = self.workdir / f"{name}.lua"
        lua.write_text(script)
        url = f"http://127.0.0.1:{self.up.env['GATEWAY_PORT']}{path}"
        self.procs[name] = subprocess.Popen(
            [self.wrk, "-t1", f"-c{connections}", f"-d{LOAD_LIMIT_SECONDS}s", "--timeout", "30s",
             "-s", str(lua), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip

    def __enter__(self) -> Load:
        before = gateway_requests(self.up)
        self._start("predict", PREDICT_LUA, "/predict", 8)
        self._start("review", REVIEW_LUA, "/restaurants/gourmet-haven/reviews", 4)
        # Both streams flow before anything is replaced.
        deadline = time.monotonic() + 60
        while gateway_requests(self.up) < before + 500:
            assert time.monotonic() < deadline, "the load never reached the gateway"
            assert all(p.poll() is None for p in self.procs.values())
            time.sleep(0.2)
        self.started = time.monotonic()
        self.five_xx = gateway_stat(self.up, "http.gateway.downstream_rq_5xx")
        return self

    def stop(self) -> list[Outcome]:
        outcomes = []
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # wrk prints its summary and exits
            text, _ = proc.communicate(timeout=60)
            outcomes.append(parse_wrk(name, text))
        return outcomes

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def gateway_stat(up: Up, name: str) -> int:
    url = f"http://127.0.0.1:{up.env['ENVOY_ADMIN_PORT']}/stats"
    answer = httpx.get(url, params={"filter": f"^{re.escape(name)}$", "format": "json"}, timeout=10)
    return sum(int(s.get("value", 0)) for s in answer.json()["stats"])


def gateway_requests(up: Up) -> int:
    return gateway_stat(up, "http.gateway.downstream_rq_total")


def cluster_stats(up: Up) -> dict[str, int]:
    """The gateway's retry and drain counters, summed over the service clusters."""
    names = (
        "upstream_rq_retry",
        "upstream_rq_retry_success",
        "upstream_rq_retry_overflow",
        "upstream_cx_destroy_remote_with_active_rq",
        "outlier_detection.ejections_enforced_total",
    )
    return {
        name: sum(
            gateway_stat(up, f"cluster.{cluster}.{name}")
            for cluster in ("model-service-stable", "model-service-canary", "frontend")
        )
        for name in names
    }


def state(up: Up) -> dict[str, Any]:
    path = Path(up.env["LOCALMESH_RUN_DIR"]) / f"gateway-{up.env['GATEWAY_PORT']}" / "state.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def serving(up: Up) -> dict[str, tuple[int, int]]:
    """Service -> (port, pid of the process listening there), as the run state says."""
    now = state(up)
    ports = {f"model-service-{n}": p for n, p in now["model_service_ports"].items()}
    ports["frontend"] = now["frontend_port"]
    return {service: (port, pid_listening_on(port)) for service, port in ports.items()}


def restart(up: Up, **env: str) -> subprocess.CompletedProcess[str]:
    """`make restart`'s command, against this `make up`."""
    return subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.tools.localmesh", "restart"],
        cwd=ROOT,
        env={**up.env, **env},
        capture_output=True,
        text=True,
        timeout=RESTART_TIMEOUT,
    )


def predict_as(up: Up, values: Values, version: str) -> str:
    with httpx.Client(base_url=f"http://127.0.0.1:{up.env['GATEWAY_PORT']}", timeout=30) as api:
        answer = api.post(
            "/predict",
            headers={"host": values.hosts.service, "cookie": f"model-service-version={version}"},
            json={"review": "Lovely.", "restaurantName": "Gourmet Haven"},
        )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["modelVersion"])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained models that this test's `make up` serves and may break."""
    if not (MODEL_DIR / "canary" / "metadata.json").exists():
        pytest.fail("ml-model/ has no trained models: run `make models` first")
    folder = tmp_path_factory.mktemp("models")
    for version in ("stable", "canary"):
        shutil.copytree(MODEL_DIR / version, folder / version)
    return folder


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Up]:
    command = [PYTHON, "-m", "restaurant_sentiment.tools.localmesh", "up", "--model-dir",
               str(model_dir)]  # fmt: skip
    with start_up(tmp_path_factory.mktemp("run"), command) as up:
        up.wait_for("Press Ctrl-C to stop everything.")
        yield up


def test_a_replacement_that_cannot_start_leaves_the_old_process_serving(
    running: Up, values: Values, model_dir: Path, tmp_path: Path
) -> None:
    before = serving(running)
    artefact = model_dir / "canary" / VECTORIZER
    intact = artefact.read_bytes()
    artefact.write_bytes(intact[:100])  # what a half-copied retrained model looks like
    try:
        with Load(running, tmp_path) as load:
            result = restart(running)
            outcomes = load.stop()
            five_xx = gateway_stat(running, "http.gateway.downstream_rq_5xx") - load.five_xx
    finally:
        artefact.write_bytes(intact)
    assert result.returncode == 1, result.stdout + result.stderr
    old_canary = before["model-service-canary"][1]
    error = result.stderr.strip()
    new = "model-service-canary.2 (the new model-service-canary)"
    assert error.startswith(f"error: {new} exited"), error
    assert f"{artefact} does not match the sha256" in error
    assert f"model-service-canary (pid {old_canary}) keeps serving" in error
    assert "Traceback" not in result.stderr
    # The old canary serves on; the frontend was never touched; only stable (first) was replaced.
    after = serving(running)
    assert after["model-service-canary"] == before["model-service-canary"]
    assert after["frontend"] == before["frontend"]
    assert after["model-service-stable"][1] != before["model-service-stable"][1]
    assert predict_as(running, values, "canary") == "canary"
    # No request failed meanwhile.
    for outcome in outcomes:
        assert outcome.requests > 0, outcome.text
        assert outcome.failed == 0 and not any(outcome.errors.values()), outcome.text
    assert five_xx == 0
    running.wait_for("restart failed: model-service-canary.2")


def test_every_process_is_replaced_under_load_and_no_request_fails(
    running: Up, values: Values, tmp_path: Path
) -> None:
    before = serving(running)
    gateway_pid = pid_listening_on(int(running.env["GATEWAY_PORT"]))
    counters = cluster_stats(running)
    with Load(running, tmp_path) as load:
        began = time.monotonic()
        first = subprocess.Popen(
            [PYTHON, "-m", "restaurant_sentiment.tools.localmesh", "restart"],
            cwd=ROOT,
            env=running.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert first.stdout is not None
            assert "restarting every service process" in first.stdout.readline()
            assert "model-service-stable: started model-service-stable." in first.stdout.readline()
            # One restart at a time: a second one is refused while this one runs.
            second = restart(running)
            assert second.returncode == 1
            assert "a restart of this `make up` is already running" in second.stderr
            progress, errors = first.communicate(timeout=RESTART_TIMEOUT)
        finally:
            if first.poll() is None:
                first.kill()
        seconds = time.monotonic() - began
        outcomes = load.stop()
        five_xx = gateway_stat(running, "http.gateway.downstream_rq_5xx") - load.five_xx
    assert first.returncode == 0, progress + errors
    assert "done: 3 processes replaced" in progress
    counters = {name: value - counters[name] for name, value in cluster_stats(running).items()}

    # Every service process is new, on a new port; the old ones are gone; the gateway stayed.
    after = serving(running)
    assert set(after) == set(before)
    for service, (port, pid) in after.items():
        old_port, old_pid = before[service]
        assert pid != old_pid and port != old_port, service
        assert not alive(old_pid), f"{service}: the old process {old_pid} still runs"
        assert pid in descendants(running.proc.pid), service
    assert pid_listening_on(int(running.env["GATEWAY_PORT"])) == gateway_pid

    requests = sum(o.requests for o in outcomes)
    rate = sum(o.rate for o in outcomes)
    figures = {
        "requests": requests,
        "requests_per_second": round(rate),
        "by_kind": {
            o.name: {"requests": o.requests, "per_second": round(o.rate)} for o in outcomes
        },
        "failed": sum(o.failed + sum(o.errors.values()) for o in outcomes),
        "gateway_5xx": five_xx,
        "restart_seconds": round(seconds, 1),
        "gateway_counters": counters,
    }
    ARTEFACTS.mkdir(exist_ok=True)
    (ARTEFACTS / "restart-under-load.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
    for outcome in outcomes:
        assert outcome.failed == 0 and not any(outcome.errors.values()), outcome.text
    assert five_xx == 0, figures
    assert rate >= 200, figures

    # Everything that read the old ports follows the new processes.
    app = httpx.Client(
        base_url=f"http://127.0.0.1:{running.env['GATEWAY_PORT']}",
        headers={"host": values.hosts.app},
        timeout=30,
    )
    with app:
        page = app.get("/experiment.json")
    assert page.status_code == 200, page.text
    assert {v["name"] for v in page.json()["versions"]} == {"stable", "canary"}
    assert {v["name"] for v in running.experiment()["versions"]} == {"stable", "canary"}
    if shutil.which("prometheus"):
        wanted = {f"127.0.0.1:{port}" for port, _ in after.values()}
        targets: set[str] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and targets != wanted:
            answer = httpx.get(
                f"http://127.0.0.1:{running.env['PROMETHEUS_PORT']}/api/v1/targets", timeout=10
            ).json()
            targets = {
                t["labels"]["instance"]
                for t in answer["data"]["activeTargets"]
                if t["labels"]["job"] != "envoy"
            }
            time.sleep(0.5)
        assert targets == wanted


def test_restart_without_a_running_make_up_says_so(running: Up) -> None:
    result = restart(running, GATEWAY_PORT="1")
    assert result.returncode == 2
    assert "no `make up` is running with GATEWAY_PORT=1" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_the_replacements_too(running: Up) -> None:
    """The supervisor owns the processes a restart started: nothing is left behind."""
    children = descendants(running.proc.pid)
    assert children
    os.killpg(running.proc.pid, signal.SIGINT)
    assert running.proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.2)
    assert not {pid for pid in children if alive(pid)}
    running.drain()
    assert "SIGINT received" in running.output
