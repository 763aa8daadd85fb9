"""Hostile input through the real gateway, frontend and model-services: 4xx, never 5xx or a hang."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.reliability.conftest import FEEDBACK_SECRET, client, envoy, frontend
from tests.support import free_port, running
from tests.support import model_service_args as args_of

pytestmark = pytest.mark.slow
XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    ports = {"stable": free_port(), "canary": free_port()}
    frontend_port = free_port()
    env = {"MODEL_SERVICE_FEEDBACK_SECRET": FEEDBACK_SECRET}
    with (
        running(args_of("stable", ports["stable"]), f"http://127.0.0.1:{ports['stable']}/readyz",
                env=env, timeout=90),
        running(args_of("canary", ports["canary"]), f"http://127.0.0.1:{ports['canary']}/readyz",
                env=env, timeout=90),
        envoy(ports, frontend_port, tmp_path_factory.mktemp("envoy")) as listen,
        frontend(frontend_port, f"http://127.0.0.1:{listen.mesh.port}", 5.0),
    ):  # fmt: skip
        yield {**ports, "gateway": listen.gateway.port}


@pytest.fixture
def api(stack: dict[str, int]) -> Iterator[httpx.Client]:
    with client(stack["gateway"], "service.localhost") as c:
        c.headers["cookie"] = "model-service-version=stable"
        yield c


@pytest.fixture
def app(stack: dict[str, int]) -> Iterator[httpx.Client]:
    with client(stack["gateway"], "app.localhost") as c:
        c.headers["accept"] = "text/html"
        yield c


def test_oversized_bodies_are_refused_with_413(api: httpx.Client, app: httpx.Client) -> None:
    big = {"review": "x" * 70_000, "restaurantName": "Gourmet Haven"}
    assert api.post("/predict", json=big).status_code == 413
    chunked = api.post("/predict", content=(b"{" + b" " * 8192 for _ in range(10)))
    assert chunked.status_code == 413
    page = app.post("/restaurants/gourmet-haven/reviews", data={"review": "x" * 70_000})
    assert page.status_code == 413
    assert "too long" in page.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"review": ' + b"[" * 20_000 + b"]" * 20_000 + b', "restaurantName": "x"}',
        b'{"review": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_000 + b', "restaurantName": "x"}',
        b'{"review": "caf\xe9 au lait", "restaurantName": "Gourmet Haven"}',
        b'\xff\xfe{\x00"\x00r\x00',
        b'{"review": "ok", "restaurantName": "Gourmet Haven"',
    ],
    ids=["nested-arrays", "nested-objects", "latin-1", "utf-16", "truncated"],
)
def test_malformed_json_is_a_422(api: httpx.Client, body: bytes) -> None:
    response = api.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"]


def test_very_long_or_many_headers_are_refused_by_the_gateway(api: httpx.Client) -> None:
    review = {"review": "Nice.", "restaurantName": "Gourmet Haven"}
    long_header = api.post("/predict", json=review, headers={"x-padding": "a" * 100_000})
    assert long_header.status_code == 431
    many = {f"x-h{i}": "v" for i in range(150)}
    assert api.post("/predict", json=review, headers=many).status_code == 431
    long_cookie = api.post("/predict", json=review, headers={"cookie": "a=" + "b" * 100_000})
    assert long_cookie.status_code == 431
    # The gateway still serves normal requests afterwards.
    assert api.post("/predict", json=review).status_code == 200


def metric(url: str, name: str, restaurant: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    pattern = rf'^{name}{{model_version="stable",restaurant="{re.escape(restaurant)}"}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found[1]) if found else 0.0


def test_unknown_restaurants_are_counted_as_other(api: httpx.Client, stack: dict[str, int]) -> None:
    direct = f"http://127.0.0.1:{stack['stable']}"
    before = metric(direct, "predictions_total", "other")
    names = ["Nowhere Diner", XSS, "Gourmet Haven ", "x" * 100, "gourmet haven"]
    for name in names:
        response = api.post("/predict", json={"review": "Nice.", "restaurantName": name})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json()["restaurantName"] == name  # data, echoed as JSON
    assert metric(direct, "predictions_total", "other") == before + len(names)
    text = httpx.get(f"{direct}/metrics", timeout=10).text
    assert "Nowhere" not in text and "<script>" not in text


def test_xss_in_a_review_is_escaped(app: httpx.Client) -> None:
    response = app.post(
        "/restaurants/gourmet-haven/reviews",
        data={"review": XSS},
        headers={"hx-request": "true", "cookie": "model-service-version=canary"},
    )
    assert response.status_code == 200
    assert "<script>alert" not in response.text and "<img src=x" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path",
    [
        "/restaurants/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/restaurants/gourmet-haven?prediction=1&version=%3Cscript%3E&id=%3Cb%3E",
        "/restaurants/gourmet-haven?prediction=1&version=stable&id=a%22onmouseover%3D%22x",
        "/restaurants/gourmet-haven?prediction=1&version=stable&id=abc&feedback=accurate"
        "&accuracy=%3Cscript%3E",
    ],
)
def test_xss_in_urls_is_never_reflected(app: httpx.Client, path: str) -> None:
    response = app.get(path)
    assert response.status_code in (200, 404)
    assert "<script>" not in response.text and "<b>" not in response.text
    assert 'onmouseover="x' not in response.text


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_header_injection_through_the_cookie_is_refused(
    app: httpx.Client, stack: dict[str, int]
) -> None:
    # A bare CR inside the cookie header: whatever the gateway makes of it, nothing the client
    # smuggled in comes back as a header of the answer.
    answer = raw_request(
        stack["gateway"],
        b"GET /restaurants/gourmet-haven HTTP/1.1\r\nHost: app.localhost\r\n"
        b"Cookie: model-service-version=stable\rSet-Cookie: evil=1\r\n"
        b"Connection: close\r\n\r\n",
    )
    status, _, rest = answer.partition(b"\r\n")
    head = rest.split(b"\r\n\r\n", 1)[0].lower()
    assert status.split()[1] in (b"200", b"400"), status
    assert b"evil" not in head
    for value in (
        "stable%0d%0aSet-Cookie:%20evil=1",
        "canary;evil=1",
        "stable\\r\\nX: y",
        "a" * 40,
    ):
        response = app.post(
            "/restaurants/gourmet-haven/reviews",
            data={"review": "Lovely."},
            headers={"cookie": f"model-service-version={value}"},
        )
        assert response.status_code == 200
        # Only a well-formed version cookie is ever set (`canary;evil=1` is simply `canary`).
        for cookie in response.headers.get_list("set-cookie"):
            assert re.fullmatch(r"model-service-version=(stable|canary); .*", cookie), cookie
            assert "evil" not in cookie and "\n" not in cookie
        assert "evil" not in str(response.headers).lower()
