"""deploy/compose.yaml run by a real Compose implementation, checked over real HTTP.

The tests reach the stack only through the ports compose publishes on 127.0.0.1 (the gateway's
and the frontend's) and, for a second client, from inside a container of the project's network.
The last test stops every container, so it stays last in this module.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections import Counter
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from restaurant_sentiment.values import slugify
from tests.containers.support import (
    LOOPBACK,
    PROJECT_VERSION,
    ComposeProject,
    Docker,
    Report,
    published_port,
    running,
    wait_ready,
)
from tests.support import ROOT

pytestmark = [pytest.mark.containers, pytest.mark.slow]

VALUES = yaml.safe_load(
    (ROOT / "deploy" / "helm" / "restaurant-sentiment" / "values.yaml").read_text(encoding="utf-8")
)
VERSIONS = {v["name"]: v["weight"] for v in VALUES["modelService"]["versions"]}
COOKIE = VALUES["modelService"]["cookie"]["name"]
OURS = ("app", "model-service-stable", "model-service-canary", "gateway")
APP_HOST = {"Host": "app.localhost"}
SERVICE_HOST = {"Host": "service.localhost"}


@pytest.fixture(scope="module")
def stack(compose_project: ComposeProject) -> dict[str, str]:
    """Service name -> container id."""
    return {service: compose_project.container(service) for service in OURS}


@pytest.fixture(scope="module")
def gateway(docker: Docker, stack: dict[str, str]) -> str:
    return f"http://{LOOPBACK}:{published_port(docker, stack['gateway'], 8080)}"


@pytest.fixture(scope="module")
def frontend(docker: Docker, stack: dict[str, str]) -> str:
    return f"http://{LOOPBACK}:{published_port(docker, stack['app'], 8083)}"


def version_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        match = re.match(rf"{COOKIE}=([^;]*)", header)
        if match:
            return match.group(1)
    return None


def in_container(docker: Docker, container: str, url: str, host: str) -> int:
    """GET url from inside a container of the project's network; return the status."""
    script = (
        "import sys, urllib.request, urllib.error\n"
        "request = urllib.request.Request(sys.argv[1], headers={'Host': sys.argv[2]})\n"
        "try:\n    print(urllib.request.urlopen(request, timeout=5).status)\n"
        "except urllib.error.HTTPError as error:\n    print(error.code)\n"
    )
    return int(docker("exec", container, "python", "-c", script, url, host).stdout)


def test_only_loopback_ports_are_published(docker: Docker, stack: dict[str, str]) -> None:
    published: dict[str, list[str]] = {}
    for service, container in stack.items():
        ports = docker.inspect("container", container)["NetworkSettings"]["Ports"] or {}
        published[service] = [
            f"{b['HostIp']}:{b['HostPort']}->{port}" for port, bs in ports.items() for b in bs or []
        ]
    assert {s for s, p in published.items() if p} == {"app", "gateway"}, published
    assert all(p.startswith(f"{LOOPBACK}:") for ps in published.values() for p in ps), published


def test_containers_share_only_the_projects_network(
    docker: Docker, stack: dict[str, str], compose_project: ComposeProject
) -> None:
    for service, container in stack.items():
        networks = docker.inspect("container", container)["NetworkSettings"]["Networks"]
        assert list(networks) == [f"{compose_project.name}_default"], (service, list(networks))


def test_every_container_is_healthy_by_its_compose_healthcheck(
    docker: Docker, stack: dict[str, str], report: Report
) -> None:
    for service, container in stack.items():
        state = docker.inspect("container", container)
        assert state["State"]["Health"]["Status"] == "healthy", service
        assert state["Config"]["Healthcheck"]["Test"][0] == "CMD", service
        passed = [r for r in state["State"]["Health"]["Log"] if r["ExitCode"] == 0]
        assert passed, f"{service}: no passing healthcheck run"


def test_processes_run_as_the_non_root_user(docker: Docker, stack: dict[str, str]) -> None:
    for service, container in stack.items():
        rows = docker("top", container, "-o", "uid,pid,args").stdout.splitlines()[1:]
        assert rows, service
        uids = {row.split()[0] for row in rows}
        assert uids == {"10001"}, f"{service}: {rows}"


