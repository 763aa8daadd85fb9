"""Headless Chromium against real frontend and model-service processes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.frontend.conftest import require_models
from tests.support import (
    ARTEFACTS,
    free_port,
    frontend_args,
    model_service,
    require_binary,
    running,
)

SCREENSHOTS = ARTEFACTS / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def frontend_process(
    model_service_url: str, *extra: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`python -m frontend` on a free port; yields its base URL."""
    port = free_port()
    args = frontend_args(port, model_service_url)
    args += ["--log-level", "warning", *extra]
    with running(args, f"http://127.0.0.1:{port}/healthz", env=env, timeout=60):
        yield f"http://127.0.0.1:{port}"


# Module scope, not session: sync Playwright keeps an event loop running while it is open, and
# the async tests of other folders must not start inside it.
@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    executable = require_binary("chromium", "apt-get install -y chromium")
    from playwright.sync_api import expect, sync_playwright

    # Two shared cores and other test runs: give assertions room before they fail.
    expect.set_options(timeout=20_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    """A frontend process in front of a real stable model-service process."""
    require_models()
    with model_service("stable") as service_url, frontend_process(service_url) as url:
        yield url


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
