"""`make bench-up` in small: wrk through the real gateway, the figures printed, a missed target
failing the run; and wrk's report read right."""

from __future__ import annotations

import re
import subprocess

import pytest

from restaurant_sentiment.tools.bench import wrk
from restaurant_sentiment.tools.bench.userpath import LABELS
from tests.support import PYTHON, ROOT, require_binary

REPORT = """\
Running 1s test @ http://127.0.0.1:8080/healthz
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us    1.30ms  40.42ms   91.78%
  Latency Distribution
     50%  812.00us
     75%    3.04ms
     90%    3.53ms
     99%    1.20s
  3926 requests in 1.01s, 543.00KB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   3887.12
Transfer/sec:    537.62KB
"""


def test_wrk_report_is_read_with_its_units_and_failures() -> None:
    figures = wrk.parse(REPORT)
    assert figures.requests == 3926
    assert figures.rate == pytest.approx(3887.12)
    assert figures.p50_ms == pytest.approx(0.812)
    assert figures.p99_ms == pytest.approx(1200.0)
    assert figures.failed == 7 + 2 + 3


def test_an_unreadable_wrk_report_is_an_error() -> None:
    with pytest.raises(wrk.WrkError, match="could not read"):
        wrk.parse("unable to connect to 127.0.0.1:9 Connection refused\n")


@pytest.mark.slow
def test_a_short_run_prints_every_path_and_fails_on_an_impossible_target() -> None:
    require_binary("wrk", "apt-get install wrk")
    result = subprocess.run(
        [
            PYTHON, "-m", "restaurant_sentiment.tools.bench.userpath", "--seconds", "1",
            "--connections", "4", "--target", "review-vs-predict=100",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    for label in LABELS.values():
        row = next(line for line in out.splitlines() if line.strip().startswith(label))
        assert re.search(r"\d+\s+[\d.]+ ms\s+[\d.]+ ms$", row), row
    for name in ("review-vs-predict", "page-vs-healthz", "predict-vs-bare", "predict-vs-healthz"):
        assert re.search(rf"^  {name}\s+[\d.]+x  \(target >= [\d.]+x\)", out, re.MULTILINE), name
    assert "review-p99-vs-p50" in out
    missed = next(line for line in out.splitlines() if line.startswith("Missed targets:"))
    assert "review-vs-predict" in missed and "< 100x" in missed
    # Every request through the gateway answered 2xx: no failure is hidden behind a fast figure.
    assert "failed" not in missed


@pytest.mark.slow
def test_an_unknown_target_is_refused() -> None:
    result = subprocess.run(
        [PYTHON, "-m", "restaurant_sentiment.tools.bench.userpath", "--target", "speed=2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown target 'speed'" in result.stderr
