"""`make promote` / `make rollback` on a running `make up`: weights change, nothing is dropped."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from restaurant_sentiment.values import Values
from tests.mesh.conftest import Up, no_cookies, start_up
from tests.support import ROOT

pytestmark = pytest.mark.slow

REVIEW = {"review": "The food was lovely.", "restaurantName": "Gourmet Haven"}
# The stream of requests during a switch is bounded in time and in count.
STREAM_SECONDS = 90.0
STREAM_LIMIT = 30_000
# A short pause between a client's requests, so the stream lasts until the switch is over.
STREAM_PAUSE = 0.01
STREAM_CLIENTS = 4


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with start_up(tmp_path_factory.mktemp("run")) as up:
        up.wait_for("Press Ctrl-C to stop everything.")
        yield up


def localmesh(up: Up, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m localmesh ...` as `make promote` runs it, with that `make up`'s environment."""
    return subprocess.run(
        [sys.executable, "-m", "restaurant_sentiment.tools.localmesh", *args],
        cwd=ROOT,
        env={**up.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def client(up: Up, values: Values) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{up.env['GATEWAY_PORT']}",
        headers={"host": values.hosts.service},
        cookies=no_cookies(),
        timeout=30,
        trust_env=False,
    )


def versions_of_new_clients(up: Up, values: Values, count: int = 40) -> Counter[str]:
    with client(up, values) as http:
        return Counter(
            http.post("/predict", json=REVIEW).json()["modelVersion"] for _ in range(count)
        )


class Stream:
    """Clients sending predictions over kept-alive connections until told to stop."""

    def __init__(self, up: Up, values: Values) -> None:
        self.up, self.values = up, values
        self.stop = threading.Event()
        self.outcomes: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self.run, daemon=True) for _ in range(STREAM_CLIENTS)
        ]

    def run(self) -> None:
        deadline = time.monotonic() + STREAM_SECONDS
        with client(self.up, self.values) as http:
            while not self.stop.is_set() and time.monotonic() < deadline:
                with self.lock:
                    if len(self.outcomes) >= STREAM_LIMIT:
                        return
                try:
                    response = http.post("/predict", json=REVIEW)
                    outcome = (
                        response.json()["modelVersion"]
                        if response.status_code == 200
                        else f"HTTP {response.status_code}"
                    )
                except httpx.HTTPError as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with self.lock:
                    self.outcomes.append((time.monotonic(), outcome))
                self.stop.wait(STREAM_PAUSE)

    def __enter__(self) -> Stream:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=STREAM_SECONDS + 30)


def test_promote_during_a_stream_of_requests_drops_none_and_moves_all_traffic(
    running: Up, values: Values
) -> None:
    assert set(versions_of_new_clients(running, values, 60)) == {"stable", "canary"}
    with Stream(running, values) as stream:
        time.sleep(2)
        before = len(stream.outcomes)
        promoted = localmesh(running, "promote", "canary")
        switched = time.monotonic()
        time.sleep(2)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "stable 0%, canary 100%" in promoted.stdout
    failures = [outcome for _, outcome in stream.outcomes if outcome not in values.version_names]
    assert failures == [], failures[:5]
    after = [outcome for at, outcome in stream.outcomes if at > switched]
    assert before > 20 and len(after) > 20, (before, len(after))
    assert set(after) == {"canary"}, Counter(after)

    assert versions_of_new_clients(running, values) == Counter({"canary": 40})
    # A client pinned to the retired version is moved to the winner and pinned anew.
    with client(running, values) as http:
        pinned = http.post(
            "/predict", json=REVIEW, headers={"cookie": "model-service-version=stable"}
        )
    assert pinned.json()["modelVersion"] == "canary"
    assert pinned.headers["set-cookie"].startswith("model-service-version=canary;")


def test_rollback_sends_everyone_back_to_stable(running: Up, values: Values) -> None:
    result = localmesh(running, "rollback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions_of_new_clients(running, values) == Counter({"stable": 40})
    with client(running, values) as http:
        pinned = http.post(
            "/predict", json=REVIEW, headers={"cookie": "model-service-version=canary"}
        )
    assert pinned.json()["modelVersion"] == "stable"
    # Once more: nothing changes, and the command succeeds instead of waiting for routes Envoy
    # never reloads (it ignores an update equal to what it serves) and failing.
    again = localmesh(running, "rollback")
    assert again.returncode == 0, again.stdout + again.stderr
    assert versions_of_new_clients(running, values) == Counter({"stable": 40})


def test_dry_run_changes_nothing(running: Up, values: Values) -> None:
    # From a known state, whichever test of this module ran before.
    assert localmesh(running, "rollback").returncode == 0
    result = localmesh(running, "promote", "canary", DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    assert "would give the gateway" in result.stdout and "canary 100%" in result.stdout
    assert set(versions_of_new_clients(running, values)) == {"stable"}


def weights_everywhere(up: Up, values: Values) -> dict[str, dict[str, float]]:
    """The weights as /experiment.json, `make experiment` and the frontend's gauge show them."""
    app = httpx.Client(
        base_url=f"http://127.0.0.1:{up.env['GATEWAY_PORT']}",
        headers={"host": values.hosts.app},
        timeout=30,
        trust_env=False,
    )
    with app:
        page = app.get("/experiment.json").json()
    metrics = httpx.get(f"http://127.0.0.1:{up.env['FRONTEND_PORT']}/metrics", timeout=10).text
    gauge = {
        sample.labels["model_version"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "model_version_configured_weight"
    }
    cli = up.experiment()
    return {
        "/experiment": {v["name"]: v["configured_weight"] for v in page["versions"]},
        "make experiment": {v["name"]: v["configured_weight"] for v in cli["versions"]},
        "gauge": gauge,
    }


def test_every_reader_follows_promote_rollback_and_split_without_a_restart(
    running: Up, values: Values
) -> None:
    pids = {p.pid for p in psutil.Process(running.proc.pid).children(recursive=True)}
    for args, expected in [
        (["promote", "canary"], {"stable": 0.0, "canary": 100.0}),
        (["rollback"], {"stable": 100.0, "canary": 0.0}),
        (["split", "--weights", "stable=80,canary=20"], {"stable": 80.0, "canary": 20.0}),
        (["split"], {"stable": 70.0, "canary": 30.0}),
    ]:
        result = localmesh(running, *args)
        assert result.returncode == 0, result.stdout + result.stderr
        # The page refreshes every 10 s; its next refresh already shows the new weights.
        seen = weights_everywhere(running, values)
        assert seen == dict.fromkeys(seen, expected), (args, seen)
        split = ",".join(f"{name}={int(weight)}" for name, weight in expected.items())
        assert running.experiment()["sample_ratio"]["split"] == split
    assert {p.pid for p in psutil.Process(running.proc.pid).children(recursive=True)} == pids


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["promote", "nope"],
            {},
            "unknown version 'nope': modelService.versions has stable, canary",
        ),
        (["rollback"], {"GATEWAY_PORT": "1"}, "no `make up` is running with GATEWAY_PORT=1"),
        (["promote"], {"GATEWAY_PORT": "http"}, "GATEWAY_PORT"),
        (["split", "--weights", "stable=50,canary=40"], {}, "WEIGHTS: the weights must sum to 100"),
    ],
)
def test_bad_requests_end_with_a_message(
    running: Up, args: list[str], env: dict[str, str], message: str
) -> None:
    result = localmesh(running, *args, **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
