"""One project version: pyproject.toml, the installed package, both services' /version, the chart
and the image tags agree."""

from __future__ import annotations

import tomllib
from importlib.metadata import version

import httpx
import yaml

from restaurant_sentiment.frontend.app import create_app as create_frontend
from restaurant_sentiment.frontend.config import Settings as FrontendSettings
from restaurant_sentiment.model_service.app import create_app
from restaurant_sentiment.model_service.config import Settings
from tests.deploy.support import CHART
from tests.support import CHART_VALUES, MODEL_DIR, ROOT

PROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "version"
]


MEMBERS = [
    "restaurant-sentiment-values",
    "restaurant-sentiment-experiment",
    "restaurant-sentiment-model-service",
    "restaurant-sentiment-frontend",
    "restaurant-sentiment-tools",
]


def test_every_workspace_package_is_the_project_version() -> None:
    for folder in ("libs/values", "libs/experiment", "services/model-service",
                   "services/frontend", "tools"):  # fmt: skip
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))
        assert project["project"]["version"] == PROJECT_VERSION, folder
    for member in MEMBERS:
        assert version(member) == PROJECT_VERSION, f"{member}: reinstall with `make install`"


async def test_model_service_reports_the_project_version() -> None:
    app = create_app(
        Settings(model_dir=MODEL_DIR, values_file=CHART_VALUES, feedback_secret="x" * 32)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
            answer = await client.get("/version")
    assert answer.status_code == 200
    assert answer.json()["serviceVersion"] == PROJECT_VERSION


async def test_frontend_reports_the_project_version() -> None:
    app = create_frontend(FrontendSettings(values_file=CHART_VALUES))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://frontend") as client:
            answer = await client.get("/version")
    assert answer.status_code == 200
    assert answer.json() == {"serviceVersion": PROJECT_VERSION}


def test_chart_version_and_app_version_are_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["appVersion"] == PROJECT_VERSION
    assert chart["version"] == PROJECT_VERSION


def test_chart_default_image_tags_are_the_app_version() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    # An empty frontend tag means the chart's appVersion.
    assert values["frontend"]["tag"] in ("", PROJECT_VERSION)
    for entry in values["modelService"]["versions"]:
        assert entry["image"] in ("", PROJECT_VERSION), entry["name"]


def test_compose_images_default_to_the_project_version() -> None:
    text = (ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    tags = {line.rsplit(":-", 1)[1].rstrip("}") for line in text.splitlines() if "${TAG:-" in line}
    assert tags == {PROJECT_VERSION}
