"""Broken model artefacts: the real process refuses to start, naming the file, never ready."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support import MODEL_DIR, ROOT, free_port, model_service_args

VECTORIZER = "c1_BoW_Sentiment_Model.pkl"
CLASSIFIER = "c2_Classifier_Sentiment_Model"


def missing(folder: Path) -> str:
    (folder / CLASSIFIER).unlink()
    return f"{folder / CLASSIFIER} is missing"


def truncated(folder: Path) -> str:
    path = folder / VECTORIZER
    path.write_bytes(path.read_bytes()[:100])
    return f"{path} does not match the sha256"


def other_versions_file(folder: Path) -> str:
    # A well-formed artefact, but of the other version: only the checksum can tell.
    shutil.copy(MODEL_DIR / "stable" / CLASSIFIER, folder / CLASSIFIER)
    return f"{folder / CLASSIFIER} does not match the sha256"


def swapped_without_metadata(folder: Path) -> str:
    (folder / "metadata.json").unlink()
    vectorizer = (folder / VECTORIZER).read_bytes()
    (folder / VECTORIZER).write_bytes((folder / CLASSIFIER).read_bytes())
    (folder / CLASSIFIER).write_bytes(vectorizer)
    return "is not a text vectoriser"


def garbage_without_metadata(folder: Path) -> str:
    (folder / "metadata.json").unlink()
    (folder / CLASSIFIER).write_bytes(b"not a pickle at all")
    return f"{folder / CLASSIFIER} is corrupt or unreadable"


@pytest.mark.slow
@pytest.mark.parametrize(
    "breakage",
    [missing, truncated, other_versions_file, swapped_without_metadata, garbage_without_metadata],
)
def test_service_with_a_broken_artefact_never_turns_ready(
    tmp_path: Path, breakage: Callable[[Path], str]
) -> None:
    shutil.copytree(MODEL_DIR / "canary", tmp_path / "canary")
    message = breakage(tmp_path / "canary")
    port = free_port()
    proc = subprocess.Popen(
        model_service_args("canary", port),
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "MODEL_SERVICE_MODEL_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    answers: list[int] = []
    deadline = time.monotonic() + 60
    try:
        # Poll /readyz for the whole life of the process: it must never say ready.
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                answers.append(httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code)
            time.sleep(0.05)
        assert proc.poll() is not None, "the service kept running with a broken model"
    finally:
        proc.kill()
        output = proc.communicate()[0]
    assert 200 not in answers
    assert proc.returncode != 0
    assert message in output, output
    assert "Traceback" not in output
