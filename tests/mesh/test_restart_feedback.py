"""Feedback through `make restart` under load, with each feedback store: every process is
replaced, no request fails, `make experiment` reports exactly the feedback that was answered 200
(none lost, none doubled), a replay after the restart answers 409, and the sample-ratio test holds.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from restaurant_sentiment.values import Values
from tests.mesh.conftest import Up, start_up
from tests.mesh.test_restart import RESTART_TIMEOUT, Load, gateway_stat, serving
from tests.support import PYTHON, ROOT, redis_server

pytestmark = pytest.mark.slow

# The feedback clients stop when the restart is over, or at these bounds.
FEEDBACK_LIMIT = 5_000
FEEDBACK_SECONDS = 600
EARLY = 30
REVIEWS = ["Lovely fish and kind staff.", "Cold, bland and slow.", "The best curry in town."]


@dataclass
class Feedback:
    """A diner's prediction and the feedback the gateway answered for it."""

    version: str
    payload: dict[str, Any]


@dataclass
class FeedbackClients:
    """New diners through the gateway, one after another: predict, then send feedback on it."""

    up: Up
    values: Values
    accepted: list[Feedback] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.up.env['GATEWAY_PORT']}",
            headers={"host": self.values.hosts.service},
            timeout=30,
        )

    def one(self, api: httpx.Client, n: int) -> None:
        api.cookies.clear()  # a new diner each time: the weighted route assigns a version
        made = api.post(
            "/predict", json={"review": REVIEWS[n % 3], "restaurantName": "Gourmet Haven"}
        )
        if made.status_code != 200:
            self.failures.append(f"predict {made.status_code}: {made.text[:200]}")
            return
        body = made.json()
        payload = {
            "restaurantName": "Gourmet Haven",
            "accurate": n % 4 != 0,
            "prediction": body["prediction"],
            "predictionId": body["predictionId"],
        }
        answer = api.post("/model-accuracy", json=payload)
        if answer.status_code != 200:
            self.failures.append(f"feedback {answer.status_code}: {answer.text[:200]}")
            return
        self.accepted.append(Feedback(body["modelVersion"], payload))

    def send(self, count: int) -> None:
        with self.client() as api:
            for n in range(count):
                self.one(api, n)

    def run(self) -> None:
        deadline = time.monotonic() + FEEDBACK_SECONDS
        with self.client() as api:
            for n in range(FEEDBACK_LIMIT):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                self.one(api, n)

    def by_version(self) -> Counter[str]:
        return Counter(f.version for f in self.accepted)


@pytest.fixture(params=["sqlite", "redis"])
def store_up(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Up]]:
    """`make up` with its own SQLite store, or with a Redis this test starts."""
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if request.param == "redis":
            env["MODEL_SERVICE_FEEDBACK_STORE"] = stack.enter_context(redis_server())
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for key, value in env.items():
            patch.setenv(key, value)
        up = stack.enter_context(start_up(tmp_path / "run"))
        up.wait_for("Press Ctrl-C to stop everything.")
        yield request.param, up


def test_feedback_is_counted_exactly_once_through_a_rolling_restart_under_load(
    store_up: tuple[str, Up], values: Values, tmp_path: Path
) -> None:
    kind, up = store_up
    early = FeedbackClients(up, values)
    early.send(EARLY)
    assert not early.failures, early.failures
    before = serving(up)

    during = FeedbackClients(up, values)
    with Load(up, tmp_path) as load:
        sender = threading.Thread(target=during.run, name="feedback")
        sender.start()
        try:
            restarted = subprocess.run(
                [PYTHON, "-m", "restaurant_sentiment.tools.localmesh", "restart"],
                cwd=ROOT,
                env=up.env,
                capture_output=True,
                text=True,
                timeout=RESTART_TIMEOUT,
            )
        finally:
            during.stop.set()
            sender.join(timeout=120)
        outcomes = load.stop()
        five_xx = gateway_stat(up, "http.gateway.downstream_rq_5xx") - load.five_xx
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    after = serving(up)
    assert all(after[s][1] != before[s][1] for s in before), (before, after)

    # No request failed: not the load's, not a prediction, not a feedback.
    for outcome in outcomes:
        assert outcome.failed == 0 and not any(outcome.errors.values()), outcome.text
    assert five_xx == 0
    assert not during.failures, during.failures[:5]
    assert len(during.accepted) > 0

    # Feedback accepted before the restart and replayed now answers 409, from any process.
    cookie = values.model_service.cookie.name
    with early.client() as api:
        for item in early.accepted:
            for version in values.version_names:  # the new process of each version
                api.cookies.clear()
                replay = api.post(
                    "/model-accuracy", json=item.payload, headers={"cookie": f"{cookie}={version}"}
                )
                assert replay.status_code == 409, replay.text
                detail = replay.json()["detail"]
                assert detail == "feedback for this predictionId was already recorded"

    # What the experiment reads is exactly what was answered 200: none lost, none doubled.
    analysis = up.experiment()
    assert analysis["source"] == "store"
    answered = early.by_version() + during.by_version()
    reported = {v["name"]: v["feedback"] for v in analysis["versions"]}
    assert reported == {name: answered.get(name, 0) for name in values.version_names}, (
        reported,
        answered,
    )
    correct = Counter(f.version for f in early.accepted + during.accepted if f.payload["accurate"])
    assert {v["name"]: v["correct"] for v in analysis["versions"]} == {
        name: correct.get(name, 0) for name in values.version_names
    }
    # The replaced processes handed over their assignments: the split still looks like 70/30.
    assert sum(v["assignments"] for v in analysis["versions"]) > 0
    assert analysis["sample_ratio"]["mismatch"] is False, analysis["sample_ratio"]
    # The /experiment page, through the gateway, reads the same store: the same evidence.
    gateway = f"http://127.0.0.1:{up.env['GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, headers={"host": values.hosts.app}, timeout=30) as app:
        page = app.get("/experiment.json")
    assert page.status_code == 200, page.text
    shown = page.json()
    assert shown["source"] == "store"
    assert {v["name"]: v["feedback"] for v in shown["versions"]} == reported
    assert shown["sample_ratio"]["mismatch"] is False
    print(
        json.dumps(
            {
                "store": kind,
                "feedback_answered_200": dict(answered),
                "feedback_reported": reported,
                "assignments": {v["name"]: v["assignments"] for v in analysis["versions"]},
                "load_requests": sum(o.requests for o in outcomes),
            }
        )
    )
