"""Session-wide set-up: every test can rely on trained models in ml-model/."""

from __future__ import annotations

import subprocess

import pytest

from tests.support import PYTHON, ROOT

MODEL_DIR = ROOT / "ml-model"


@pytest.fixture(scope="session", autouse=True)
def trained_models() -> None:
    """Train the stable and canary models once if `make models` has not run yet."""
    if all((MODEL_DIR / v / "metadata.json").is_file() for v in ("stable", "canary")):
        return
    subprocess.run(
        [PYTHON, "-m", "model_service.train", "--out", str(MODEL_DIR)], cwd=ROOT, check=True
    )
