"""Web plumbing: templates, cached static assets and security headers."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from os import PathLike
from pathlib import Path
from urllib.parse import parse_qs

import jinja2
from fastapi.templating import Jinja2Templates
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restaurant_sentiment.frontend.config import Settings

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
HTMX_VERSION = "2.0.11"
HTMX_FILE = f"htmx-{HTMX_VERSION}.min.js"
ARTWORK_FALLBACK = "art/restaurant.svg"
# Top navigation: (label, path). New top-level pages add themselves here.
NAV_LINKS = [("Restaurants", "/"), ("Experiment", "/experiment")]

# No inline script or style anywhere: htmx runs from a file and its indicator styles are ours.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
# Encoded once: every response gets them appended as they are.
SECURITY_HEADER_LIST = [
    (k.encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()
]
SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADER_LIST)
# The model-service refuses bodies over 64 KiB; refusing them here too means an oversized post is
# never read into memory.
MAX_BODY_BYTES = 64 * 1024
TOO_LARGE_PAGE = (
    b'<div class="alert alert--inline" role="alert"><p class="alert__title">'
    b"Please check your review</p><p>The review is too long.</p></div>"
)
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=300, must-revalidate"


@lru_cache(maxsize=256)
def asset_hash(name: str) -> str:
    """A short content hash of a static file, used to bust caches when it changes."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """The URL of a static file, fingerprinted so it can be cached for a year."""
    return f"/static/{name}?v={asset_hash(name)}"


@lru_cache(maxsize=256)
def artwork_for(slug: str) -> str:
    """The artwork file of a restaurant, or the generic one for a restaurant without art."""
    name = f"art/{slug}.svg"
    return name if (STATIC_DIR / name).is_file() else ARTWORK_FALLBACK


def build_templates(settings: Settings) -> Jinja2Templates:
    """Jinja2 templates (autoescaped) with the helpers every page uses.

    Each template is compiled once and kept: no file is read or stat'ed per request unless
    FRONTEND_RELOAD_TEMPLATES asks for edits to show without a restart.
    """
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        auto_reload=settings.reload_templates,
        cache_size=-1,
    )
    templates = Jinja2Templates(env=environment)
    templates.env.globals.update(
        static_url=static_url,
        artwork_for=artwork_for,
        htmx_file=HTMX_FILE,
        restaurants=settings.catalogue,
        nav_links=NAV_LINKS,
    )
    return templates


class StaticAssets(StaticFiles):
    """Static files with cache headers: fingerprinted URLs are immutable, others revalidate."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """Serve a file with Cache-Control (kept on 304 answers too)."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = Path(full_path).resolve().relative_to(STATIC_DIR).as_posix()
        version = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [""])[0]
        # A versioned file name or a matching content hash means the bytes never change.
        fixed = HTMX_VERSION in name or version == asset_hash(name)
        response.headers["cache-control"] = IMMUTABLE if fixed else REVALIDATE
        return response


class SecurityHeaders:
    """Adds the security headers to every response (plain ASGI: no per-request task overhead)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                # A header the app set itself wins (e.g. a page with its own policy).
                present = {n for n, _ in headers if n.lower() in SECURITY_HEADER_NAMES}
                if present:
                    headers += [h for h in SECURITY_HEADER_LIST if h[0] not in present]
                else:
                    headers += SECURITY_HEADER_LIST
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses request bodies over MAX_BODY_BYTES with 413 before the app reads them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
                break
        if length.isdigit() and int(length) > self.limit:
            await Response(TOO_LARGE_PAGE, 413, media_type="text/html")(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # A chunked body that grows too large: stop reading as if the client left.
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, send)
