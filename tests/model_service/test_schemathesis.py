"""Property-based tests generated from the OpenAPI document: every check schemathesis has.

No 5xx; status codes, content types, headers and bodies as documented; input the schemas refuse
is refused, and input they allow is accepted (2xx, or a documented 403/409 for a predictionId
the service did not sign or that was already used); then stateful sequences that follow the links
schemathesis infers (a prediction's predictionId into the feedback).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks

from restaurant_sentiment.model_service.app import create_app
from restaurant_sentiment.model_service.model import SentimentModel
from tests.model_service.conftest import settings as service_settings

# The app is built here without a model (nothing heavy at import): the fixture below gives it
# the session's model before the first case runs.
app = create_app(service_settings())
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
load_all_checks()
# `st run --checks all`: every check schemathesis registers, each enabled by default.
ALL_CHECKS = {getattr(check, "__name__", type(check).__name__) for check in CHECKS.get_all()}
SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture(autouse=True)
def serving(loaded_models: dict[str, SentimentModel]) -> None:
    app.state.model = loaded_models["stable"]


def test_every_check_is_enabled() -> None:
    config = schema.config.checks_config_for()
    assert {"positive_data_acceptance", "negative_data_rejection"} <= ALL_CHECKS
    assert all(config.get_by_name(name=name).enabled for name in ALL_CHECKS)


# Up to 150 generated cases for each of the six operations, plus their examples and coverage
# cases; fixed (derandomized) so a failure reproduces.
@pytest.mark.slow
@schema.parametrize()
@settings(SETTINGS, max_examples=150)
def test_api_never_fails_and_matches_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate()


@pytest.mark.slow
class TestStateful(schema.as_state_machine().TestCase):  # type: ignore[misc]
    settings = settings(SETTINGS, max_examples=60, stateful_step_count=6)
