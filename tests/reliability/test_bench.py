"""`make bench` in small: every figure printed from a real run with wrk, the feedback stores
measured against memory with no request failing, a missed target failing the run."""

from __future__ import annotations

import argparse
import re
import subprocess

import pytest

from restaurant_sentiment.tools.bench.__main__ import TARGETS, Judge, parse_target
from tests.support import PYTHON, ROOT, require_binary


def test_a_target_is_judged_in_its_direction() -> None:
    judge = Judge({"batch-reviews": 50_000, "start-seconds": 2})
    assert judge("batch-reviews", 60_000, "60,000") == "(target >= 50,000)"
    assert judge("start-seconds", 1.5, "1.5 s") == "(target < 2)"
    assert judge.missed == []
    judge("batch-reviews", 40_000, "40,000 reviews/s")
    judge("start-seconds", 2.0, "2.00 s")
    assert judge.missed == [
        "batch-reviews 40,000 reviews/s, target >= 50,000",
        "start-seconds 2.00 s, target < 2",
    ]


def test_targets_are_named_and_numbers() -> None:
    assert parse_target("feedback-vs-memory=0.9") == ("feedback-vs-memory", 0.9)
    with pytest.raises(argparse.ArgumentTypeError, match="unknown target 'speed'"):
        parse_target("speed=2")
    with pytest.raises(argparse.ArgumentTypeError, match="must be a number"):
        parse_target("rss-mb=lots")


@pytest.mark.slow
def test_a_short_run_measures_every_figure_and_fails_on_an_impossible_target() -> None:
    require_binary("wrk", "apt-get install wrk")
    require_binary("redis-server", "apt-get install redis-server")
    result = subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.tools.bench", "--seconds", "1", "--rounds", "1",
         "--target", "feedback-vs-memory=100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    out = result.stdout
    # 1: a target missed; 2 would mean a server, wrk or a request failed.
    assert result.returncode == 1, out + result.stderr
    assert re.search(r"^  stable .* [\d.]+x \(target >= 20\)$", out, re.MULTILINE)
    assert re.search(r"^  canary .* [\d.]+x \(target >= 20\)$", out, re.MULTILINE)
    assert re.search(r"^Start to ready: [\d.]+ s \(target < 2\)$", out, re.MULTILINE)
    assert re.search(r"^  /predict reaches [\d.]+x /healthz", out, re.MULTILINE)
    assert re.search(r"^POST /predict/batch.*: [\d,]+ reviews/s", out, re.MULTILINE)
    for store in ("memory", "sqlite", "redis"):
        assert re.search(rf"^  {store}\s+\d+ req/s", out, re.MULTILINE), store
    missed = next(line for line in out.splitlines() if line.startswith("Missed targets:"))
    assert "feedback-vs-memory (sqlite)" in missed and "feedback-vs-memory (redis)" in missed
    assert set(TARGETS) >= {name.split()[0] for name in missed.split(": ", 1)[1].split("; ")}