def test_root_filesystems_are_read_only_with_a_writable_tmp(
    docker: Docker, stack: dict[str, str]
) -> None:
    for service, container in stack.items():
        host_config = docker.inspect("container", container)["HostConfig"]
        assert host_config["ReadonlyRootfs"] is True, service
        assert host_config["CapDrop"] == ["ALL"], service
        denied = docker("exec", container, "touch", "/probe", check=False)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr, service
        docker("exec", container, "touch", "/tmp/probe")


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_each_model_version_serves_predict_readyz_and_metrics(gateway: str, version: str) -> None:
    cookies = {"Cookie": f"{COOKIE}={version}"}
    with httpx.Client(base_url=gateway, headers={**SERVICE_HOST, **cookies}, timeout=10) as http:
        assert http.get("/readyz").json() == {"status": "ready"}
        info = http.get("/version").json()
        assert (info["modelVersion"], info["serviceVersion"]) == (version, PROJECT_VERSION)
        reply = http.post(
            "/predict",
            json={"review": "Lovely pasta and very kind staff.", "restaurantName": "Gourmet Haven"},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["modelVersion"] == version
        assert reply.json()["prediction"] in (0, 1)
        metrics = http.get("/metrics").text
    counted = [
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "predictions_total"
        and sample.labels == {"model_version": version, "restaurant": "Gourmet Haven"}
    ]
    assert counted and counted[0] >= 1, metrics[:2000]


def test_the_frontend_renders_a_verdict_end_to_end(gateway: str) -> None:
    """Browser -> gateway -> frontend -> gateway mesh listener -> model-service, and back."""
    with httpx.Client(base_url=gateway, headers=APP_HOST, timeout=10) as http:
        page = http.get("/restaurants/gourmet-haven")
        assert page.status_code == 200 and "<form" in page.text
        answer = http.post(
            "/restaurants/gourmet-haven/reviews",
            data={"review": "Fantastic food, friendly staff, we will be back!"},
            headers={"HX-Request": "true"},
        )
        assert answer.status_code == 200, answer.text
        assert "verdict verdict--good" in answer.text
        version = version_cookie(answer)
        assert version in VERSIONS, "the gateway's cookie reaches the browser through the frontend"
        assert f"Read by model version <strong>{version}</strong>" in answer.text
        # Feedback reaches the instance that signed the prediction id: the cookie pins it.
        form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', answer.text))
        feedback = http.post(
            "/restaurants/gourmet-haven/feedback",
            data={**form, "accurate": "true"},
            headers={"HX-Request": "true", "Cookie": f"{COOKIE}={version}"},
        )
        assert feedback.status_code == 200, feedback.text
        assert "Thank you for your feedback!" in feedback.text
        assert 'role="alert"' not in feedback.text


def test_the_frontend_reads_the_mounted_values(frontend: str) -> None:
    """The catalogue and the weights come from the chart's values.yaml that compose mounts; the
    experiment's counts come from Prometheus, which is not started here, and the page says so."""
    for restaurant in VALUES["restaurants"]:
        slug = slugify(restaurant["name"])
        page = httpx.get(f"{frontend}/restaurants/{slug}", timeout=10)
        assert page.status_code == 200 and restaurant["name"] in html.unescape(page.text), slug
    weights = {
        sample.labels["model_version"]: sample.value
        for family in text_string_to_metric_families(httpx.get(f"{frontend}/metrics").text)
        for sample in family.samples
        if sample.name == "model_version_configured_weight"
    }
    assert weights == VERSIONS
    answer = httpx.get(f"{frontend}/experiment.json", timeout=10)
    assert answer.status_code == 503
    assert "metrics cannot be read" in answer.json()["detail"], answer.text
    assert "prometheus" in answer.json()["detail"].lower(), answer.text


def test_the_experiment_page_counts_both_versions_without_prometheus(
    docker: Docker,
    frontend_image: str,
    compose_project: ComposeProject,
    gateway: str,
) -> None:
    """The frontend image with the other metrics source, each version's /metrics, on the
    project's network: the page has the values' thresholds and weights and the counts."""
    with httpx.Client(base_url=gateway, headers=SERVICE_HOST, timeout=10) as http:
        for version in VERSIONS:
            http.post(
                "/predict",
                json={"review": "Fine.", "restaurantName": "Gourmet Haven"},
                headers={"Cookie": f"{COOKIE}={version}"},
            ).raise_for_status()
    urls = json.dumps([f"http://model-service-{v}:8080/metrics" for v in VERSIONS])
    options = ["--read-only", "--tmpfs", "/tmp", "--publish", f"{LOOPBACK}::8083",
               "--env", f"FRONTEND_EXPERIMENT_METRICS_URLS={urls}"]  # fmt: skip
    network = f"{compose_project.name}_default"
    with running(docker, frontend_image, *options, network=network) as container:
        base = f"http://{LOOPBACK}:{published_port(docker, container, 8083)}"
        wait_ready(f"{base}/healthz", time.monotonic())
        answer = httpx.get(f"{base}/experiment.json", timeout=10)
        page = httpx.get(f"{base}/experiment", timeout=10)
    assert answer.status_code == 200, answer.text
    analysis = answer.json()
    thresholds = VALUES["experiment"]
    assert analysis["thresholds"]["min_feedback_per_version"] == thresholds["minFeedbackPerVersion"]
    assert analysis["thresholds"]["confidence_level"] == thresholds["confidenceLevel"]
    assert {v["name"]: v["configured_weight"] for v in analysis["versions"]} == VERSIONS
    assert all(v["predictions"] >= 1 for v in analysis["versions"]), analysis["versions"]
    assert page.status_code == 200 and "cannot be shown" not in page.text


def test_the_frontend_reports_the_project_version(frontend: str) -> None:
    assert httpx.get(f"{frontend}/version", timeout=5).json() == {"serviceVersion": PROJECT_VERSION}


def test_the_gateway_splits_new_clients_by_weight_and_sets_the_cookie(gateway: str) -> None:
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=gateway, headers=SERVICE_HOST, timeout=10) as http:
        for _ in range(300):
            answer = http.get("/version")
            http.cookies.clear()
            served = answer.json()["modelVersion"]
            assert version_cookie(answer) == served, "the cookie names the version that answered"
            seen[served] += 1
    share = {v: seen[v] / 300 for v in VERSIONS}
    for version, weight in VERSIONS.items():
        # Four standard deviations of a binomial share over 300 requests.
        assert abs(share[version] - weight / 100) < 0.1, share


