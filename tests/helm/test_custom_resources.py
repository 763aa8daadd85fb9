"""The chart's Istio and Prometheus Operator objects against their CRDs' published schemas.

kubernetes-validate knows only built-in kinds. These objects go through the schemas of the npm
packages @kubernetes-models/istio and @kubernetes-models/prometheus-operator (pinned in
tests/helm/npm/package-lock.json), driven by tests/helm/npm/validate.mjs, which also rejects
fields a CRD does not declare, as the API server's strict field validation does.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helm.conftest import CI_VALUES, Manifest, Render, ci_values, only
from tests.support import in_ci, require_binary

pytestmark = pytest.mark.slow  # each validation starts node

NPM = Path(__file__).resolve().parent / "npm"
PACKAGES = ("istio", "prometheus-operator")
VALUE_SETS: dict[str, dict[str, Any]] = {"defaults": {}} | {
    path.name: ci_values(path) for path in CI_VALUES
}
GROUPS = ("networking.istio.io", "security.istio.io", "monitoring.coreos.com")
# What the default rendering on a cluster with Istio and the Prometheus Operator holds.
DEFAULT_KINDS = {
    "Gateway": 1,
    "VirtualService": 2,
    "DestinationRule": 2,
    "EnvoyFilter": 1,
    "PeerAuthentication": 1,
    "AuthorizationPolicy": 4,
    "ServiceMonitor": 1,
    "PodMonitor": 1,
    "PrometheusRule": 1,
}


def custom_resources(manifests: list[Manifest]) -> list[Manifest]:
    """The objects of the Istio and Prometheus Operator API groups, without test bookkeeping."""
    return [
        {k: v for k, v in m.items() if k != "__template__"}
        for m in manifests
        if m["apiVersion"].split("/")[0] in GROUPS
    ]


def validate(objects: list[Manifest]) -> list[dict[str, Any]]:
    """Run validate.mjs on the objects: one {apiVersion, kind, name, errors} per object."""
    node = require_binary("node", "install Node.js 20 or newer")
    if not all((NPM / "node_modules" / "@kubernetes-models" / p).is_dir() for p in PACKAGES):
        message = "the schema packages are not installed (npm ci --prefix tests/helm/npm)"
        if in_ci():
            pytest.fail(f"{message}; CI must install them")
        pytest.skip(message)
    result = subprocess.run(
        [node, str(NPM / "validate.mjs")],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        cwd=NPM,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    results: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(results) == len(objects)
    return results


@pytest.fixture(scope="module")
def rendered(render: Render) -> dict[str, list[Manifest]]:
    """Every values set rendered for a cluster that serves the Istio and Operator APIs."""
    return {name: render(values) for name, values in VALUE_SETS.items()}


@pytest.fixture(scope="module")
def verdicts(rendered: dict[str, list[Manifest]]) -> dict[str, list[dict[str, Any]]]:
    """The schema verdicts of every values set's custom resources, from one node process."""
    batches = {name: custom_resources(manifests) for name, manifests in rendered.items()}
    flat = validate([obj for objects in batches.values() for obj in objects])
    out: dict[str, list[dict[str, Any]]] = {}
    for name, objects in batches.items():
        out[name], flat = flat[: len(objects)], flat[len(objects) :]
    return out


@pytest.mark.parametrize("values_set", list(VALUE_SETS))
def test_every_custom_resource_passes_its_schema(
    verdicts: dict[str, list[dict[str, Any]]], values_set: str
) -> None:
    results = verdicts[values_set]
    assert results, "no custom resource rendered"
    failures = {f"{r['kind']}/{r['name']}": r["errors"] for r in results if r["errors"]}
    assert failures == {}


def test_the_default_rendering_checks_all_its_custom_resources(
    verdicts: dict[str, list[dict[str, Any]]],
) -> None:
    kinds: dict[str, int] = {}
    for result in verdicts["defaults"]:
        kinds[result["kind"]] = kinds.get(result["kind"], 0) + 1
    assert kinds == DEFAULT_KINDS
    assert sum(DEFAULT_KINDS.values()) == 14


