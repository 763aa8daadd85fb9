"""Policy scan: checkov over the rendered chart (defaults and every ci/ values file) and over the
Dockerfiles. No check may fail; a check that does not apply is skipped in the chart itself, by a
`checkov.io/skipN: CHECK=reason` annotation on the object, and every skip carries its reason."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helm import engine
from tests.helm.conftest import CI_VALUES, NAMESPACE, RELEASE, ci_values
from tests.support import ROOT, require_binary

pytestmark = pytest.mark.slow  # checkov runs as its own process, ~20 s a scan

VALUE_SETS: dict[str, dict[str, Any]] = {"defaults": {}} | {
    path.stem: ci_values(path) for path in CI_VALUES
}
# Not a values file of the chart: proves the scan fails when a workload's policy is weak.
WEAK = {"image": {"pullPolicy": "IfNotPresent"}}
# The chart's skips, each with its reason on the object (templates/*.yaml).
ALLOWED_SKIPS = {
    "CKV_K8S_43",  # images by tag unless a digest is set (then the check runs and passes)
    "CKV_K8S_35",  # the model-service reads its key from an environment variable only
    "CKV_K8S_8",  # the run-once helm test pod has no liveness to probe
    "CKV_K8S_9",  # ... nor readiness
}
# The services' images and the gateway image of deploy/docker/.
DOCKERFILES = sorted([*ROOT.glob("services/*/Dockerfile"), *ROOT.glob("deploy/docker/*Dockerfile")])
# checkov does not expand build arguments: `FROM ${PYTHON_IMAGE}` looks like an untagged (latest)
# base. test_dockerfile_bases_are_pinned_where_checkov_cannot_see proves each default is pinned.
DOCKERFILE_FALSE_POSITIVES = {"CKV_DOCKER_7"}


def checkov(*args: str) -> dict[str, Any]:
    venv = ROOT / ".venv" / "bin" / "checkov"
    binary = str(venv) if venv.exists() else require_binary("checkov", "pip install checkov")
    result = subprocess.run(
        [binary, *args, "--compact", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Exit 1 means failed checks: they are asserted on below, with their names.
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert isinstance(report, dict), report  # one framework per scan
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    return report


def by_values_set(report: dict[str, Any], root: Path, status: str) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for check in report["results"].get(status, []):
        values_set = Path(check["file_abs_path"]).relative_to(root).parts[0]
        grouped.setdefault(values_set, []).append(check)
    return grouped


@pytest.fixture(scope="module")
def chart_scan(chart: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One checkov run over every rendering, each in its own folder."""
    root = tmp_path_factory.mktemp("rendered")
    for name, values in {**VALUE_SETS, "weak": WEAK}.items():
        folder = root / name
        folder.mkdir()
        # A cluster with Istio and the Operator, so every object the chart can render is scanned.
        rendered = engine.render(chart, values, name=RELEASE, namespace=NAMESPACE)
        for template, text in rendered.items():
            if template.endswith(".yaml") and text.strip():
                (folder / template.replace("/", "_")).write_text(text)
    report = checkov("--directory", str(root), "--framework", "kubernetes")
    return {
        status: by_values_set(report, root, status)
        for status in ("failed_checks", "skipped_checks", "passed_checks")
    }


@pytest.mark.parametrize("values_set", list(VALUE_SETS))
def test_the_rendered_chart_passes_the_policy_scan(
    chart_scan: dict[str, Any], values_set: str
) -> None:
    failed = chart_scan["failed_checks"].get(values_set, [])
    assert [(c["check_id"], c["check_name"], c["resource"]) for c in failed] == []
    passed = chart_scan["passed_checks"][values_set]
    assert {c["resource"].split(".")[0] for c in passed} >= {"Deployment", "Service", "Pod"}


@pytest.mark.parametrize("values_set", list(VALUE_SETS))
def test_every_skip_is_a_known_one_with_its_reason(
    chart_scan: dict[str, Any], values_set: str
) -> None:
    for check in chart_scan["skipped_checks"].get(values_set, []):
        assert check["check_id"] in ALLOWED_SKIPS, check["check_id"]
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, (check["check_id"], check["resource"], reason)


def test_a_digest_lifts_the_digest_skip(chart_scan: dict[str, Any]) -> None:
    """ci/scheduling-values.yaml pins every image by digest: the check runs and passes."""
    skipped = {c["check_id"] for c in chart_scan["skipped_checks"]["scheduling-values"]}
    assert "CKV_K8S_43" not in skipped
    passed = {
        (c["check_id"], c["resource"]) for c in chart_scan["passed_checks"]["scheduling-values"]
    }
    assert (
        "CKV_K8S_43",
        f"Deployment.{NAMESPACE}.{RELEASE}-restaurant-sentiment-frontend",
    ) in passed
    assert ("CKV_K8S_43", f"Pod.{NAMESPACE}.{RELEASE}-restaurant-sentiment-test-predict") in passed
    assert ("CKV_K8S_43", f"Deployment.{NAMESPACE}.{RELEASE}-restaurant-sentiment-redis") in passed


def test_the_scan_fails_a_weak_rendering(chart_scan: dict[str, Any]) -> None:
    """A tag pulled IfNotPresent may run an old image under a moved tag: checkov says so."""
    failed = {(c["check_id"], c["resource"]) for c in chart_scan["failed_checks"]["weak"]}
    deployments = ("frontend", "model-service-stable", "model-service-canary", "redis")
    assert failed == {
        ("CKV_K8S_15", f"Deployment.{NAMESPACE}.{RELEASE}-restaurant-sentiment-{name}")
        for name in deployments
    } | {("CKV_K8S_15", f"Pod.{NAMESPACE}.{RELEASE}-restaurant-sentiment-test-predict")}


# --- Dockerfiles -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile_scan() -> dict[str, Any]:
    assert len(DOCKERFILES) == 3, DOCKERFILES
    args = [arg for path in DOCKERFILES for arg in ("--file", str(path))]
    return checkov(*args, "--framework", "dockerfile")


def test_dockerfiles_pass_the_policy_scan(dockerfile_scan: dict[str, Any]) -> None:
    failed = [
        (c["check_id"], c["check_name"], c["file_path"])
        for c in dockerfile_scan["results"].get("failed_checks", [])
        if c["check_id"] not in DOCKERFILE_FALSE_POSITIVES
    ]
    assert failed == []
    assert dockerfile_scan["summary"]["passed"] > 0


def test_dockerfile_bases_are_pinned_where_checkov_cannot_see(
    dockerfile_scan: dict[str, Any],
) -> None:
    """CKV_DOCKER_7 is let through only for a FROM whose build argument defaults to a pinned tag."""
    flagged = {
        Path(c["file_abs_path"]).resolve()
        for c in dockerfile_scan["results"].get("failed_checks", [])
        if c["check_id"] in DOCKERFILE_FALSE_POSITIVES
    }
    for path in flagged:
        text = path.read_text()
        defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
        for base in re.findall(r"^FROM (\S+)", text, re.MULTILINE):
            variable = re.fullmatch(r"\$\{?(\w+)\}?", base)
            image = defaults[variable[1]] if variable else base
            if not variable and not re.search(r"[:@]", image):
                continue  # an earlier stage's name, e.g. FROM build AS train
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest", (path, base, image)