def test_the_cookie_keeps_a_client_on_its_version(gateway: str) -> None:
    with httpx.Client(base_url=gateway, headers=SERVICE_HOST, timeout=10) as http:
        for version in VERSIONS:
            served = {
                http.get("/version", headers={"Cookie": f"{COOKIE}={version}"}).json()[
                    "modelVersion"
                ]
                for _ in range(30)
            }
            assert served == {version}
        # An anchored match: a similar value is not a version.
        lookalike = Counter(
            http.get("/version", headers={"Cookie": f"{COOKIE}=canary-old"}).json()["modelVersion"]
            for _ in range(60)
        )
        assert set(lookalike) == set(VERSIONS), lookalike


def test_the_homepage_rate_limit_is_per_client(
    docker: Docker, stack: dict[str, str], gateway: str
) -> None:
    limit = 20
    statuses: list[int] = []
    with httpx.Client(base_url=gateway, headers=APP_HOST, timeout=10) as http:
        while len(statuses) < limit + 5:
            answer = http.get("/")
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                break
        assert answer.status_code == 429, statuses
        # A token may come back while the burst runs (one every 3 s).
        assert limit <= statuses.count(200) <= limit + 1, statuses
        assert answer.headers["x-ratelimit-limit"].startswith(str(limit))
        assert "text/html" in answer.headers["content-type"]
        assert http.get("/restaurants/gourmet-haven").status_code == 200, "other paths are free"
    # Another client on the project's network keeps its own bucket.
    other = stack["model-service-stable"]
    assert in_container(docker, other, "http://gateway:8080/", "app.localhost") == 200


def test_docker_stop_ends_every_container_cleanly_within_the_grace_period(
    docker: Docker, stack: dict[str, str], report: Report
) -> None:
    grace = 10
    stopped: dict[str, Any] = {}
    # Clients first, as compose stops them: the frontend, the gateway, then the model-services.
    for service in ("app", "gateway", "model-service-stable", "model-service-canary"):
        started = time.monotonic()
        docker("stop", "--time", str(grace), stack[service], timeout=grace + 30)
        seconds = time.monotonic() - started
        state = docker.inspect("container", stack[service])["State"]
        stopped[service] = {"seconds": round(seconds, 2), "exit code": state["ExitCode"]}
    report.add("docker stop", "per service", stopped)
    for service, result in stopped.items():
        assert result["seconds"] < grace, f"{service} was killed after the grace period: {result}"
        assert result["exit code"] == 0, f"{service}: {json.dumps(result)}"
