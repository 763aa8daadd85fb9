"""The committed OpenAPI document is the one the model-service serves, and it lints clean."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from restaurant_sentiment.model_service import openapi
from restaurant_sentiment.model_service.app import create_app
from restaurant_sentiment.model_service.config import Settings
from restaurant_sentiment.tools.openapi import DOCUMENT, render
from tests.support import CHART_VALUES, MODEL_DIR, ROOT, in_ci, require_binary

HERE = Path(__file__).resolve().parent
NPM = HERE / "npm"
OPERATIONS = {
    ("post", "/predict"): "predict",
    ("post", "/predict/batch"): "predictBatch",
    ("post", "/model-accuracy"): "submitFeedback",
    ("get", "/experiment/counts"): "getExperimentCounts",
    ("get", "/version"): "getVersion",
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
}


def committed() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


async def test_the_committed_document_is_what_the_service_serves() -> None:
    app = create_app(Settings(values_file=CHART_VALUES, model_dir=MODEL_DIR))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
        served = (await client.get("/openapi.json")).json()
    assert served == committed(), f"{DOCUMENT} is out of date: run `make openapi`"
    assert DOCUMENT.read_text(encoding="utf-8") == render(), "run `make openapi`"


def test_every_operation_has_its_id_a_described_tag_and_typed_answers() -> None:
    document = committed()
    found = {
        (method, path): operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert found == OPERATIONS
    tags = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert set(tags) == {tag["name"] for tag in openapi.TAGS} and all(tags.values())
    for path, item in document["paths"].items():
        for operation in item.values():
            assert operation["description"] and operation["summary"], path
            assert len(operation["tags"]) == 1 and operation["tags"][0] in tags, path
            for status, answer in operation["responses"].items():
                schema = answer["content"]["application/json"]["schema"]
                assert schema["$ref"].startswith("#/components/schemas/"), (path, status)


def test_every_schema_the_service_defines_is_closed() -> None:
    # Closed schemas give generated clients typed models without a bag for unknown properties;
    # the model metadata is closed too: it is the schema training writes metadata.json with.
    schemas = committed()["components"]["schemas"]
    for name, schema in schemas.items():
        assert schema["additionalProperties"] is False, name


def test_the_document_is_valid_openapi() -> None:
    document = committed()
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises on any error


@pytest.mark.slow  # starts node
def test_the_document_passes_spectrals_recommended_rules() -> None:
    node = require_binary("node", "install Node.js 20 or newer")
    spectral = NPM / "node_modules" / "@stoplight" / "spectral-cli" / "dist" / "index.js"
    if not spectral.is_file():
        message = "Spectral is not installed (npm ci --prefix tests/openapi/npm)"
        if in_ci():
            pytest.fail(f"{message}; CI must install it")
        pytest.skip(message)
    result = subprocess.run(
        [node, str(spectral), "lint", "--ruleset", str(HERE / "spectral.yaml"),
         "--format", "json", "--fail-severity", "hint", "--quiet", str(DOCUMENT)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_ci_installs_spectral() -> None:
    line = "npm ci --prefix tests/openapi/npm"
    for script in (ROOT / ".ci" / "run", ROOT / ".github" / "workflows" / "ci.yml"):
        assert line in script.read_text(encoding="utf-8"), script
