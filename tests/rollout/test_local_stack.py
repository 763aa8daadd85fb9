"""`make rollout` on the real `make up` stack, fed by the traffic simulator.

Each test starts the stack (`python -m localmesh up`) with a values file whose `rollout:` has
small steps and minimums (20 % then 50 %, 50 feedback events per version per step, a reading
every 2 s), runs the simulator as many new clients with feedback, and runs the rollout:

- the trained models as they are (the canary is the better one): it reaches 100 %;
- the two models swapped (the canary is the worse one): it is rolled back on the evidence;
- a canary whose vectoriser and classifier come from different trainings (it loads, reports
  ready, and answers every review with a 500): it is rolled back on its 5xx rate.

The split is random, so the worse canary could pass a step by chance; with these settings it
passes both (and the test fails) about once in 200 runs (a simulation of the rule at the
models' held-out accuracies, 0.78 and 0.87).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from restaurant_sentiment.model_service.files import CLASSIFIER_FILE, VECTORIZER_FILE
from restaurant_sentiment.tools.localmesh import traffic
from restaurant_sentiment.tools.procs import start, stop
from restaurant_sentiment.values import Values, load_values
from tests.mesh.conftest import Up, no_cookies, start_up
from tests.support import ARTEFACTS, MODEL_DIR, PYTHON, ROOT, values_variant

pytestmark = pytest.mark.slow

ROLLOUT = {
    "steps": [20, 50],
    "minFeedbackPerStep": 50,
    "pollSeconds": 2,
    "stepTimeoutSeconds": 150,
    "minRequestsForErrorRate": 10,
}
REVIEW = {"review": "The food was lovely.", "restaurantName": "Gourmet Haven"}
# More reviews than any of these rollouts needs; the simulator is stopped when the rollout ends.
SIMULATED = 5000


@contextlib.contextmanager
def stack(workdir: Path, model_dir: Path) -> Iterator[tuple[Up, Values]]:
    """`make up` with the small rollout settings and these models, until the block ends."""
    values_file = values_variant(workdir / "values.yaml", rollout=ROLLOUT)
    command = [
        PYTHON, "-m", "restaurant_sentiment.tools.localmesh", "--values", str(values_file),
        "up", "--model-dir", str(model_dir),
    ]  # fmt: skip
    with start_up(workdir / "run", command) as up:
        up.wait_for("Press Ctrl-C to stop everything.")
        yield up, load_values(values_file)


@contextlib.contextmanager
def simulator(up: Up, values: Values) -> Iterator[None]:
    """`make simulate`'s command, one review per new client, running until the block ends."""
    command = [
        PYTHON, "-m", "restaurant_sentiment.tools.experiment", "simulate",
        "--gateway", f"http://127.0.0.1:{up.env['GATEWAY_PORT']}",
        "--host-header", values.hosts.service,
        "--clients", str(SIMULATED), "--reviews", str(SIMULATED),
        "--time-limit", "400", "--quiet",
    ]  # fmt: skip
    proc = start(command, env=up.env, cwd=ROOT)
    try:
        yield
    finally:
        stop(proc)


def rollout(
    up: Up, log: Path, make: bool = False
) -> tuple[subprocess.CompletedProcess[str], float]:
    """The rollout against this stack, as `make rollout` (or its command) runs it."""
    command = (
        ["make", "--no-print-directory", "rollout", f"LOG={log}"]
        if make
        else [PYTHON, "-m", "restaurant_sentiment.tools.rollout", "--log", str(log)]
    )
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=ROOT, env=up.env, capture_output=True, text=True, timeout=600
    )
    return result, time.monotonic() - started


