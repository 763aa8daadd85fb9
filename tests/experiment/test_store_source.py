"""`make experiment` reading the model-services' feedback store: exact tallies per version that
no restart resets, the assignments of the split in force, and a clear error for a bad store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from restaurant_sentiment.experiment.sources import Observation, SourceError, collect
from restaurant_sentiment.model_service.app import create_app
from restaurant_sentiment.model_service.config import Settings
from restaurant_sentiment.model_service.feedback_store import (
    ASSIGNMENTS,
    CORRECT,
    INCORRECT,
    PREDICTIONS,
    SqliteStore,
)
from restaurant_sentiment.tools.experiment.store import from_store
from tests.experiment.conftest import run_cli
from tests.support import CHART_VALUES, MODEL_DIR

SPLIT = "stable=70,canary=30"


def filled(path: Path) -> str:
    """A SQLite store as replaced processes leave it: claims tallied, counts handed over."""

    async def fill() -> None:
        store = SqliteStore(path)
        try:
            for n in range(7):
                await store.claim(f"s{n}", "stable", CORRECT if n < 5 else INCORRECT, 2**40)
            for n in range(3):
                await store.claim(f"c{n}", "canary", CORRECT, 2**40)
            await store.add(
                {
                    ("stable", ASSIGNMENTS + SPLIT): 70,
                    ("canary", ASSIGNMENTS + SPLIT): 30,
                    ("stable", ASSIGNMENTS + "stable=50,canary=50"): 9,
                    ("stable", PREDICTIONS): 80,
                    ("canary", PREDICTIONS): 31,
                }
            )
        finally:
            await store.close()

    asyncio.run(fill())
    return f"sqlite://{path}"


def test_the_store_gives_each_versions_exact_counts(tmp_path: Path) -> None:
    url = filled(tmp_path / "feedback.sqlite3")
    observation = asyncio.run(from_store(url, SPLIT))
    assert observation.source == "store"
    stable, canary = observation.for_version("stable"), observation.for_version("canary")
    assert (stable.correct, stable.incorrect, stable.assignments, stable.predictions) == (
        5, 2, 70, 80,
    )  # fmt: skip
    assert (canary.correct, canary.incorrect, canary.assignments) == (3, 0, 30)


def test_a_model_service_hands_the_page_the_same_counts(tmp_path: Path) -> None:
    # What the frontend's /experiment reads without Prometheus: a model-service's
    # /experiment/counts, from the same store `make experiment` reads.
    url = filled(tmp_path / "feedback.sqlite3")
    settings = Settings(
        model_dir=MODEL_DIR, values_file=CHART_VALUES, feedback_secret="s" * 32, feedback_store=url
    )

    async def read() -> Observation:
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://ms") as http,
        ):
            with pytest.raises(SourceError, match="did not answer like /experiment/counts"):
                await collect(None, (), None, http, SPLIT, counts_url="http://ms/version")
            return await collect(
                None, (), None, http, SPLIT, counts_url="http://ms/experiment/counts"
            )

    through = asyncio.run(read())
    direct = asyncio.run(from_store(url, SPLIT))
    assert through.source == direct.source == "store"
    assert through.counts == direct.counts
    assert through.for_version("stable").assignments == 70


def test_a_missing_store_is_an_error_not_an_empty_one(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        asyncio.run(from_store(f"sqlite://{tmp_path / 'none.sqlite3'}", SPLIT))
    assert not (tmp_path / "none.sqlite3").exists()


@pytest.mark.slow
def test_make_experiment_json_reads_the_store(tmp_path: Path) -> None:
    url = filled(tmp_path / "feedback.sqlite3")
    result = run_cli("decide", "--store", url, "--values", str(CHART_VALUES), "--json")
    assert result.returncode == 0, result.stderr
    analysis = json.loads(result.stdout)
    assert analysis["source"] == "store"
    assert {v["name"]: v["feedback"] for v in analysis["versions"]} == {"stable": 7, "canary": 3}
    assert analysis["sample_ratio"]["mismatch"] is False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("postgres://db/x", "is not a feedback store"),
        ("sqlite:///nonexistent/feedback.sqlite3", "does not exist"),
        ("redis://127.0.0.1:1/0", "the feedback store cannot be read"),
    ],
)
def test_a_bad_store_gets_a_message_and_exit_2(store: str, message: str) -> None:
    result = run_cli("decide", "--store", store, "--values", str(CHART_VALUES))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
