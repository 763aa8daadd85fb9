"""The Prometheus rules, checked and unit-tested by the real promtool."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from restaurant_sentiment.experiment.stats import wilson_interval
from tests.helm.conftest import CHART, Manifest, only
from tests.support import require_binary

RULES = CHART / "files" / "prometheus-rules.yaml"
RUNBOOK = (
    "https://github.com/restaurant-sentiment/restaurant-sentiment/blob/main/docs/kubernetes.md"
)


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary("promtool", "apt-get install prometheus")


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_rendered_prometheus_rule_passes_promtool_check(
    promtool: str, default_manifests: list[Manifest], tmp_path: Path
) -> None:
    rule = only(default_manifests, "PrometheusRule")
    extracted = tmp_path / "rules.yaml"
    extracted.write_text(yaml.safe_dump(rule["spec"]))
    result = run_promtool(promtool, "check", "rules", str(extracted))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


@pytest.mark.slow
def test_promtool_check_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    """The check above can fail: a typo in PromQL is reported."""
    broken = yaml.safe_load(RULES.read_text())
    broken["groups"][1]["rules"][0]["expr"] = "sum(rate(http_requests_total[1m]) > 15"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = run_promtool(promtool, "check", "rules", str(path))
    assert result.returncode != 0


def run_rule_tests(promtool: str, tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    spec = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests}
    path = tmp_path / "rules_test.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = run_promtool(promtool, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def requests(per_15s: float, instance: str = "a", handler: str = "/predict") -> dict[str, str]:
    labels = f'handler="{handler}",method="POST",status="2xx",instance="{instance}"'
    return {"series": f"http_requests_total{{{labels}}}", "values": f"0+{per_15s}x80"}


def high_rate_alert(count: int) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": "warning"},
        "exp_annotations": {
            "summary": "The model-service receives more than 15 prediction requests per minute.",
            "description": (
                f"{count} prediction requests reached the model-service in the last minute, "
                "above 15 per minute for at least 2 minutes."
            ),
            "runbook_url": f"{RUNBOOK}#highrequestrate",
        },
    }


@pytest.mark.slow
def test_high_request_rate_fires_after_two_minutes_at_16_per_minute(
    promtool: str, tmp_path: Path
) -> None:
    name = "HighRequestRate"
    run_rule_tests(
        promtool,
        tmp_path,
        [
            {
                "interval": "15s",
                "input_series": [requests(4)],  # 16 per minute
                "alert_rule_test": [
                    # Above 15 from the first full minute on: pending, not yet firing.
                    {"eval_time": "1m", "alertname": name, "exp_alerts": []},
                    {"eval_time": "2m", "alertname": name, "exp_alerts": []},
                    # Sustained for 2 minutes.
                    {"eval_time": "3m", "alertname": name, "exp_alerts": [high_rate_alert(16)]},
                    {"eval_time": "15m", "alertname": name, "exp_alerts": [high_rate_alert(16)]},
                ],
            },
            {
                "interval": "15s",
                # Two replicas at 8 per minute each: the limit is on the service, not a pod.
                "input_series": [requests(2, "a"), requests(2, "b")],
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": name, "exp_alerts": [high_rate_alert(16)]},
                ],
            },
        ],
    )


@pytest.mark.slow
def test_high_request_rate_stays_quiet_at_14_per_minute(promtool: str, tmp_path: Path) -> None:
    name = "HighRequestRate"
    run_rule_tests(
        promtool,
        tmp_path,
        [
            {
                "interval": "15s",
                # 14 per minute to /predict, and a busy frontend homepage that must not count.
                "input_series": [requests(3.5), requests(20, "web", handler="/")],
                "alert_rule_test": [
                    {"eval_time": f"{minute}m", "alertname": name, "exp_alerts": []}
                    for minute in (1, 3, 5, 10, 19)
                ],
            }
        ],
    )


def feedback(outcome: str, version: str, per_minute: str, instance: str = "a") -> dict[str, str]:
    labels = f'model_version="{version}",restaurant="Gourmet Haven",instance="{instance}"'
    return {"series": f"{outcome}_predictions_total{{{labels}}}", "values": per_minute}


@pytest.mark.slow
def test_accuracy_is_pooled_across_replicas_and_survives_a_restart(
    promtool: str, tmp_path: Path
) -> None:
    run_rule_tests(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    # Replica a of canary: 3 right and 1 wrong a minute, restarted after minute
                    # 40: the new process's counters start again from zero.
                    feedback("true_pos", "canary", "0+3x40 3+3x39", "a"),
                    feedback("false_pos", "canary", "0+1x40 1+1x39", "a"),
                    # Replica b of canary: 1 right and 1 wrong a minute.
                    feedback("true_neg", "canary", "0+1x80", "b"),
                    feedback("false_neg", "canary", "0+1x80", "b"),
                    # Stable has had only correct feedback: no false_* series exist at all.
                    feedback("true_pos", "stable", "0+2x80"),
                    # Trial has had only wrong feedback: no true_* series exist at all.
                    feedback("false_neg", "trial", "0+1x80"),
                ],
                "promql_expr_test": [
                    {
                        # Minute 70: the 1h window spans the restart of replica a.
                        "expr": "model_version:model_accuracy:ratio1h",
                        "eval_time": "70m",
                        "exp_samples": [
                            {
                                "labels": series("model_version:model_accuracy:ratio1h", "canary"),
                                "value": 4 / 6,
                            },
                            {
                                "labels": series("model_version:model_accuracy:ratio1h", "stable"),
                                "value": 1,
                            },
                            {
                                "labels": series("model_version:model_accuracy:ratio1h", "trial"),
                                "value": 0,
                            },
                        ],
                    },
                    {
                        "expr": "model_version:feedback:increase1h",
                        "eval_time": "70m",
                        "exp_samples": [
                            {
                                "labels": series("model_version:feedback:increase1h", "canary"),
                                "value": 360,
                            },
                            {
                                "labels": series("model_version:feedback:increase1h", "stable"),
                                "value": 120,
                            },
                            {
                                "labels": series("model_version:feedback:increase1h", "trial"),
                                "value": 60,
                            },
                        ],
                    },
                ],
            }
        ],
    )


def series(name: str, version: str) -> str:
    return f"{name}{{model_version='{version}'}}"


def low_accuracy_alert(version: str, percent: str) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": "warning", "model_version": version},
        "exp_annotations": {
            "summary": f"Model version {version} is right less than 70% of the time.",
            "description": (
                f"Users marked {percent} of the predictions of version {version} as correct "
                "over the last hour (threshold 70%)."
            ),
            "runbook_url": f"{RUNBOOK}#lowmodelaccuracy",
        },
    }


@pytest.mark.slow
def test_low_model_accuracy_threshold(promtool: str, tmp_path: Path) -> None:
    name = "LowModelAccuracy"
    run_rule_tests(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    # canary: 69% right, below the 70% threshold.
                    feedback("true_pos", "canary", "0+69x60"),
                    feedback("false_pos", "canary", "0+31x60"),
                    # stable: exactly 70% right, which is not below the threshold.
                    feedback("true_pos", "stable", "0+7x60"),
                    feedback("false_neg", "stable", "0+3x60"),
                    # trial: 50% right but on too little feedback (1 every 5 minutes) to judge.
                    feedback("true_neg", "trial", "0+0.1x60"),
                    feedback("false_neg", "trial", "0+0.1x60"),
                ],
                "alert_rule_test": [
                    # Below the threshold for less than 10 minutes: pending only.
                    {"eval_time": "5m", "alertname": name, "exp_alerts": []},
                    {
                        "eval_time": "15m",
                        "alertname": name,
                        "exp_alerts": [low_accuracy_alert("canary", "69%")],
                    },
                ],
            }
        ],
    )


SPLIT = "stable=70,canary=30"


def assignments(version: str, per_minute: str, split: str = SPLIT) -> dict[str, str]:
    """New clients the weighted route assigned to a version under a split."""
    labels = f'model_version="{version}",split="{split}",instance="{version}"'
    return {"series": f"model_assignments_total{{{labels}}}", "values": per_minute}


def configured(version: str, weights: str) -> dict[str, str]:
    """The frontend's gauge of the weight from the chart values."""
    labels = f'model_version="{version}",instance="frontend",job="frontend"'
    return {"series": f"model_version_configured_weight{{{labels}}}", "values": weights}


