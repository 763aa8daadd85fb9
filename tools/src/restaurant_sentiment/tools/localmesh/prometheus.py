"""Prometheus configuration of `make up`: scrape every local process, load the project's rules."""

from __future__ import annotations

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


def build_config(
    model_service_ports: dict[str, int],
    frontend_port: int,
    envoy_admin_port: int,
    rules: Path | None,
) -> dict[str, Any]:
    """Scrape both model-services, the frontend and Envoy's Prometheus statistics."""
    model_targets = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"version": name}}
        for name, port in model_service_ports.items()
    ]
    config: dict[str, Any] = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "scrape_configs": [
            {"job_name": "model-service", "static_configs": model_targets},
            {
                "job_name": "frontend",
                "static_configs": [{"targets": [f"127.0.0.1:{frontend_port}"]}],
            },
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
