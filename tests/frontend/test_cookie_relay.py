"""The sticky model-version cookie travels browser -> frontend -> model-service and back."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from tests.frontend.conftest import HTMX, FakeModelService, frontend_client
from tests.support import CHART_VALUES, values_variant

REVIEW = {"review": "Tasty"}
FEEDBACK = {"predictionId": "p-1", "prediction": "1", "modelVersion": "canary", "accurate": "true"}


async def post_review(client: httpx.AsyncClient, cookies: dict[str, str]) -> httpx.Response:
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value, domain="app.test")
    return await client.post("/restaurants/gourmet-haven/reviews", data=REVIEW, headers=HTMX)


async def test_browser_version_cookie_is_forwarded_and_nothing_else(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    await post_review(client, {"model-service-version": "canary", "session": "secret"})
    assert upstream.requests[-1].headers["cookie"] == "model-service-version=canary"
    await client.post("/restaurants/gourmet-haven/feedback", data=FEEDBACK, headers=HTMX)
    assert upstream.requests[-1].url.path == "/model-accuracy"
    assert upstream.requests[-1].headers["cookie"] == "model-service-version=canary"


@pytest.mark.parametrize(
    "value",
    [
        "CANARY",
        "canary,admin=1",
        "canary.v2",
        "../stable",
        "-canary",
        "a" * 40,
        "canary%0d%0aX-Injected:%201",
        "can ary",
        "",
    ],
)
async def test_malformed_version_cookie_is_never_forwarded(
    client: httpx.AsyncClient, upstream: FakeModelService, value: str
):
    response = await post_review(client, {"model-service-version": value})
    assert response.status_code == 200
    assert "cookie" not in upstream.requests[-1].headers


async def test_no_cookie_means_no_cookie_header(
    client: httpx.AsyncClient, upstream: FakeModelService
):
    await post_review(client, {})
    assert "cookie" not in upstream.requests[-1].headers


async def test_version_cookie_from_the_model_service_is_relayed_to_the_browser():
    fake = FakeModelService(
        set_cookie=[
            "model-service-version=canary; Path=/; Max-Age=86400",
            "tracking=abc; Path=/",
            "other-version=stable",
        ]
    )
    async with frontend_client(httpx.MockTransport(fake)) as client:
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data=REVIEW, headers=HTMX
        )
        relayed = response.headers.get_list("set-cookie")
        assert len(relayed) == 1, relayed
        cookie = relayed[0]
        assert cookie.startswith("model-service-version=canary;")
        assert "Max-Age=86400" in cookie and "Path=/" in cookie and "HttpOnly" in cookie
        # The browser sends it back on the next review, so the version sticks.
        await client.post("/restaurants/gourmet-haven/reviews", data=REVIEW, headers=HTMX)
        assert fake.requests[-1].headers["cookie"] == "model-service-version=canary"


async def test_one_diners_assignment_never_reaches_another_diner():
    fake = FakeModelService(set_cookie=["model-service-version=canary; Path=/; Max-Age=86400"])
    async with frontend_client(httpx.MockTransport(fake)) as client:
        assigned = await post_review(client, {})
        assert assigned.headers["set-cookie"].startswith("model-service-version=canary;")
        # A new diner, without a cookie: the gateway's weighted split must decide for them too.
        await post_review(client, {})
    assert "cookie" not in fake.requests[-1].headers


async def test_plain_form_page_also_carries_the_cookie():
    fake = FakeModelService(set_cookie=["model-service-version=stable; Path=/; Max-Age=60"])
    async with frontend_client(httpx.MockTransport(fake)) as client:
        response = await client.post("/restaurants/gourmet-haven/reviews", data=REVIEW)
        assert response.status_code == 200
        assert response.headers["set-cookie"].startswith("model-service-version=stable;")
        feedback = await client.post("/restaurants/gourmet-haven/feedback", data=FEEDBACK)
        assert feedback.status_code == 200
        assert fake.requests[-1].headers["cookie"] == "model-service-version=stable"


@pytest.mark.parametrize(
    "header",
    [
        "model-service-version=EVIL; Path=/",
        "model-service-version=canary\\r\\nx: y",
        'model-service-version="quoted space"; Path=/',
        "model-service-version=canary; Max-Age=99999999999",
    ],
)
async def test_only_well_formed_version_cookies_are_relayed(header: str):
    fake = FakeModelService(set_cookie=[header])
    async with frontend_client(httpx.MockTransport(fake)) as client:
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data=REVIEW, headers=HTMX
        )
    relayed = response.headers.get_list("set-cookie")
    if header.endswith("Max-Age=99999999999"):
        assert relayed == [
            "model-service-version=canary; HttpOnly; Max-Age=31536000; Path=/; SameSite=lax"
        ], "the lifetime is capped at a year"
    else:
        assert relayed == []


async def test_cookie_name_comes_from_the_values(tmp_path: Path):
    raw = yaml.safe_load(CHART_VALUES.read_text(encoding="utf-8"))
    raw["modelService"]["cookie"]["name"] = "mv"
    values = values_variant(tmp_path / "values.yaml", modelService=raw["modelService"])
    fake = FakeModelService(set_cookie=["mv=canary; Path=/", "model-service-version=stable"])
    async with frontend_client(httpx.MockTransport(fake), values_file=values) as client:
        client.cookies.set("mv", "stable", domain="app.test")
        client.cookies.set("model-service-version", "canary", domain="app.test")
        response = await client.post(
            "/restaurants/gourmet-haven/reviews", data=REVIEW, headers=HTMX
        )
    assert fake.requests[-1].headers["cookie"] == "mv=stable"
    [relayed] = response.headers.get_list("set-cookie")
    assert relayed.startswith("mv=canary;")
