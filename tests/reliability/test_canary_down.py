"""A model version goes away or hangs: its users get a clear page in time, others never notice."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from restaurant_sentiment.tools.procs import pid_listening_on
from tests.reliability.conftest import FEEDBACK_SECRET, client, envoy, frontend
from tests.support import free_port, model_service

READ_TIMEOUT = 3.0
REVIEW_PATH = "/restaurants/gourmet-haven/reviews"
REVIEW = {"review": "The soup was lovely and the staff were kind."}
HTML = {"accept": "text/html"}


@contextlib.contextmanager
def version(name: str, port: int) -> Iterator[str]:
    with model_service(name, port=port, MODEL_SERVICE_FEEDBACK_SECRET=FEEDBACK_SECRET) as url:
        yield url


def review_as(app: httpx.Client, version_name: str, htmx: bool = False) -> httpx.Response:
    headers = {**HTML, "cookie": f"model-service-version={version_name}"}
    if htmx:
        headers["hx-request"] = "true"
    return app.post(REVIEW_PATH, data=REVIEW, headers=headers)


def served_by(response: httpx.Response, version_name: str) -> bool:
    """A no-JavaScript post answers with the verdict, naming the version that scored it."""
    named = f"model version <strong>{version_name}</strong>" in response.text
    return response.status_code == 200 and named


def assert_clear_error(response: httpx.Response, elapsed: float, statuses: set[int]) -> None:
    assert response.status_code in statuses, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in response.text
    assert "The sentiment service" in response.text
    assert "Traceback" not in response.text
    # Within the frontend's read timeout (plus start-up slack), never a hang.
    assert elapsed < READ_TIMEOUT + 2.0, elapsed


@pytest.fixture
def ports() -> dict[str, int]:
    return {"stable": free_port(), "canary": free_port()}


@pytest.mark.slow
def test_canary_stopped_and_restarted(ports: dict[str, int], tmp_path: Path) -> None:
    frontend_port = free_port()
    with (
        version("stable", ports["stable"]),
        envoy(ports, frontend_port, tmp_path) as listen,
        frontend(frontend_port, f"http://127.0.0.1:{listen.mesh.port}", READ_TIMEOUT),
        client(listen.gateway.port, "app.localhost") as app,
    ):
        with version("canary", ports["canary"]):
            assert served_by(review_as(app, "canary"), "canary")
        # The canary is gone (its process stopped, its port closed).
        for htmx in (False, True):
            started = time.monotonic()
            response = review_as(app, "canary", htmx=htmx)
            assert_clear_error(response, time.monotonic() - started, {502, 503})
            if htmx:
                assert "<html" not in response.text  # a fragment for htmx to swap in
        for _ in range(10):
            assert served_by(review_as(app, "stable"), "stable")
        # Back on the same address: served again, with no restart of Envoy or the frontend.
        with version("canary", ports["canary"]):
            assert served_by(review_as(app, "canary"), "canary")
            assert served_by(review_as(app, "stable"), "stable")


@pytest.mark.slow
def test_a_hung_canary_times_out_with_a_page(ports: dict[str, int], tmp_path: Path) -> None:
    frontend_port = free_port()
    with (
        version("stable", ports["stable"]),
        version("canary", ports["canary"]),
        envoy(ports, frontend_port, tmp_path) as listen,
        frontend(frontend_port, f"http://127.0.0.1:{listen.mesh.port}", READ_TIMEOUT),
        client(listen.gateway.port, "app.localhost") as app,
    ):
        pid = pid_listening_on(ports["canary"])
        os.kill(pid, signal.SIGSTOP)  # accepts connections (the kernel does), never answers
        try:
            started = time.monotonic()
            response = review_as(app, "canary")
            elapsed = time.monotonic() - started
            assert_clear_error(response, elapsed, {504})
            assert elapsed >= READ_TIMEOUT - 0.5
            assert "taking too long" in response.text
            assert served_by(review_as(app, "stable"), "stable")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert served_by(review_as(app, "canary"), "canary")