def split_in_force(split: str, values: str) -> dict[str, str]:
    """The frontend's gauge naming the split in force (1 while it is, absent otherwise)."""
    labels = f'split="{split}",instance="frontend",job="frontend"'
    return {"series": f"model_split_configured{{{labels}}}", "values": values}


def srm_alert(version: str, deviation: str) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": "warning", "model_version": version},
        "exp_annotations": {
            "summary": f"Model version {version} gets a share of traffic unlike its weight.",
            "description": (
                f"Version {version} was assigned a share of the new clients of the last hour that "
                f"differs from its configured weight by {deviation}, more than 4 standard errors. "
                "Until the assignment is fixed, the experiment's comparison cannot be trusted."
            ),
            "runbook_url": (
                "https://github.com/restaurant-sentiment/restaurant-sentiment/blob/main/"
                "docs/experiment-plan.md#sampleratiomismatch-alert"
            ),
        },
    }


@pytest.mark.slow
def test_sample_ratio_mismatch_fires_on_an_even_split_configured_70_30(
    promtool: str, tmp_path: Path
) -> None:
    name = "SampleRatioMismatch"
    run_rule_tests(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    configured("stable", "70x120"),
                    configured("canary", "30x120"),
                    split_in_force(SPLIT, "1x120"),
                    assignments("stable", "0+10x120"),
                    assignments("canary", "0+10x120"),
                ],
                "alert_rule_test": [
                    # Under 200 assignments in the hour: not judged yet.
                    {"eval_time": "9m", "alertname": name, "exp_alerts": []},
                    # Judged from minute 10, pending for 15 minutes, then firing.
                    {"eval_time": "20m", "alertname": name, "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": name,
                        "exp_alerts": [srm_alert("canary", "20%"), srm_alert("stable", "20%")],
                    },
                    {
                        "eval_time": "90m",
                        "alertname": name,
                        "exp_alerts": [srm_alert("canary", "20%"), srm_alert("stable", "20%")],
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": "model_version:assignments_share:ratio1h",
                        "eval_time": "90m",
                        "exp_samples": [
                            {
                                "labels": series("model_version:assignments_share:ratio1h", v),
                                "value": 0.5,
                            }
                            for v in ("canary", "stable")
                        ],
                    }
                ],
            }
        ],
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("series", "weights"),
    [
        # The configured 70/30, at a volume where 4 standard errors are under 3 points.
        (
            [split_in_force(SPLIT, "1x120"), assignments("stable", "0+70x120"),
             assignments("canary", "0+30x120")],
            ("70x120", "30x120"),
        ),
        # An even split, but only 120 assignments an hour: too few to judge.
        (
            [split_in_force(SPLIT, "1x120"), assignments("stable", "0+1x120"),
             assignments("canary", "0+1x120")],
            ("70x120", "30x120"),
        ),
        # A promotion at minute 60: the new split's assignments are judged against its weights,
        # and the old split's are no longer counted.
        (
            [
                split_in_force(SPLIT, "1x60 _x60"),
                split_in_force("stable=0,canary=100", "_x60 1x60"),
                assignments("stable", "0+70x60 4200x60"),
                assignments("canary", "0+30x60 1800x60"),
                assignments("canary", "_x60 0+50x60", "stable=0,canary=100"),
            ],
            ("70x60 0x60", "30x60 100x60"),
        ),
    ],
    ids=["as-configured", "under-minimum-volume", "through-a-promotion"],
)  # fmt: skip
def test_sample_ratio_mismatch_stays_silent(
    promtool: str, tmp_path: Path, series: list[dict[str, str]], weights: tuple[str, str]
) -> None:
    run_rule_tests(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    configured("stable", weights[0]),
                    configured("canary", weights[1]),
                    *series,
                ],
                "alert_rule_test": [
                    {
                        "eval_time": f"{minute}m",
                        "alertname": "SampleRatioMismatch",
                        "exp_alerts": [],
                    }
                    for minute in (10, 30, 59, 70, 90, 119)
                ],
            }
        ],
    )


