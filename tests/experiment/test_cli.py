"""The command line: clear messages and exit status 2 for every bad input or dead source."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.experiment.conftest import run_cli
from tests.support import free_port


def _dead() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decide", "--metrics-url", "DEAD/metrics"], "error: cannot reach DEAD/metrics"),
        (["decide", "--prometheus-url", "DEAD"], "error: cannot reach DEAD/api/v1/query"),
        (["decide", "--window", "a week"], "is not a Prometheus duration"),
        (["decide", "--values", "/nonexistent/values.yaml"], "cannot read the values file"),
        (["decide", "--treatment", "blue"], "treatment version 'blue'"),
        (["simulate", "--gateway", "DEAD", "--quiet"], "error: cannot reach the gateway at DEAD"),
        (["simulate", "--data", "/nonexistent.tsv", "--quiet"], "cannot read the file"),
        (["simulate", "--reviews", "0"], "0 is outside 1..100000"),
        (["simulate", "--clients", "many"], "'many' is not a whole number"),
    ],
)
def test_bad_input_gets_a_message_and_exit_2(args: list[str], message: str) -> None:
    dead = _dead()
    result = run_cli(*[a.replace("DEAD", dead) for a in args])
    assert result.returncode == 2, result.stdout + result.stderr
    assert message.replace("DEAD", dead) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_malformed_corpus_names_the_line(tmp_path: Path) -> None:
    corpus = tmp_path / "reviews.tsv"
    corpus.write_text("Review\tLiked\nGreat food\t1\nNo label here\n", encoding="utf-8")
    result = run_cli("simulate", "--data", str(corpus), "--gateway", _dead(), "--quiet")
    assert result.returncode == 2
    assert f"{corpus}:3" in result.stderr
    assert "Traceback" not in result.stderr
