"""The Makefile is true: each target listed once by `make help`, doing what its text says."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow

# What each target's own recipe must run: the words of its help text, as commands.
RECIPES = {
    "help": "grep -E",
    "install": "uv sync --frozen",
    "models": "-m restaurant_sentiment.model_service.train",
    "evaluate": "-m restaurant_sentiment.tools.evaluate --data",
    "docs": "-m restaurant_sentiment.tools.docs",
    "openapi": "-m restaurant_sentiment.tools.openapi",
    "up": "-m restaurant_sentiment.tools.localmesh up",
    "restart": "-m restaurant_sentiment.tools.localmesh restart",
    "lint": "lint-imports",
    "test": "pytest",
    "test-fast": 'pytest -m "not slow"',
    "test-containers": "pytest tests/containers -m containers",
    "images": "bash deploy/docker/images.sh",
    "bench": "-m restaurant_sentiment.tools.bench",
    "bench-up": "-m restaurant_sentiment.tools.bench.userpath",
    "load": "-m restaurant_sentiment.tools.load",
    "experiment": "-m restaurant_sentiment.tools.experiment decide",
    "simulate": "-m restaurant_sentiment.tools.experiment simulate",
    "promote": "-m restaurant_sentiment.tools.localmesh promote",
    "rollback": "-m restaurant_sentiment.tools.localmesh rollback",
    "split": "-m restaurant_sentiment.tools.localmesh split",
    "rollout": "-m restaurant_sentiment.tools.rollout",
    "deploy-k8s": "bash deploy/k8s/deploy.sh",
    "undeploy-k8s": "bash deploy/k8s/undeploy.sh",
    "images-minikube": "bash deploy/k8s/images.sh",
    "up-docker": "compose -f deploy/compose.yaml up",
    "down-docker": "compose -f deploy/compose.yaml down",
    "clean": "rm -rf",
}
# Recipes that must never appear in another target's plan.
FORBIDDEN = {
    "deploy-k8s": ["undeploy.sh"],
    "promote": ["rollback", "split"],
    "rollback": ["promote", "split"],
    "split": ["promote", "rollback"],
    "rollout": ["localmesh promote", "localmesh rollback", "localmesh split"],
}


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def listed_targets() -> list[str]:
    result = make("help")
    assert result.returncode == 0 and not result.stderr, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def test_help_lists_each_target_once_and_every_listed_target_is_known() -> None:
    targets = listed_targets()
    assert len(targets) == len(set(targets)), targets
    assert set(targets) == set(RECIPES), "add the new target's command to RECIPES"


def test_each_target_has_one_rule_and_is_phony() -> None:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    rules = re.findall(r"^([a-z0-9-]+):(?!=)", text, flags=re.M)
    repeated = sorted({r for r in rules if rules.count(r) > 1})
    assert not repeated, f"targets with more than one rule: {repeated}"
    phony = set(re.search(r"^\.PHONY:(.*?)(?<!\\)$", text, flags=re.M | re.S)[1].split()) - {"\\"}
    assert set(RECIPES) <= phony, f"not .PHONY: {sorted(set(RECIPES) - phony)}"


@pytest.mark.parametrize("target", sorted(RECIPES))
def test_the_recipe_is_the_one_its_help_describes(target: str) -> None:
    # -B plans every prerequisite too; -n prints the plan without running it.
    result = make("-n", "-B", target, env={"DRY_RUN": "1"})
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr
    assert RECIPES[target] in result.stdout, result.stdout
    for wrong in FORBIDDEN.get(target, []):
        assert wrong not in result.stdout, f"`make {target}` would run {wrong}"


def test_models_are_retrained_when_the_corpus_changes(tmp_path: Path) -> None:
    corpus = (ROOT / "data" / "restaurant_reviews.tsv").read_text(encoding="utf-8")
    newer = tmp_path / "newer.tsv"
    newer.write_text(corpus, encoding="utf-8")
    future = time.time() + 3600
    os.utime(newer, (future, future))
    stale = make("-n", "models", f"DATA={newer}")
    assert "restaurant_sentiment.model_service.train" in stale.stdout
    assert f"--data {newer}" in stale.stdout


def test_experiment_passes_json_and_prometheus_through() -> None:
    plan = make("-n", "experiment", "JSON=1", "PROMETHEUS_URL=http://prom:9090").stdout
    assert "--json" in plan and "--prometheus-url http://prom:9090" in plan


def test_split_passes_the_weights_through() -> None:
    plan = make("-n", "split", "WEIGHTS=stable=90,canary=10", "K8S=1").stdout
    assert "split --weights stable=90,canary=10 --kubernetes" in plan
