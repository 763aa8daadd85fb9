"""deploy/k8s scripts: the printed DRY_RUN plan, prerequisite messages and their config files."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helm.conftest import CHART, default_values
from tests.support import ROOT

pytestmark = pytest.mark.slow  # every test runs bash (and make)

K8S = ROOT / "deploy" / "k8s"
TOOLS = ("minikube", "kubectl", "helm", "istioctl")


@pytest.fixture
def fake_tools(tmp_path: Path) -> Path:
    """Stand-ins for the cluster CLIs that fail loudly if DRY_RUN ever runs one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(f'#!/bin/sh\necho "{tool} ran during DRY_RUN" >&2\nexit 99\n')
        path.chmod(0o755)
    return bin_dir


def run_script(name: str, path_dirs: list[Path], **env: str) -> subprocess.CompletedProcess[str]:
    # /usr/bin is searched last, after the stand-ins, for bash, sed, grep and sort. This machine
    # may have a real kubectl there: tests of a missing tool use run_on_path with a bare PATH.
    return run_on_path(name, os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]), **env)


def run_on_path(name: str, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash", path=path) or "bash", str(K8S / name)],
        env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def commands(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


def test_deploy_dry_run_prints_the_whole_plan_and_runs_nothing(fake_tools: Path) -> None:
    result = run_script("deploy.sh", [fake_tools], DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    assert "ran during DRY_RUN" not in result.stderr
    plan = commands(result.stdout)
    expected_order = [
        "minikube start -p restaurant-sentiment --memory=16384 --cpus=4",
        "minikube addons enable ingress",
        "minikube image build -p restaurant-sentiment -t "
        "ghcr.io/restaurant-sentiment/restaurant-sentiment-frontend:0.1.0",
        "minikube image build -p restaurant-sentiment -t "
        "ghcr.io/restaurant-sentiment/restaurant-sentiment-model-service:0.1.0",
        f"istioctl install -y -f {K8S}/istio.yaml",
        "kubectl label namespace restaurant istio-injection=enabled --overwrite",
        "helm upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack",
        "samples/addons/jaeger.yaml",
        "helm upgrade --install kiali-server kiali/kiali-server",
        f"helm upgrade --install restaurant-sentiment {CHART}",
        "kubectl rollout status deployment -n restaurant",
        "helm test restaurant-sentiment",
    ]
    positions = []
    for wanted in expected_order:
        found = [i for i, line in enumerate(plan) if wanted in line]
        assert found, f"{wanted!r} missing from:\n" + "\n".join(plan)
        positions.append(found[0])
    assert positions == sorted(positions), "steps out of order"
    # Converging commands only, so a second run changes nothing.
    assert not [c for c in plan if c.startswith(("helm install ", "kubectl create -f"))]
    endpoints = ["http://app.localhost/", "http://service.localhost/apidocs", "minikube tunnel"]
    dashboards = ["istioctl dashboard kiali", "istioctl dashboard jaeger", "Restaurant Metrics"]
    dashboards += ["kube-prometheus-stack-grafana", "kube-prometheus-stack-alertmanager"]
    for text in endpoints + dashboards:
        assert text in result.stdout


def test_deploy_takes_memory_and_cpus(fake_tools: Path) -> None:
    result = run_script("deploy.sh", [fake_tools], DRY_RUN="1", MEMORY="8192", CPUS="2")
    assert result.returncode == 0, result.stderr
    assert "minikube start -p restaurant-sentiment --memory=8192 --cpus=2" in commands(
        result.stdout
    )


@pytest.mark.parametrize(("name", "value"), [("MEMORY", "16G"), ("CPUS", "four")])
def test_deploy_rejects_bad_sizes(fake_tools: Path, name: str, value: str) -> None:
    result = run_script("deploy.sh", [fake_tools], DRY_RUN="1", **{name: value})
    assert result.returncode != 0
    assert f"{name} must be" in result.stderr and value in result.stderr
    assert commands(result.stdout) == []


def test_deploy_rejects_an_istio_too_old_for_the_rate_limit(fake_tools: Path) -> None:
    result = run_script("deploy.sh", [fake_tools], DRY_RUN="1", ISTIO_VERSION="1.24.3")
    assert result.returncode != 0
    assert "needs Istio 1.26 or newer" in result.stderr


@pytest.mark.parametrize(
    ("script", "env", "missing"),
    [
        ("deploy.sh", {}, ["minikube", "istioctl"]),
        ("undeploy.sh", {}, ["kubectl"]),
        ("undeploy.sh", {"ALL": "1"}, ["minikube"]),
        ("images.sh", {}, ["minikube"]),
    ],
)
def test_a_real_run_names_the_missing_tools(
    fake_tools: Path, bare_path: str, script: str, env: dict[str, str], missing: list[str]
) -> None:
    for tool in missing:
        (fake_tools / tool).unlink()
    result = run_on_path(script, os.pathsep.join([str(fake_tools), bare_path]), **env)
    assert result.returncode == 1
    hints = {
        "minikube": "minikube is not installed: see https://minikube.sigs.k8s.io/docs/start/",
        "istioctl": "istioctl (Istio 1.26 or newer) is not installed",
        "kubectl": "kubectl is not installed: see https://kubernetes.io/docs/tasks/tools/",
    }
    for tool in missing:
        assert f"error: {hints[tool]}" in result.stderr
    assert "Traceback" not in result.stderr and commands(result.stdout) == []
    assert "ran during DRY_RUN" not in result.stderr


def test_undeploy_dry_run(fake_tools: Path) -> None:
    result = run_script("undeploy.sh", [fake_tools], DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    assert commands(result.stdout) == [
        "helm uninstall restaurant-sentiment -n restaurant --wait",
        "kubectl delete namespace restaurant --ignore-not-found --wait=true",
    ]
    everything = run_script("undeploy.sh", [fake_tools], DRY_RUN="1", ALL="1")
    assert commands(everything.stdout) == ["minikube delete -p restaurant-sentiment"]


def test_images_dry_run_builds_both_images_into_minikube(fake_tools: Path, tmp_path: Path) -> None:
    dockerfiles = {}
    for service in ("frontend", "model-service"):
        dockerfiles[service] = tmp_path / f"{service}.Dockerfile"
        dockerfiles[service].write_text("FROM scratch\n")
    result = run_script(
        "images.sh",
        [fake_tools],
        DRY_RUN="1",
        FRONTEND_DOCKERFILE=str(dockerfiles["frontend"]),
        MODEL_SERVICE_DOCKERFILE=str(dockerfiles["model-service"]),
    )
    assert result.returncode == 0, result.stderr
    prefix = default_values()["image"]["repositoryPrefix"]
    assert commands(result.stdout) == [
        f"minikube image build -p restaurant-sentiment -t {prefix}-{service}:0.1.0 "
        f"-f {dockerfiles[service]} ."
        for service in ("frontend", "model-service")
    ]


def test_images_names_a_missing_dockerfile(fake_tools: Path) -> None:
    result = run_script(
        "images.sh", [fake_tools], DRY_RUN="1", FRONTEND_DOCKERFILE="nope/Dockerfile"
    )
    assert result.returncode == 1
    assert "nope/Dockerfile not found" in result.stderr


def test_versions_agree_across_pyproject_chart_and_values() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = next(
        line.split('"')[1] for line in pyproject.splitlines() if line.startswith("version = ")
    )
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    assert {v["image"] for v in default_values()["modelService"]["versions"]} == {version}


def test_cluster_config_files_match_the_chart() -> None:
    istio = yaml.safe_load((K8S / "istio.yaml").read_text())
    assert istio["kind"] == "IstioOperator"
    defaults = istio["spec"]["meshConfig"]["defaultConfig"]
    assert defaults["gatewayTopology"]["numTrustedProxies"] == 0
    assert any(
        "http_local_rate_limit" in r for r in defaults["proxyStatsMatcher"]["inclusionRegexps"]
    )
    (gateway,) = istio["spec"]["components"]["ingressGateways"]
    assert gateway["k8s"]["service"]["externalTrafficPolicy"] == "Local"
    stack = yaml.safe_load((K8S / "kube-prometheus-stack-values.yaml").read_text())
    sidecar = stack["grafana"]["sidecar"]["dashboards"]
    # The keys the chart's dashboard ConfigMap carries.
    assert (sidecar["label"], sidecar["labelValue"]) == ("grafana_dashboard", "1")
    assert sidecar["folderAnnotation"] == "grafana_folder"
    assert sidecar["provider"]["foldersFromFilesStructure"] is True
    assert "adminPassword" not in stack["grafana"]
    telemetry = yaml.safe_load((K8S / "telemetry.yaml").read_text())
    providers = [p["name"] for p in istio["spec"]["meshConfig"]["extensionProviders"]]
    assert telemetry["spec"]["tracing"][0]["providers"] == [{"name": providers[0]}]


def test_prometheus_gets_a_mesh_certificate_where_the_servicemonitor_reads_it() -> None:
    spec = yaml.safe_load((K8S / "kube-prometheus-stack-values.yaml").read_text())["prometheus"][
        "prometheusSpec"
    ]
    chart = yaml.safe_load((CHART / "values.yaml").read_text())
    assert spec["podMetadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    annotations = spec["podMetadata"]["annotations"]
    # The sidecar only hands out the certificate: it intercepts no traffic of Prometheus.
    assert annotations["traffic.sidecar.istio.io/includeInboundPorts"] == ""
    assert annotations["traffic.sidecar.istio.io/includeOutboundIPRanges"] == ""
    output = yaml.safe_load(annotations["proxy.istio.io/config"])["proxyMetadata"]["OUTPUT_CERTS"]
    (user_mount,) = json.loads(annotations["sidecar.istio.io/userVolumeMount"])
    assert user_mount["mountPath"] == output
    (mount,) = [m for m in spec["volumeMounts"] if m["name"] == user_mount["name"]]
    assert mount["mountPath"].rstrip("/") == chart["monitoring"]["istioCertsDir"].rstrip("/")
    assert any(v["name"] == user_mount["name"] for v in spec["volumes"])


# --- Through make, on a machine without the cluster tools ----------------------------------------

CLUSTER_TOOLS = ("minikube", "kubectl", "helm", "istioctl")
# What make and the scripts need besides bash builtins.
SHELL_TOOLS = ("make", "bash", "env", "sed", "grep", "sort", "head", "cat", "tr", "dirname")


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    """A PATH holding make and the shell tools only: no minikube, kubectl, helm or istioctl."""
    bin_dir = tmp_path / "bare-bin"
    bin_dir.mkdir()
    for tool in SHELL_TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run make deploy-k8s"
        (bin_dir / tool).symlink_to(found)
    path = str(bin_dir)
    assert not [tool for tool in CLUSTER_TOOLS if shutil.which(tool, path=path)]
    return path


def make(target: str, path: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """`make TARGET NAME=VALUE...` as a person types it, in the repository root."""
    return subprocess.run(
        ["make", "--no-print-directory", target, *(f"{k}={v}" for k, v in variables.items())],
        cwd=ROOT,
        env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def step(plan: list[str], *words: str) -> int:
    """The position of the first planned command holding every word, or a failure naming it."""
    for index, line in enumerate(plan):
        argv = shlex.split(line)
        if all(word in argv or word in line for word in words):
            return index
    raise AssertionError(f"no step with {words} in the plan:\n" + "\n".join(plan))


def test_make_deploy_dry_run_prints_the_whole_plan_without_cluster_tools(bare_path: str) -> None:
    result = make("deploy-k8s", bare_path, DRY_RUN="1", MEMORY="8192", CPUS="2")
    assert result.returncode == 0, result.stderr
    for tool in CLUSTER_TOOLS:
        assert f"note: {tool}" in result.stderr or f"note: {tool} (" in result.stderr
    plan = commands(result.stdout)
    positions = [
        step(plan, "minikube", "start", "--memory=8192", "--cpus=2"),
        # Both images, built into the cluster from this working tree.
        step(plan, "minikube", "image", "build", "-f", "services/frontend/Dockerfile"),
        step(plan, "minikube", "image", "build", "model-service:0.1.0"),
        step(plan, "istioctl", "install"),
        step(plan, "kubectl", "label", "namespace", "restaurant", "istio-injection=enabled"),
        step(plan, "helm", "upgrade", "--install", "kube-prometheus-stack"),
        step(plan, "kubectl", "apply", "samples/addons/jaeger.yaml"),
        step(plan, "helm", "upgrade", "--install", "kiali-server"),
        step(plan, "helm", "upgrade", "--install", "restaurant-sentiment", str(CHART)),
        step(plan, "kubectl", "rollout", "status"),
        step(plan, "kubectl", "wait", "--for=condition=Ready"),
        step(plan, "helm", "test", "restaurant-sentiment"),
    ]
    assert positions == sorted(positions), "steps out of order:\n" + "\n".join(plan)
    install = shlex.split(plan[step(plan, "helm", "upgrade", "--install", "restaurant-sentiment")])
    # The images built into minikube are in no registry: the chart must not try to pull them.
    assert "image.pullPolicy=IfNotPresent" in install
    assert "--wait" in install


def test_make_deploy_dry_run_with_registry_images_builds_nothing(bare_path: str) -> None:
    result = make("deploy-k8s", bare_path, DRY_RUN="1", IMAGES="registry")
    assert result.returncode == 0, result.stderr
    plan = commands(result.stdout)
    assert not [c for c in plan if "minikube image" in c]
    install = plan[step(plan, "helm", "upgrade", "--install", "restaurant-sentiment")]
    assert "pullPolicy" not in install


def test_make_deploy_dry_run_can_load_host_images(bare_path: str) -> None:
    result = make("deploy-k8s", bare_path, DRY_RUN="1", IMAGES="load")
    assert result.returncode == 0, result.stderr
    loads = [c for c in commands(result.stdout) if c.startswith("minikube image load")]
    prefix = default_values()["image"]["repositoryPrefix"]
    assert loads == [
        f"minikube image load -p restaurant-sentiment {prefix}-{name}:0.1.0"
        for name in ("frontend", "model-service")
    ]


def test_make_deploy_rejects_an_unknown_image_source(bare_path: str) -> None:
    result = make("deploy-k8s", bare_path, DRY_RUN="1", IMAGES="docker-hub")
    assert result.returncode != 0
    assert "IMAGES must be build, load or registry, got 'docker-hub'" in result.stderr
    assert commands(result.stdout) == []


def test_make_undeploy_dry_run_removes_only_what_deploy_created(bare_path: str) -> None:
    deployed = commands(make("deploy-k8s", bare_path, DRY_RUN="1").stdout)
    result = make("undeploy-k8s", bare_path, DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    removal = commands(result.stdout)
    assert removal == [
        "helm uninstall restaurant-sentiment -n restaurant --wait",
        "kubectl delete namespace restaurant --ignore-not-found --wait=true",
    ]
    # Each removal undoes a step of the deploy plan: the release it installed, the namespace it
    # created. Istio, monitoring, Kiali and Jaeger stay.
    step(deployed, "helm", "upgrade", "--install", "restaurant-sentiment", "-n", "restaurant")
    step(deployed, "kubectl", "create", "namespace", "restaurant")
    everything = make("undeploy-k8s", bare_path, DRY_RUN="1", ALL="1")
    assert everything.returncode == 0, everything.stderr
    assert commands(everything.stdout) == ["minikube delete -p restaurant-sentiment"]
    step(deployed, "minikube", "start", "-p", "restaurant-sentiment")
