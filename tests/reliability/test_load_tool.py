"""`python -m load` in small: it starts the mesh, reports figures, and fails on a missed target."""

from __future__ import annotations

import subprocess

import pytest

from tests.support import PYTHON, ROOT, free_port


def run_load(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.tools.load", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_small_run_meets_its_targets_and_prints_the_figures() -> None:
    result = run_load("--requests", "600", "--concurrency", "8")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "600 requests in" in out
    for kind in ("predict", "page"):
        line = next(line for line in out.splitlines() if line.strip().startswith(kind))
        assert "300 answers (200: 300)" in line and "p50" in line and "p99" in line
    assert "model-service stable: RSS" in out and "model-service canary: RSS" in out
    assert "all targets met" in out


@pytest.mark.slow
def test_an_unreachable_gateway_fails_the_run() -> None:
    result = run_load("--requests", "10", "--gateway", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "does not answer" in result.stderr


@pytest.mark.slow
def test_only_loopback_is_ever_loaded() -> None:
    result = run_load("--requests", "10", "--gateway", "http://example.com")
    assert result.returncode == 2
    assert "loopback" in result.stderr