def entries(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def new_clients(up: Up, values: Values, count: int = 40, **headers: str) -> Counter[str]:
    """The versions that count new visitors (no cookie, or the one given) are sent to."""
    with httpx.Client(
        base_url=f"http://127.0.0.1:{up.env['GATEWAY_PORT']}",
        headers={"host": values.hosts.service, **headers},
        cookies=no_cookies(),
        timeout=30,
        trust_env=False,
    ) as http:
        return Counter(
            http.post("/predict", json=REVIEW).json()["modelVersion"] for _ in range(count)
        )


def live_weights(up: Up) -> dict[str, int]:
    """The weights every process of the stack reads now (its effective values file)."""
    directory = Path(up.env[traffic.RUN_DIR_ENV]) / f"gateway-{up.env['GATEWAY_PORT']}"
    return load_values(traffic.effective_values_file(directory)).weights


def log_path(name: str) -> Path:
    ARTEFACTS.mkdir(exist_ok=True)
    path = ARTEFACTS / f"rollout-{name}.jsonl"
    path.unlink(missing_ok=True)
    return path


def test_a_better_canary_is_rolled_out_to_100(tmp_path: Path) -> None:
    log = log_path("better")
    with stack(tmp_path, MODEL_DIR) as (up, values), simulator(up, values):
        result, seconds = rollout(up, log, make=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert live_weights(up) == {"stable": 0, "canary": 100}
        assert new_clients(up, values) == Counter({"canary": 40})
    print(f"rollout to 100 % took {seconds:.0f} s")
    events = entries(log)
    steps = [e for e in events if e["event"] == "step"]
    assert [(s["percent"], s["weights"]) for s in steps] == [
        (20, {"stable": 80, "canary": 20}),
        (50, {"stable": 50, "canary": 50}),
    ]
    decisive = [e for e in events if e.get("action") == "ADVANCE"]
    assert [e["step"] for e in decisive] == [1, 2]
    for entry in decisive:
        # Each step was judged on its own figures, counted under its own split.
        share = entry["percent"]
        assert entry["split"] == f"stable={100 - share},canary={share}"
        versions = entry["versions"]
        assert min(versions["stable"]["feedback"], versions["canary"]["feedback"]) >= 50
        assert versions["canary"]["assignments"] > 0
        assert entry["probability_treatment_better"] >= 0.5
        assert entry["treatment_errors"]["errors"] == 0
        assert entry["sample_ratio"]["mismatch"] is False
    assert events[-1]["event"] == "complete"
    assert events[-1]["weights"] == {"stable": 0, "canary": 100}
    # The terminal shows the same figures, one line per reading.
    assert "ADVANCE" in result.stdout
    assert "rollout complete: stable 0%, canary 100%" in result.stdout


@pytest.fixture
def swapped(tmp_path: Path) -> Path:
    """The trained models with their names swapped: the canary is now the worse model."""
    models = tmp_path / "swapped"
    shutil.copytree(MODEL_DIR / "stable", models / "canary")
    shutil.copytree(MODEL_DIR / "canary", models / "stable")
    return models


def test_a_worse_canary_is_rolled_back_and_everyone_returns_to_stable(
    tmp_path: Path, swapped: Path
) -> None:
    log = log_path("worse")
    with stack(tmp_path, swapped) as (up, values), simulator(up, values):
        result, seconds = rollout(up, log)
        assert result.returncode == 1, result.stdout + result.stderr
        assert live_weights(up) == {"stable": 100, "canary": 0}
        assert new_clients(up, values) == Counter({"stable": 40})
        # A client pinned to the canary is moved too.
        pinned = new_clients(up, values, 5, cookie=f"{values.model_service.cookie.name}=canary")
        assert pinned == Counter({"stable": 5})
    print(f"rollback of the worse canary took {seconds:.0f} s")
    events = entries(log)
    last = events[-1]
    assert last["event"] == "rollback"
    assert last["weights"] == {"stable": 100, "canary": 0}
    assert "canary is worse" in last["reason"], last["reason"]
    decisive = events[-2]
    assert decisive["action"] == "ROLLBACK"
    assert decisive["probability_treatment_better"] <= 0.05
    assert decisive["versions"]["canary"]["feedback"] >= 50
    assert "ROLLED BACK: stable 100%, canary 0%" in result.stdout


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    """A canary shipped with a vectoriser from another training than its classifier.

    Its checksums match its metadata, so it loads and reports ready; every review then fails
    inside the classifier (the feature counts differ) and the model-service answers 500.
    """
    import joblib
    from sklearn.feature_extraction.text import CountVectorizer

    models = tmp_path / "failing"
    shutil.copytree(MODEL_DIR / "stable", models / "stable")
    canary = models / "canary"
    shutil.copytree(MODEL_DIR / "canary", canary)
    other = CountVectorizer(analyzer="char_wb", ngram_range=(1, 2))
    other.fit(["the soup was cold", "lovely staff"])
    joblib.dump(other, canary / VECTORIZER_FILE)
    metadata = json.loads((canary / "metadata.json").read_text())
    for name in (VECTORIZER_FILE, CLASSIFIER_FILE):
        metadata["artefacts"][name] = hashlib.sha256((canary / name).read_bytes()).hexdigest()
    (canary / "metadata.json").write_text(json.dumps(metadata))
    return models


def test_a_canary_answering_5xx_is_rolled_back_on_its_error_rate(
    tmp_path: Path, failing: Path
) -> None:
    log = log_path("failing")
    with stack(tmp_path, failing) as (up, values):
        with simulator(up, values):
            result, seconds = rollout(up, log)
        assert result.returncode == 1, result.stdout + result.stderr
        assert live_weights(up) == {"stable": 100, "canary": 0}
        assert new_clients(up, values) == Counter({"stable": 40})
        counted = gateway_5xx(up)
    print(f"rollback of the failing canary took {seconds:.0f} s")
    last = entries(log)[-1]
    assert last["event"] == "rollback"
    assert "at this step with a 5xx" in last["reason"], last["reason"]
    decisive = entries(log)[-2]
    errors = decisive["treatment_errors"]
    assert errors["requests"] >= 10 and errors["rate"] > 0.05
    # The gateway counted at least the 5xx the rollout decided on (it keeps counting after).
    assert counted["canary"] >= errors["errors"] and counted.get("stable", 0) == 0


def gateway_5xx(up: Up) -> dict[str, int]:
    """Each version's 5xx as Envoy's admin reports them, read with Envoy's own text format."""
    text = httpx.get(f"http://127.0.0.1:{up.env['ENVOY_ADMIN_PORT']}/stats", timeout=10).text
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        prefix, _, rest = name.partition(".model-service-")
        version, _, stat = rest.partition(".")
        if prefix == "cluster" and stat == "upstream_rq_5xx":
            found[version] = int(value)
    return found
