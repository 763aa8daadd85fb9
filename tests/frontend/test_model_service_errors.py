"""Failures of the model-service become friendly fragments with 502/503/504, never a hang."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.frontend.conftest import HTMX, FakeModelService, frontend_client
from tests.support import free_port

REVIEW = {"review": "The soup was fine"}
FEEDBACK = {"predictionId": "p-1", "prediction": "1", "modelVersion": "stable", "accurate": "true"}
TRACEBACK_HINTS = ("Traceback", "httpx.", "ConnectError", "Exception", 'File "')


def raising(exc: Exception) -> FakeModelService:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    return FakeModelService(override=fail)


def answering(status: int, **kwargs: object) -> FakeModelService:
    return FakeModelService(override=lambda request: httpx.Response(status, **kwargs))  # type: ignore[arg-type]


def assert_friendly(response: httpx.Response, status: int, *phrases: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in response.text
    for phrase in phrases:
        assert phrase in response.text
    for hint in TRACEBACK_HINTS:
        assert hint not in response.text


@pytest.mark.parametrize(
    ("fake", "status", "phrase"),
    [
        (raising(httpx.ConnectError("refused")), 503, "not reachable"),
        (raising(httpx.ReadTimeout("slow")), 504, "taking too long"),
        (raising(httpx.ConnectTimeout("slow")), 504, "taking too long"),
        (raising(httpx.RemoteProtocolError("eof")), 503, "not reachable"),
        (answering(500, text="Internal Server Error"), 502, "answered with an error (500)"),
        (answering(503, text="upstream connect error"), 502, "answered with an error (503)"),
        (answering(200, text="not json"), 502, "could not be read"),
        (answering(200, json={"prediction": 7}), 502, "could not be read"),
    ],
)
async def test_upstream_failures_become_error_fragments(
    fake: FakeModelService, status: int, phrase: str
):
    async with frontend_client(httpx.MockTransport(fake)) as client:
        review = await client.post("/restaurants/gourmet-haven/reviews", data=REVIEW, headers=HTMX)
        assert_friendly(review, status, phrase)
        assert "<html" not in review.text
        feedback = await client.post(
            "/restaurants/gourmet-haven/feedback", data=FEEDBACK, headers=HTMX
        )
        assert_friendly(feedback, status, phrase)
        assert '<fieldset class="feedback__choices">' in feedback.text, "buttons stay usable"


async def test_plain_form_error_renders_the_page_and_keeps_the_review():
    fake = raising(httpx.ConnectError("refused"))
    async with frontend_client(httpx.MockTransport(fake)) as client:
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data={"review": "Great <b>steak</b>"}
        )
    assert_friendly(response, 503, "not reachable")
    assert "<html" in response.text
    assert "Great &lt;b&gt;steak&lt;/b&gt;</textarea>" in response.text


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            {
                "detail": [
                    {"loc": ["body", "review"], "msg": "String should have at most 5000 characters"}
                ]
            },
            "String should have at most 5000 characters",
        ),
        ({"detail": "Review must not be empty"}, "Review must not be empty"),
        ({"unexpected": True}, "The review was not accepted (422)."),
    ],
)
async def test_model_service_4xx_message_is_shown_next_to_the_form(answer: object, message: str):
    fake = answering(422, json=answer)
    async with frontend_client(httpx.MockTransport(fake)) as client:
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data=REVIEW, headers=HTMX
        )
        page = await client.post("/restaurants/gourmet-haven/reviews", data=REVIEW)
    assert_friendly(response, 422, "Please check your review", message)
    assert "alert--inline" in response.text
    assert_friendly(page, 422, message)


async def test_model_service_413_says_the_review_is_too_long():
    fake = answering(413, text="Request Entity Too Large")
    async with frontend_client(httpx.MockTransport(fake)) as client:
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data={"review": "x" * 10_000}, headers=HTMX
        )
    assert_friendly(response, 413, "The review is too long.")
    assert len(fake.requests) == 1


async def test_connection_refused_by_a_real_closed_port():
    url = f"http://127.0.0.1:{free_port()}"
    async with frontend_client(None, model_service_url=url, connect_timeout=2.0) as client:
        started = time.monotonic()
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data=REVIEW, headers=HTMX
        )
    assert_friendly(response, 503, "not reachable")
    assert time.monotonic() - started < 2.0


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A real TCP server that accepts requests and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read(65536)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_slow_model_service_times_out_within_the_read_timeout(silent_server: str):
    async with frontend_client(None, model_service_url=silent_server, read_timeout=0.5) as client:
        started = time.monotonic()
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data=REVIEW, headers=HTMX
        )
        elapsed = time.monotonic() - started
    assert_friendly(response, 504, "taking too long")
    assert 0.4 <= elapsed < 3.0, elapsed


def test_free_port_is_really_closed():
    """Guards the refused-connection test: nothing listens on a fresh free port."""
    port = free_port()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


async def test_oversized_post_is_refused_before_it_reaches_the_model_service(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    response = await client.post(
        "/restaurants/gourmet-haven/reviews", data={"review": "x" * 70_000}, headers=HTMX
    )
    assert response.status_code == 413
    assert "The review is too long." in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert upstream.requests == []
