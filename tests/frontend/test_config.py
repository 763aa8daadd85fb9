"""Settings: environment, flags, and bad values that stop the start naming the setting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from restaurant_sentiment.frontend.config import Settings
from restaurant_sentiment.values import slugify
from tests.frontend.conftest import frontend_client
from tests.support import (
    CHART_VALUES,
    PYTHON,
    ROOT,
    free_port,
    frontend_args,
    running,
    values_variant,
)


def test_defaults():
    settings = Settings(values_file=CHART_VALUES)
    assert (settings.host, settings.port) == ("127.0.0.1", 8083)
    assert settings.model_service_url == "http://127.0.0.1:8080"
    assert settings.version_cookie == "model-service-version"
    assert [r.slug for r in settings.catalogue] == [
        "gourmet-haven",
        "sizzle-spice",
        "cafe-serendipity",
        "sea-breeze-grill",
    ]


def test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    values = values_variant(tmp_path / "values.yaml", restaurants=[{"name": "Noodle Bar"}])
    monkeypatch.setenv("MODEL_SERVICE_URL", "http://mesh.local:8094/")
    monkeypatch.setenv("FRONTEND_PORT", "9001")
    monkeypatch.setenv("FRONTEND_READ_TIMEOUT", "1.5")
    monkeypatch.setenv("FRONTEND_VALUES_FILE", str(values))
    settings = Settings()  # type: ignore[call-arg]
    assert settings.model_service_url == "http://mesh.local:8094"
    assert settings.port == 9001
    assert settings.read_timeout == 1.5
    assert [(r.name, r.slug) for r in settings.catalogue] == [("Noodle Bar", "noodle-bar")]


def test_slugs():
    assert slugify("Café Serendipity") == "cafe-serendipity"
    assert slugify("Sizzle & Spice") == "sizzle-spice"


async def test_custom_catalogue_gets_generic_artwork(tmp_path: Path):
    values = values_variant(tmp_path / "values.yaml", restaurants=[{"name": "Noodle Bar"}])
    async with frontend_client(None, values_file=values) as client:
        page = await client.get("/")
        assert "Noodle Bar" in page.text and "Gourmet Haven" not in page.text
        assert "/static/art/restaurant.svg" in page.text
        assert (await client.get("/restaurants/noodle-bar")).status_code == 200
        assert (await client.get("/restaurants/gourmet-haven")).status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({}, ["--port", "70000"], "FRONTEND_PORT"),
        ({"FRONTEND_PORT": "http"}, [], "FRONTEND_PORT"),
        ({}, ["--model-service-url", "ftp://x"], "MODEL_SERVICE_URL"),
        ({"MODEL_SERVICE_URL": "localhost:8080"}, [], "MODEL_SERVICE_URL"),
        ({"FRONTEND_READ_TIMEOUT": "-1"}, [], "FRONTEND_READ_TIMEOUT"),
        ({"FRONTEND_CONNECT_TIMEOUT": "0"}, [], "FRONTEND_CONNECT_TIMEOUT"),
        ({"FRONTEND_LOG_LEVEL": "loud"}, [], "FRONTEND_LOG_LEVEL"),
        ({}, [], "FRONTEND_VALUES_FILE"),
        ({"FRONTEND_VALUES_FILE": "/nonexistent/values.yaml"}, [], "FRONTEND_VALUES_FILE"),
        ({"FRONTEND_PROMETHEUS_URL": "prometheus:9090"}, [], "FRONTEND_PROMETHEUS_URL"),
        ({"PROMETHEUS_URL": "ftp://p"}, [], "FRONTEND_PROMETHEUS_URL"),
        ({"FRONTEND_EXPERIMENT_METRICS_URLS": "http://a"}, [], "FRONTEND_EXPERIMENT_METRICS_URLS"),
        ({"FRONTEND_EXPERIMENT_METRICS_URLS": '["a:1"]'}, [], "FRONTEND_EXPERIMENT_METRICS_URLS"),
        ({"FRONTEND_EXPERIMENT_WINDOW": "a week"}, [], "FRONTEND_EXPERIMENT_WINDOW"),
    ],
)
def test_bad_settings_stop_the_start_naming_the_setting(
    env: dict[str, str], args: list[str], named: str
):
    result = subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.frontend", *args],
        cwd=ROOT,
        env={**_clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_unknown_flag_is_refused():
    result = subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.frontend", "--colour", "red"],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--colour" in result.stderr


@pytest.mark.slow
def test_flags_override_the_environment():
    port = free_port()
    env = {"FRONTEND_PORT": "1", "MODEL_SERVICE_URL": "http://127.0.0.1:9"}
    args = frontend_args(port, f"http://127.0.0.1:{free_port()}")
    with running(args, f"http://127.0.0.1:{port}/healthz", env=env, timeout=60):
        page = httpx.get(f"http://127.0.0.1:{port}/restaurants/gourmet-haven", timeout=10)
        assert page.status_code == 200
        review = httpx.post(
            f"http://127.0.0.1:{port}/restaurants/gourmet-haven/reviews",
            data={"review": "nice"},
            headers={"hx-request": "true"},
            timeout=10,
        )
        assert review.status_code == 503, "nothing listens at the flag's model-service URL"


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FRONTEND_") and k != "PROMETHEUS_URL"
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"restaurants": []}, "restaurants"),
        ({"restaurants": [{"name": "A b"}, {"name": "a-B"}]}, "share the URL name"),
        ({"restaurants": [{"name": "other"}]}, "restaurants[0].name"),
        ({"modelService": {"port": 8080, "versions": [], "cookie": {}}}, "modelService"),
    ],
)
def test_invalid_values_stop_the_start_naming_the_value(
    tmp_path: Path, changes: dict[str, object], named: str
):
    values = values_variant(tmp_path / "values.yaml", **changes)
    result = subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.frontend", "--values-file", str(values)],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "FRONTEND_VALUES_FILE" in result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
