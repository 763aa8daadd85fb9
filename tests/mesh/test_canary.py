"""Canary split and sticky cookie, through the real Envoy in front of the real model-services."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import httpx
import pytest

from restaurant_sentiment.tools.localmesh import gateway
from restaurant_sentiment.values import Values
from tests.mesh.conftest import no_cookies
from tests.support import require_binary

pytestmark = pytest.mark.slow


def client(port: int, host: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"host": host},
        cookies=no_cookies(),
        timeout=10,
    )


def served_version(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["modelVersion"])


@pytest.mark.parametrize("listener", ["gateway", "mesh"])
def test_cookie_always_reaches_its_version(
    mesh: gateway.Listen, values: Values, listener: str
) -> None:
    port = mesh.gateway.port if listener == "gateway" else mesh.mesh.port
    cookie = values.model_service.cookie.name
    with client(port, values.hosts.service) as c:
        for version in values.version_names:
            answers = [
                c.get("/version", headers={"cookie": f"{cookie}={version}"}) for _ in range(50)
            ]
            assert Counter(served_version(a) for a in answers) == {version: 50}
            # A visitor who already has the cookie is not sent it again.
            assert all("set-cookie" not in a.headers for a in answers)


@pytest.mark.parametrize(
    "header",
    [
        "model-service-version=canary-old",
        "xmodel-service-version=canary",
        "model-service-version=canaryx; theme=dark",
    ],
)
def test_cookie_match_is_anchored(mesh: gateway.Listen, values: Values, header: str) -> None:
    """Look-alike cookies are not a version choice: the request is split and gets a cookie."""
    with client(mesh.gateway.port, values.hosts.service) as c:
        answer = c.get("/version", headers={"cookie": header})
    assert "set-cookie" in answer.headers
    chosen = answer.headers["set-cookie"].split(";")[0].split("=")[1]
    assert served_version(answer) == chosen


def test_cookie_among_others_is_honoured(mesh: gateway.Listen, values: Values) -> None:
    with client(mesh.gateway.port, values.hosts.service) as c:
        answer = c.get(
            "/version", headers={"cookie": "theme=dark; model-service-version=canary ; lang=en"}
        )
    assert served_version(answer) == "canary"
    assert "set-cookie" not in answer.headers


def test_split_follows_the_weights_and_sets_the_cookie(
    mesh: gateway.Listen, values: Values
) -> None:
    total = 2000
    counts: Counter[str] = Counter()
    cookie = values.model_service.cookie
    with client(mesh.gateway.port, values.hosts.service) as c:
        for _ in range(total):
            answer = c.get("/version")
            version = served_version(answer)
            assert answer.headers.get_list("set-cookie") == [
                f"{cookie.name}={version}; Path=/; Max-Age={cookie.max_age}"
            ]
            counts[version] += 1
    for v in values.model_service.versions:
        share = 100 * counts[v.name] / total
        assert abs(share - v.weight) <= 5, f"{v.name}: {share:.1f}% of {total}, weight {v.weight}"


def test_hosts_route_to_their_services(mesh: gateway.Listen, values: Values) -> None:
    with client(mesh.gateway.port, values.hosts.service) as c:
        docs = c.get("/apidocs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assert c.get("/healthz").json() == {"status": "ok"}
        unknown = c.get("/healthz", headers={"host": "elsewhere.localhost"})
    assert unknown.status_code == 404


def _curl(*args: str) -> dict[str, object]:
    curl = require_binary("curl", "apt-get install curl")
    result = subprocess.run(
        [curl, "--silent", "--show-error", "--fail-with-body", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    body: dict[str, object] = json.loads(result.stdout)
    return body


def test_readme_curl_examples_work_through_service_host(mesh: gateway.Listen) -> None:
    """curl resolves *.localhost to loopback itself: these are the README's commands verbatim."""
    base = f"http://service.localhost:{mesh.gateway.port}"
    prediction = _curl(
        "-X", "POST", f"{base}/predict",
        "-H", "Content-Type: application/json",
        "-H", "Cookie: model-service-version=stable",
        "-d", '{"review": "The food was delicious and the staff were lovely.", '
        '"restaurantName": "Gourmet Haven"}',
    )  # fmt: skip
    assert prediction["modelVersion"] == "stable"
    assert prediction["prediction"] in (0, 1)
    assert prediction["restaurantName"] == "Gourmet Haven"
    accuracy = _curl(
        "-X", "POST", f"{base}/model-accuracy",
        "-H", "Content-Type: application/json",
        "-H", "Cookie: model-service-version=stable",
        "-d", '{"restaurantName": "Gourmet Haven", "accurate": true, "prediction": 1}',
    )  # fmt: skip
    assert accuracy["restaurantName"] == "Gourmet Haven"
    assert 0.0 <= float(str(accuracy["model-accuracy"])) <= 1.0
