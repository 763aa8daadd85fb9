"""Generated requests against the real frontend (and a real model-service behind it).

The frontend serves no OpenAPI document (its pages are HTML), so the schema is generated from
the app's own routes by FastAPI, with the answers the pages are meant to give: HTML pages and
fragments, the whole page after a no-JavaScript post, and HTML (or JSON) errors in the 4xx range.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.openapi.utils import get_openapi
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from restaurant_sentiment.frontend.app import create_app
from restaurant_sentiment.frontend.config import Settings
from tests.support import CHART_VALUES, free_port, frontend_args, model_service, running

HTML = {"text/html": {"schema": {"type": "string"}}}
JSON_DETAIL = {"application/json": {"schema": {"type": "object", "required": ["detail"]}}}
PAGE_ANSWERS: dict[str, dict[str, Any]] = {
    "200": {"description": "the page", "content": HTML},
    "404": {"description": "unknown restaurant", "content": {**HTML, **JSON_DETAIL}},
}
# After a post: the fragment or the page with the verdict; a refusal explained in HTML.
POST_ANSWERS: dict[str, dict[str, Any]] = {
    **PAGE_ANSWERS,
    **{
        code: {"description": "refused, with the reason", "content": HTML}
        for code in ("400", "403", "409", "413", "422")
    },
}


def frontend_schema() -> dict[str, Any]:
    app = create_app(Settings(values_file=CHART_VALUES))
    schema = get_openapi(title="frontend", version="1", routes=app.routes)
    # The review pages; the experiment page reads Prometheus and is tested with it.
    schema["paths"] = {
        path: item for path, item in schema["paths"].items() if not path.startswith("/experiment")
    }
    for item in schema["paths"].values():
        for method, operation in item.items():
            # JSON routes (/healthz, /version) keep the answers FastAPI documents for them.
            if "text/html" not in operation["responses"]["200"].get("content", {}):
                continue
            operation["responses"] = POST_ANSWERS if method == "post" else PAGE_ANSWERS
    return schema


schema = schemathesis.openapi.from_dict(frontend_schema())


@pytest.fixture(scope="module")
def frontend_url() -> Iterator[str]:
    with model_service("canary") as model_url:
        port = free_port()
        args = frontend_args(port, model_url)
        env = {"FRONTEND_LOG_LEVEL": "warning"}
        with running(args, f"http://127.0.0.1:{port}/healthz", env=env, timeout=90):
            yield f"http://127.0.0.1:{port}"


def test_the_schema_covers_every_review_page() -> None:
    operations = {
        (method.upper(), path)
        for path, item in frontend_schema()["paths"].items()
        for method in item
    }
    assert {
        ("GET", "/"),
        ("GET", "/restaurants/{slug}"),
        ("POST", "/restaurants/{slug}/reviews"),
        ("POST", "/restaurants/{slug}/feedback"),
    } <= operations


# Up to 400 generated cases per operation; the four with inputs get them all (1,600).
@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_frontend_never_fails_and_answers_as_documented(
    case: schemathesis.Case, frontend_url: str
) -> None:
    # Every default check (no 5xx, documented status codes and content types) except "valid input
    # accepted": a made-up restaurant slug or prediction id is rightly refused.
    case.call_and_validate(
        base_url=frontend_url, excluded_checks=[positive_data_acceptance], timeout=30
    )
