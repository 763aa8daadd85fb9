"""The homepage rate limit, through the real Envoy in front of the real frontend.

Envoy takes the client from the connection's peer address, as the Istio ingress gateway does
when its Service keeps the source address (externalTrafficPolicy: Local). Two clients are
therefore two loopback source addresses, and an X-Forwarded-For header changes nothing.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from restaurant_sentiment.tools.localmesh import gateway
from restaurant_sentiment.values import Values
from tests.mesh.conftest import envoy, loopback_listen, no_cookies

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_gateway(app_stack: gateway.Listen) -> str:
    return f"http://127.0.0.1:{app_stack.gateway.port}"


def client(base_url: str, source: str, host: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(
        base_url=base_url,
        transport=transport,
        headers={"host": host},
        cookies=no_cookies(),
        timeout=10,
    )


def test_21st_homepage_request_of_a_client_is_refused(app_gateway: str, values: Values) -> None:
    limit = values.rate_limit.requests
    with client(app_gateway, "127.0.0.2", values.hosts.app) as a:
        answers = [a.get("/") for _ in range(limit)]
        refused = a.get("/", headers={"x-forwarded-for": "203.0.113.9"})
        # Other paths of the app are not limited by this rule.
        restaurant = a.get("/restaurants/gourmet-haven")

    assert [r.status_code for r in answers] == [200] * limit
    assert "Gourmet Haven" in answers[0].text
    assert answers[0].headers["x-ratelimit-limit"] == str(limit)
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in answers]
    assert remaining[0] == limit - 1 and remaining[-1] <= 1

    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert "<h1>Slow down a little</h1>" in refused.text
    assert (
        f"more than {limit} times in {values.rate_limit.interval_seconds} seconds" in refused.text
    )
    # 20 per 60 s: one token back every 3 s, said in the header and in the words.
    assert refused.headers["retry-after"] == "3"
    assert 'Please wait <span class="wait">3 seconds</span>, then try again.' in refused.text
    # Styled like the app, by itself: no stylesheet, script or image to fetch.
    assert '<meta name="viewport"' in refused.text and "<style>" in refused.text
    assert set(re.findall(r'(?:src|href)="([^"]*)"', refused.text)) == {"/", "/experiment"}
    assert all("retry-after" not in r.headers for r in answers), "only refusals say when"
    assert refused.headers["x-ratelimit-limit"] == str(limit)
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["x-ratelimit-reset"]) >= 1

    assert restaurant.status_code == 200
    assert "Gourmet Haven" in restaurant.text


def test_a_client_that_waits_retry_after_seconds_gets_the_homepage_again(
    app_gateway: str, values: Values
) -> None:
    limit = values.rate_limit.requests
    with client(app_gateway, "127.0.0.8", values.hosts.app) as a:
        statuses = [a.get("/").status_code for _ in range(limit + 1)]
        assert statuses[-1] == 429
        refused = a.get("/")
        assert refused.status_code == 429
        # The promise under test is a length of time, so the test waits exactly that long.
        time.sleep(int(refused.headers["retry-after"]))
        again = a.get("/")
    assert again.status_code == 200
    assert "Gourmet Haven" in again.text


def test_another_client_is_not_affected(app_gateway: str, values: Values) -> None:
    limit = values.rate_limit.requests
    with client(app_gateway, "127.0.0.3", values.hosts.app) as a:
        statuses = [a.get("/").status_code for _ in range(limit + 1)]
    with client(app_gateway, "127.0.0.4", values.hosts.app) as b:
        other = b.get("/")
    assert statuses[-1] == 429
    assert other.status_code == 200
    assert other.headers["x-ratelimit-remaining"] == str(limit - 1)


def test_model_service_host_is_not_limited(app_gateway: str, values: Values) -> None:
    limit = values.rate_limit.requests
    with client(app_gateway, "127.0.0.5", values.hosts.service) as c:
        answers = [c.get("/healthz") for _ in range(limit + 5)]
    assert [a.status_code for a in answers] == [200] * (limit + 5)
    assert all("x-ratelimit-limit" not in a.headers for a in answers)


def test_limit_and_weights_come_from_the_values(
    values: Values, model_services: dict[str, int], tmp_path: Path
) -> None:
    """Other values give another gateway: 3 homepage requests, and every new visitor on canary."""
    changed = values.model_copy(
        update={
            "rate_limit": values.rate_limit.model_copy(update={"requests": 3}),
            "model_service": values.model_service.model_copy(
                update={
                    "versions": [
                        v.model_copy(update={"weight": 100 if v.name == "canary" else 0})
                        for v in values.model_service.versions
                    ]
                }
            ),
        }
    )
    listen = loopback_listen()
    # Any live HTTP server can stand behind the app host here: only the gateway's answer counts.
    upstreams = gateway.local_upstreams(model_services, model_services["stable"])
    with envoy(gateway.build_bootstrap(changed, upstreams, listen), tmp_path):
        base = f"http://127.0.0.1:{listen.gateway.port}"
        with client(base, "127.0.0.6", values.hosts.app) as c:
            statuses = [c.get("/").status_code for _ in range(4)]
        with client(base, "127.0.0.6", values.hosts.service) as c:
            versions = {c.get("/version").json()["modelVersion"] for _ in range(30)}
    assert 429 not in statuses[:3] and statuses[3] == 429
    assert versions == {"canary"}
