"""Security headers, escaping of user text, no inline code, and cached static assets."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import httpx
import pytest

from restaurant_sentiment.frontend.web import asset_hash
from tests.frontend.conftest import HTML, HTMX, FakeModelService

XSS = "<script>alert(1)</script>"


class InlineCode(HTMLParser):
    """Finds inline scripts, inline styles and event-handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.htmx_config: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and not values.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        for name, _ in attrs:
            if name == "style" or name.startswith("on") or name.startswith("hx-on"):
                self.problems.append(f"{tag}[{name}]")
        if tag == "meta" and values.get("name") == "htmx-config":
            self.htmx_config = values.get("content")


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/", HTML),
        ("GET", "/restaurants/gourmet-haven", HTML),
        ("GET", "/restaurants/nowhere", HTML),
        ("GET", "/static/app.css", {}),
        ("GET", "/healthz", {}),
        ("GET", "/experiment", HTML),
        ("GET", "/experiment.json", {}),
        ("GET", "/version", {}),
        ("POST", "/restaurants/gourmet-haven/reviews", HTMX),
    ],
)
async def test_security_headers_on_every_response(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
):
    response = await client.request(method, path, headers=headers, data={"review": "ok"})
    csp = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


async def test_pages_contain_no_inline_code(client: httpx.AsyncClient):
    for path in ("/", "/restaurants/sizzle-spice", "/restaurants/none", "/experiment"):
        parser = InlineCode()
        parser.feed((await client.get(path, headers=HTML)).text)
        assert parser.problems == [], path
    fragment = await client.post(
        "/restaurants/sizzle-spice/reviews", data={"review": "ok"}, headers=HTMX
    )
    parser = InlineCode()
    parser.feed(fragment.text)
    assert parser.problems == []


async def test_htmx_is_configured_for_the_strict_policy(client: httpx.AsyncClient):
    parser = InlineCode()
    parser.feed((await client.get("/")).text)
    assert parser.htmx_config is not None
    config = json.loads(parser.htmx_config)
    assert config["includeIndicatorStyles"] is False, "htmx would inject an inline <style>"
    assert config["allowEval"] is False
    swaps = {rule["code"]: rule["swap"] for rule in config["responseHandling"]}
    assert swaps["[45].."] is True, "error fragments must be swapped in"


async def test_review_text_is_escaped(client: httpx.AsyncClient, upstream: FakeModelService):
    response = await client.post(
        "/restaurants/gourmet-haven/reviews", data={"review": XSS}, headers=HTMX
    )
    assert XSS not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    upstream.override = lambda request: httpx.Response(422, json={"detail": XSS})
    rejected = await client.post("/restaurants/gourmet-haven/reviews", data={"review": XSS})
    assert rejected.status_code == 422
    assert XSS not in rejected.text
    assert rejected.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2


async def test_htmx_is_vendored_with_its_version_and_cached_for_a_year(client: httpx.AsyncClient):
    response = await client.get("/static/htmx-2.0.11.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert 'version:"2.0.11"' in response.text
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_fingerprinted_assets_are_immutable_and_others_revalidate(client: httpx.AsyncClient):
    page = (await client.get("/")).text
    css_url = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', page)
    assert css_url, "the stylesheet link carries a content hash"
    assert css_url.group(1).endswith(asset_hash("app.css"))
    fingerprinted = await client.get(css_url.group(1))
    assert fingerprinted.headers["cache-control"] == "public, max-age=31536000, immutable"
    stale = await client.get("/static/app.css?v=0000")
    assert stale.headers["cache-control"] == "public, max-age=300, must-revalidate"
    revalidated = await client.get(
        "/static/app.css", headers={"if-none-match": fingerprinted.headers["etag"]}
    )
    assert revalidated.status_code == 304
    assert "cache-control" in revalidated.headers
    art = await client.get("/static/art/gourmet-haven.svg")
    assert art.headers["cache-control"].startswith("public")


async def test_static_files_outside_the_folder_are_not_served(client: httpx.AsyncClient):
    for path in ("/static/../config.py", "/static/%2e%2e/config.py", "/static/nope.css"):
        response = await client.get(path)
        assert response.status_code == 404, path


async def test_stylesheet_pulls_nothing_from_a_cdn(client: httpx.AsyncClient):
    css = (await client.get("/static/app.css")).text
    assert "@import" not in css and "http" not in css