def test_every_group_is_covered(verdicts: dict[str, list[dict[str, Any]]]) -> None:
    """No values file may silently lose a whole API group from the check."""
    seen = {r["apiVersion"] for results in verdicts.values() for r in results}
    assert seen == {
        "networking.istio.io/v1",
        "networking.istio.io/v1alpha3",
        "security.istio.io/v1",
        "monitoring.coreos.com/v1",
    }


# --- The check fails on broken objects ----------------------------------------------------------


@pytest.fixture(scope="module")
def defaults(rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    return custom_resources(rendered["defaults"])


def model_virtualservice(objects: list[Manifest]) -> Manifest:
    return copy.deepcopy(only(objects, "VirtualService", "-model-service"))


def errors_of(obj: Manifest) -> list[str]:
    (result,) = validate([obj])
    errors: list[str] = result["errors"]
    return errors


def test_a_weight_that_is_not_a_number_is_rejected(defaults: list[Manifest]) -> None:
    broken = model_virtualservice(defaults)
    broken["spec"]["http"][-1]["route"][0]["weight"] = "seventy"
    assert errors_of(broken) == ["/spec/http/2/route/0/weight: must be integer"]


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("/spec", "htpp"),
        ("/spec/http/2/route/0/destination", "subsetName"),
        ("/metadata", "label"),
    ],
)
def test_an_unknown_field_is_rejected(defaults: list[Manifest], where: str, field: str) -> None:
    broken = model_virtualservice(defaults)
    node = broken
    for part in where.strip("/").split("/"):
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[field] = "x"
    assert errors_of(broken) == [f"{where}/{field}: unknown field, not in the schema"]


def test_a_misspelt_enum_is_rejected(defaults: list[Manifest]) -> None:
    broken = copy.deepcopy(only(defaults, "AuthorizationPolicy", "-frontend"))
    broken["spec"]["action"] = "PERMIT"
    (error,) = errors_of(broken)
    assert error.startswith("/spec/action: must be equal to one of the allowed values")


def test_a_rule_duration_that_is_a_number_is_rejected(defaults: list[Manifest]) -> None:
    broken = copy.deepcopy(only(defaults, "PrometheusRule"))
    rule = next(r for g in broken["spec"]["groups"] for r in g["rules"] if "for" in r)
    rule["for"] = 5
    assert errors_of(broken)
    assert all(e.endswith("/for: must be string") for e in errors_of(broken))


def test_free_form_envoy_patches_are_left_to_envoy(defaults: list[Manifest]) -> None:
    """An EnvoyFilter's patch.value is preserved as is by its CRD; Envoy itself checks it
    (tests/mesh/test_one_source.py runs `envoy --mode validate` on the same blocks)."""
    envoyfilter = copy.deepcopy(only(defaults, "EnvoyFilter"))
    envoyfilter["spec"]["configPatches"][0]["patch"]["value"]["any_envoy_field"] = {"x": 1}
    assert errors_of(envoyfilter) == []
    envoyfilter["spec"]["configPatches"][0]["applyTo"] = "HTTP_FILTERS"
    assert errors_of(envoyfilter)


def test_a_kind_without_a_published_schema_is_refused() -> None:
    node = require_binary("node", "install Node.js 20 or newer")
    result = subprocess.run(
        [node, str(NPM / "validate.mjs")],
        input=json.dumps([{"apiVersion": "example.test/v1", "kind": "Widget"}]),
        capture_output=True,
        text=True,
        cwd=NPM,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no published schema for example.test/v1 Widget" in result.stderr


def test_the_schema_packages_are_pinned() -> None:
    lock = json.loads((NPM / "package-lock.json").read_text())
    packages = lock["packages"]
    assert packages["node_modules/@kubernetes-models/istio"]["version"] == "3.0.1"
    assert packages["node_modules/@kubernetes-models/prometheus-operator"]["version"] == "6.0.0"
