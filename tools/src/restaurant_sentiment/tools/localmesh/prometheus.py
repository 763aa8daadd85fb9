"""Prometheus configuration of `make up`: scrape every local process, load the project's rules.

The model-services and the frontend are found through files (`file_sd_configs`) that `make up`
rewrites when `make restart` replaces a process, so Prometheus follows it to its new port.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from restaurant_sentiment.tools.paths import PROMETHEUS_RULES
from restaurant_sentiment.values import ConfigError

RULES = PROMETHEUS_RULES


def rule_groups_file(rules: Path, workdir: Path) -> Path | None:
    """The rules as a plain `groups:` file, or None when the project has none yet."""
    if not rules.is_file():
        return None
    try:
        document = yaml.safe_load(rules.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"the alert rules {rules} are not valid YAML: {exc}") from None
    if isinstance(document, dict) and "groups" in document:
        return rules
    # A PrometheusRule resource carries the same groups under `spec`.
    if isinstance(document, dict) and isinstance(document.get("spec"), dict):
        plain = workdir / "prometheus-rules.yaml"
        plain.write_text(yaml.safe_dump({"groups": document["spec"].get("groups", [])}))
        return plain
    raise ConfigError(f"the alert rules {rules} have no `groups:` list")


def targets_file(directory: Path, job: str) -> Path:
    """The file that lists a job's targets."""
    return directory / f"prometheus-{job}-targets.json"


def write_targets(
    directory: Path, model_service_ports: dict[str, list[int]], frontend_ports: list[int]
) -> None:
    """List the processes serving now (two of a service while one replaces the other)."""
    jobs = {
        "model-service": [
            {"targets": [f"127.0.0.1:{port}" for port in ports], "labels": {"version": name}}
            for name, ports in model_service_ports.items()
        ],
        "frontend": [{"targets": [f"127.0.0.1:{port}" for port in frontend_ports]}],
    }
    for job, groups in jobs.items():
        target = targets_file(directory, job)
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(json.dumps(groups), encoding="utf-8")
        os.replace(temporary, target)


def build_config(directory: Path, envoy_admin_port: int, rules: Path | None) -> dict[str, Any]:
    """Scrape the model-services and the frontend (listed in directory) and Envoy's statistics."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "scrape_configs": [
            {
                "job_name": job,
                "file_sd_configs": [{"files": [str(targets_file(directory, job))]}],
            }
            for job in ("model-service", "frontend")
        ]
        + [
            {
                "job_name": "envoy",
                "metrics_path": "/stats/prometheus",
                "static_configs": [{"targets": [f"127.0.0.1:{envoy_admin_port}"]}],
            },
        ],
    }
    if rules is not None:
        config["rule_files"] = [str(rules)]
    return config
