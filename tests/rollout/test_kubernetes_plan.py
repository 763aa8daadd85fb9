"""`make rollout K8S=1`: the printed plan, its PromQL checked by promtool, its weights by Helm."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from restaurant_sentiment.tools.rollout.cli import main
from restaurant_sentiment.values import load_values
from tests.mesh.test_one_source import only, render_chart
from tests.support import CHART_VALUES, ROOT, require_binary

VALUES = load_values(CHART_VALUES)
ROLLOUT = VALUES.rollout


def path_without_helm() -> str:
    """This PATH without any folder that holds a `helm`, so the plan is made without it."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(f for f in folders if f and not (Path(f) / "helm").exists())


@pytest.fixture(scope="module")
def printed() -> str:
    """`make rollout DRY_RUN=1 K8S=1` as a person types it, on a machine without helm."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"PROMETHEUS_URL", "RELEASE"}},
        "PATH": path_without_helm(),
        "NAMESPACE": "food",
    }
    assert shutil.which("helm", path=env["PATH"]) is None
    result = subprocess.run(
        ["make", "--no-print-directory", "rollout", "DRY_RUN=1", "K8S=1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def commands(plan: str) -> list[list[str]]:
    return [shlex.split(line) for line in plan.splitlines() if line.startswith("  helm upgrade")]


def weights_of(command: list[str]) -> dict[str, int]:
    (index,) = [i for i, arg in enumerate(command) if arg == "--set-json"]
    name, _, versions = command[index + 1].partition("=")
    assert name == "modelService.versions"
    return {v["name"]: v["weight"] for v in json.loads(versions)}


def queries(plan: str) -> list[str]:
    return [line.strip() for line in plan.splitlines() if line.startswith("    ")]


def expected_weights() -> list[dict[str, int]]:
    """Each step of values.yaml, then 100 %, then the rollback."""
    shares = [*ROLLOUT.analysed_steps, 100]
    return [{"stable": 100 - s, "canary": s} for s in shares] + [{"stable": 100, "canary": 0}]


@pytest.mark.slow
def test_the_plan_has_one_helm_upgrade_per_step_then_100_then_the_rollback(printed: str) -> None:
    found = commands(printed)
    assert [weights_of(c) for c in found] == expected_weights()
    for command in found:
        assert command[:8] == [
            "helm", "upgrade", "restaurant-sentiment", "deploy/helm/restaurant-sentiment",
            "--namespace", "food", "--reuse-values", "--set-json",
        ]  # fmt: skip
    assert "on a rollback: stable 100%, canary 0%" in printed
    assert f"ROLLBACK  canary answered more than {100 * ROLLOUT.max_error_rate:g}%" in printed


@pytest.mark.slow
def test_each_step_decides_on_its_own_assignments_and_istios_5xx(printed: str) -> None:
    lines = queries(printed)
    for percent in ROLLOUT.analysed_steps:
        split = f"stable={100 - percent},canary={percent}"
        assert any(f'model_assignments_total{{split="{split}"}}' in q for q in lines), split
    istio = [q for q in lines if "istio_requests_total" in q]
    assert istio and all('destination_workload_namespace="food"' in q for q in istio)
    assert any('response_code=~"5.."' in q for q in istio)
    assert any("true_pos_predictions_total" in q for q in lines)


@pytest.mark.slow
def test_every_printed_query_is_valid_promql(printed: str, tmp_path: Path) -> None:
    promtool = require_binary("promtool", "apt-get install prometheus")
    rules = {
        "groups": [
            {
                "name": "rollout-plan",
                "rules": [
                    {"record": f"rollout:plan_query_{i}", "expr": query}
                    for i, query in enumerate(queries(printed))
                ],
            }
        ]
    }
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(queries(printed))} rules found" in result.stdout


@pytest.mark.slow
def test_the_chart_rendered_with_each_steps_command_carries_its_weights(printed: str) -> None:
    helm = pytest.importorskip("helm_python")
    for command in commands(printed):
        (index,) = [i for i, arg in enumerate(command) if arg == "--set-json"]
        overrides: dict[str, Any] = helm.parse_set_json(command[index + 1])
        docs = render_chart(overrides)
        weights = weights_of(command)
        route = only(docs, "VirtualService", "-model-service")["spec"]["http"][-1]["route"]
        assert {d["destination"]["subset"]: d["weight"] for d in route} == weights
        # The pods read the same weights, so the experiment compares the split with them.
        configmap = only(docs, "ConfigMap", "-values")
        assert load_values_json(configmap["data"]["values.json"]) == weights


def load_values_json(text: str) -> dict[str, int]:
    return {v["name"]: v["weight"] for v in json.loads(text)["modelService"]["versions"]}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--kubernetes"], {}, "PROMETHEUS_URL: a rollout in Kubernetes reads"),
        (["--kubernetes"], {"PROMETHEUS_URL": "http://127.0.0.1:1"}, "helm is not on the PATH"),
        (["--kubernetes", "--namespace", "Food Court"], {}, "NAMESPACE: 'Food Court'"),
        ([], {"GATEWAY_PORT": "1"}, "no `make up` is running with GATEWAY_PORT=1"),
        (["--values", "/nonexistent.yaml", "--kubernetes"], {}, "cannot read the values file"),
    ],
)
def test_bad_input_is_named_and_exits_2(
    args: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    for name in ("PROMETHEUS_URL", "DRY_RUN", "GATEWAY_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", path_without_helm())
    monkeypatch.setenv("LOCALMESH_RUN_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err


def test_a_values_file_whose_rollout_names_no_version_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRY_RUN", raising=False)
    raw = yaml.safe_load(CHART_VALUES.read_text())
    raw["rollout"]["treatment"] = "canary-b"
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["--values", str(path), "--kubernetes", "--dry-run"]) == 2
    assert "rollout.treatment: unknown version 'canary-b'" in capsys.readouterr().err
