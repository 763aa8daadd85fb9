"""Fixtures of the chart tests: the real Helm engine renders the chart offline."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.helm import engine
from tests.support import ROOT, in_ci

CHART = ROOT / "deploy" / "helm" / "restaurant-sentiment"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "rel"
NAMESPACE = "shop"
KUBE_VERSION = "v1.30.0"

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


def _helm() -> ModuleType:
    try:
        return importlib.import_module("helm_python")
    except ImportError as exc:
        message = f"helm-python-sdk is not importable on this platform ({exc})"
        if in_ci():
            pytest.fail(f"{message}; CI must install it")
        pytest.skip(message)


@pytest.fixture(scope="session")
def helm() -> ModuleType:
    """The helm_python module, or a skip (a failure under CI) where it has no wheel."""
    return _helm()


@pytest.fixture(scope="session")
def chart(helm: ModuleType) -> Iterator[Any]:
    """The chart, loaded once by the Helm engine."""
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def manifests_of(rendered: dict[str, str]) -> list[Manifest]:
    """Every YAML document of a render, NOTES.txt aside, each tagged with its template."""
    out: list[Manifest] = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__template__"] = template
                out.append(doc)
    return out


@pytest.fixture(scope="session")
def render(chart: Any) -> Render:
    """Render the chart with value overrides into parsed manifests, for a cluster serving the
    given API versions (by default Istio's and the Prometheus Operator's, as `make deploy-k8s`
    sets up; `()` is a plain cluster)."""

    def _render(
        values: dict[str, Any] | None = None,
        api_versions: tuple[str, ...] = engine.MESH_CLUSTER,
    ) -> list[Manifest]:
        values = values or {}
        chart.validate_schema(chart.merge_values(values))
        return manifests_of(
            engine.render(
                chart, values, name=RELEASE, namespace=NAMESPACE, api_versions=api_versions
            )
        )

    return _render


@pytest.fixture(scope="session")
def notes(chart: Any) -> Callable[..., str]:
    """The rendered NOTES.txt for value overrides and the API versions the cluster serves."""

    def _notes(
        values: dict[str, Any] | None = None,
        api_versions: tuple[str, ...] = engine.MESH_CLUSTER,
    ) -> str:
        rendered = engine.render(
            chart, values or {}, name=RELEASE, namespace=NAMESPACE, api_versions=api_versions
        )
        return rendered["restaurant-sentiment/templates/NOTES.txt"]

    return _notes


@pytest.fixture(scope="session")
def default_manifests(render: Render) -> list[Manifest]:
    """The chart rendered with its default values."""
    return render()


def only(manifests: list[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    """The one manifest of a kind (whose name ends with name_suffix)."""
    found = [
        m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(found) == 1, (
        f"expected one {kind} *{name_suffix}, got {[m['metadata'] for m in found]}"
    )
    return found[0]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    """Every manifest of a kind."""
    return [m for m in manifests if m["kind"] == kind]


def app_workloads(manifests: list[Manifest]) -> list[Manifest]:
    """The Deployments of the app: the frontend and each model version (not the feedback
    store's Redis, which tests/helm/test_feedback_store.py checks)."""
    return [
        m
        for m in of_kind(manifests, "Deployment")
        if m["metadata"]["labels"].get("app.kubernetes.io/component") != "feedback-store"
    ]


def default_values() -> dict[str, Any]:
    """The chart's values.yaml as a plain dict."""
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def ci_values(path: Path) -> dict[str, Any]:
    """One ci/*-values.yaml file as a dict."""
    values: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return values
