"""Unit checks of the generated configuration that need no running process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from restaurant_sentiment.tools.localmesh import gateway, prometheus
from restaurant_sentiment.tools.localmesh.settings import UpSettings
from restaurant_sentiment.tools.localmesh.up import banner
from restaurant_sentiment.values import ConfigError, Values
from tests.mesh.conftest import loopback_listen


def _filters(bootstrap: dict[str, Any]) -> list[str]:
    listener = bootstrap["static_resources"]["listeners"][0]
    config = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return [f["name"] for f in config["http_filters"]]


def test_disabled_rate_limit_leaves_no_filter(values: Values) -> None:
    off = values.model_copy(
        update={"rate_limit": values.rate_limit.model_copy(update={"enabled": False})}
    )
    upstreams = gateway.local_upstreams({"stable": 1, "canary": 2}, 3)
    assert _filters(gateway.build_bootstrap(off, upstreams, loopback_listen())) == [gateway.ROUTER]
    assert _filters(gateway.build_bootstrap(values, upstreams, loopback_listen())) == [
        gateway.LOCAL_RATELIMIT,
        gateway.ROUTER,
    ]
    assert "typed_per_filter_config" not in gateway.app_routes(off)[0]


def test_upstreams_must_cover_every_version(values: Values) -> None:
    with pytest.raises(ValueError, match="canary"):
        gateway.build_bootstrap(
            values, gateway.local_upstreams({"stable": 1}, 3), loopback_listen()
        )


def test_banner_names_the_gateway_urls(values: Values) -> None:
    text = banner(values, UpSettings(gateway_port=9000), with_prometheus=False)
    assert "http://app.localhost:9000/" in text
    assert "http://service.localhost:9000/apidocs" in text
    assert "Prometheus" not in text
    assert "http://app.localhost/" in banner(values, UpSettings(gateway_port=80), False)


def test_prometheus_scrapes_everything_and_loads_the_rules(tmp_path: Path) -> None:
    rules = prometheus.rule_groups_file(prometheus.RULES, tmp_path)
    config = prometheus.build_config(tmp_path, 4, rules)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"model-service", "frontend", "envoy"}
    assert jobs["envoy"]["metrics_path"] == "/stats/prometheus"
    if prometheus.RULES.exists():
        assert config["rule_files"] == [str(prometheus.RULES)]
    # The services are listed in files `make restart` rewrites when it replaces a process.
    prometheus.write_targets(tmp_path, {"stable": [1, 5], "canary": [2]}, [3])
    (listed,) = jobs["model-service"]["file_sd_configs"][0]["files"]
    assert json.loads(Path(listed).read_text()) == [
        {"targets": ["127.0.0.1:1", "127.0.0.1:5"], "labels": {"version": "stable"}},
        {"targets": ["127.0.0.1:2"], "labels": {"version": "canary"}},
    ]
    (listed,) = jobs["frontend"]["file_sd_configs"][0]["files"]
    assert json.loads(Path(listed).read_text()) == [{"targets": ["127.0.0.1:3"]}]


def test_prometheus_rule_resource_is_unwrapped(tmp_path: Path) -> None:
    resource = tmp_path / "rule.yaml"
    groups = [{"name": "g", "rules": [{"record": "r", "expr": "up"}]}]
    resource.write_text(yaml.safe_dump({"kind": "PrometheusRule", "spec": {"groups": groups}}))
    plain = prometheus.rule_groups_file(resource, tmp_path)
    assert plain is not None and yaml.safe_load(plain.read_text()) == {"groups": groups}
    assert prometheus.rule_groups_file(tmp_path / "none.yaml", tmp_path) is None
    resource.write_text("just: text\n")
    with pytest.raises(ConfigError, match="no `groups:` list"):
        prometheus.rule_groups_file(resource, tmp_path)