@pytest.mark.slow
def test_sample_ratio_mismatch_fires_when_a_retired_version_still_gets_traffic(
    promtool: str, tmp_path: Path
) -> None:
    """Weight 0 for two hours, yet a tenth of the assignments: a standard error of zero."""
    promoted = "stable=0,canary=100"
    run_rule_tests(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    configured("stable", "0x180"),
                    configured("canary", "100x180"),
                    split_in_force(promoted, "1x180"),
                    assignments("stable", "0+1x180", promoted),
                    assignments("canary", "0+9x180", promoted),
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "60m",
                        "alertname": "SampleRatioMismatch",
                        "exp_alerts": [srm_alert("canary", "10%"), srm_alert("stable", "10%")],
                    }
                ],
            }
        ],
    )


@pytest.mark.slow
def test_wilson_band_is_the_experiment_reports_interval(promtool: str, tmp_path: Path) -> None:
    """The dashboard's band equals experiment.stats.wilson_interval on the same counts."""
    # In the hour before minute 70: canary 45 right of 60, stable 20 right of 40.
    expected = {
        "canary": wilson_interval(45, 60, 0.95),
        "stable": wilson_interval(20, 40, 0.95),
    }

    def samples(bound: str) -> list[dict[str, Any]]:
        # To nine decimals: promtool compares floats exactly, and the last bit may differ.
        return [
            {
                "labels": f"{{model_version='{version}'}}",
                "value": math.floor(getattr(interval, bound) * 1e9),
            }
            for version, interval in expected.items()
        ]

    run_rule_tests(
        promtool,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    feedback("true_pos", "canary", "0+0.75x80"),
                    feedback("false_neg", "canary", "0+0.25x80"),
                    feedback("true_neg", "stable", "0+0.3333333333333333x80"),
                    feedback("false_pos", "stable", "0+0.3333333333333333x80"),
                ],
                "promql_expr_test": [
                    {
                        "expr": f"floor(model_version:model_accuracy_wilson_{bound}:ratio1h * 1e9)",
                        "eval_time": "70m",
                        "exp_samples": samples(bound),
                    }
                    for bound in ("low", "high")
                ],
            }
        ],
    )
