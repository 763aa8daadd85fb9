"""Session-wide set-up: trained models in ml-model/, loaded once per session where shared.

In the fast suite (`-m "not slow"`, `make test-fast`) no test may start a process: the only
child processes allowed are the model loader's, which is the production loading path.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from restaurant_sentiment.model_service.model import Loading, SentimentModel
from tests.support import CHART_VALUES, MODEL_DIR, PYTHON, ROOT

VERSIONS = ("stable", "canary")
LOADER = "restaurant_sentiment.model_service.artefacts"

__all__ = ["CHART_VALUES", "MODEL_DIR", "VERSIONS"]


@pytest.fixture(scope="session", autouse=True)
def trained_models() -> None:
    """Train the stable and canary models once if `make models` has not run yet."""
    if all((MODEL_DIR / v / "metadata.json").is_file() for v in VERSIONS):
        return
    subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.model_service.train", "--out", str(MODEL_DIR)],
        cwd=ROOT,
        check=True,
    )


@pytest.fixture(scope="session")
def loaded_models(trained_models: None) -> dict[str, SentimentModel]:
    """Both versions, loaded once through the production path (the loader child process)."""
    loadings = {version: Loading(MODEL_DIR, version) for version in VERSIONS}
    return {version: loading.result() for version, loading in loadings.items()}


def _fast_run(config: pytest.Config) -> bool:
    return config.getoption("markexpr", "").replace(" ", "") == "notslow"


@pytest.fixture(autouse=True)
def no_processes_in_the_fast_suite(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Fail a test of the fast suite that starts a process: it must be marked slow."""
    if not _fast_run(request.config):
        yield
        return
    original = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        if LOADER not in list(args):
            pytest.fail(
                f"{request.node.nodeid} starts a process ({args!r}) but is not marked slow",
                pytrace=False,
            )
        original(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
    yield
