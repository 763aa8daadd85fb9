"""The real service: uvicorn on a free port, and refusals to start on bad configuration."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import CHART_VALUES, MODEL_DIR, PYTHON, ROOT, model_service, values_variant

pytestmark = pytest.mark.slow


def test_real_server_answers_the_original_curl_bodies() -> None:
    with model_service("canary") as url:
        response = httpx.post(
            f"{url}/predict",
            json={"restaurantName": "Gourmet Haven", "review": "This excellent."},
            timeout=10,
        )
        assert response.status_code == 200
        assert response.json()["modelVersion"] == "canary"
        feedback = httpx.post(
            f"{url}/model-accuracy",
            json={"restaurantName": "Gourmet Haven", "accurate": False, "prediction": 1},
            timeout=10,
        )
        assert feedback.json() == {"model-accuracy": 0.0, "restaurantName": "Gourmet Haven"}
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert (
            'false_pos_predictions_total{model_version="canary",restaurant="Gourmet Haven"} 1.0'
            in metrics
        )
        assert httpx.get(f"{url}/apidocs", timeout=10).status_code == 200


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.model_service", "--port", "1", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "MODEL_SERVICE_VALUES_FILE": str(CHART_VALUES),
            **(env or {}),
        },
        timeout=60,
    )


def test_missing_artefact_stops_start_naming_the_file(tmp_path: Path) -> None:
    shutil.copytree(MODEL_DIR / "stable", tmp_path / "stable")
    (tmp_path / "stable" / "c2_Classifier_Sentiment_Model").unlink()
    result = start("--model-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"{tmp_path}/stable/c2_Classifier_Sentiment_Model is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_checksum_mismatch_stops_start_naming_the_file(tmp_path: Path) -> None:
    shutil.copytree(MODEL_DIR / "stable", tmp_path / "stable")
    shutil.copy(MODEL_DIR / "canary" / "c1_BoW_Sentiment_Model.pkl", tmp_path / "stable")
    result = start("--model-dir", str(tmp_path))
    assert result.returncode == 2
    assert "stable/c1_BoW_Sentiment_Model.pkl does not match the sha256" in result.stderr


def test_bad_settings_stop_start_naming_the_setting(tmp_path: Path) -> None:
    values = values_variant(tmp_path / "values.yaml", restaurants=[{"name": "other"}])
    result = start("--values-file", str(values))
    assert result.returncode == 2
    assert "MODEL_SERVICE_VALUES_FILE (--values-file)" in result.stderr
    assert "restaurants[0].name" in result.stderr
    result = start(env={"MODEL_SERVICE_VALUES_FILE": str(tmp_path / "absent.yaml")})
    assert result.returncode == 2
    assert "MODEL_SERVICE_VALUES_FILE" in result.stderr and "absent.yaml" in result.stderr
    result = start("--model-version", "../etc")
    assert result.returncode == 2
    assert "MODEL_SERVICE_MODEL_VERSION (--model-version)" in result.stderr
    result = start(env={"MODEL_SERVICE_FEEDBACK_SECRET": "short"})
    assert "MODEL_SERVICE_FEEDBACK_SECRET" in result.stderr
    assert "at least 16 characters" in result.stderr
