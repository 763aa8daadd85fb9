"""helm lint --strict and values.schema.json, run by the real Helm engine."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helm.conftest import CHART, CI_VALUES, KUBE_VERSION, ci_values


def lint_errors(helm: ModuleType, values: dict[str, Any]) -> list[str]:
    """Findings of `helm lint --strict` that are warnings or errors."""
    report = helm.lint(CHART, values, strict=True, kube_version=KUBE_VERSION)
    problems = [m["error"] for m in report["messages"] if m["severity"] >= 2]
    return problems + list(report["errors"])


def test_ci_values_files_exist() -> None:
    assert len(CI_VALUES) >= 3, CI_VALUES


def test_lint_strict_default_values(helm: ModuleType) -> None:
    assert lint_errors(helm, {}) == []


@pytest.mark.parametrize("path", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict_ci_values(helm: ModuleType, path: Path) -> None:
    assert lint_errors(helm, ci_values(path)) == []


def two_versions(**overrides: Any) -> dict[str, Any]:
    stable = {"name": "stable", "image": "0.1.0", "weight": 70, "replicas": 1}
    canary = {"name": "canary", "image": "0.1.0", "weight": 30, "replicas": 1}
    canary.update(overrides)
    return {"modelService": {"versions": [stable, canary]}}


def schema_error(chart: Any, values: dict[str, Any]) -> str:
    helm = pytest.importorskip("helm_python")
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(chart.merge_values(values))
    return str(caught.value)


def test_schema_accepts_defaults(chart: Any) -> None:
    chart.validate_schema(chart.merge_values({}))


def test_schema_rejects_unknown_top_level_key(chart: Any) -> None:
    message = schema_error(chart, {"replicaCount": 2})
    assert "replicaCount" in message and "additional properties" in message.lower()


def test_schema_rejects_unknown_nested_key(chart: Any) -> None:
    message = schema_error(chart, {"rateLimit": {"requestsPerMinute": 20}})
    assert "requestsPerMinute" in message


def test_schema_rejects_version_without_image(chart: Any) -> None:
    values = {"modelService": {"versions": [{"name": "stable", "weight": 100, "replicas": 1}]}}
    message = schema_error(chart, values)
    assert "image" in message and "versions/0" in message


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"weight": 130}, "weight"),
        ({"weight": -5}, "weight"),
        ({"weight": "30"}, "weight"),
        ({"name": "Canary"}, "name"),
        ({"name": "canary.v2"}, "name"),
        ({"replicas": -1}, "replicas"),
        ({"image": "0.1.0 latest"}, "image"),
    ],
)
def test_schema_rejects_bad_version_fields(
    chart: Any, override: dict[str, Any], field: str
) -> None:
    message = schema_error(chart, two_versions(**override))
    assert f"versions/1/{field}" in message or f"versions/1'/{field}" in message, message


@pytest.mark.parametrize(
    "values",
    [
        {"hosts": {"app": "App Localhost"}},
        {"modelService": {"cookie": {"name": "a;b", "maxAge": 60}}},
        {"modelService": {"cookie": {"name": "ok", "maxAge": 0}}},
        {"modelService": {"port": 70000}},
        {"modelService": {"versions": []}},
        {"rateLimit": {"requests": 0}},
        {"image": {"pullPolicy": "Sometimes"}},
    ],
    ids=["host", "cookie-name", "cookie-max-age", "port", "no-versions", "requests", "pull"],
)
def test_schema_rejects_bad_values(chart: Any, values: dict[str, Any]) -> None:
    assert schema_error(chart, values)


def test_weights_not_summing_to_100_fail_the_render(chart: Any, helm: ModuleType) -> None:
    values = two_versions(weight=20)
    with pytest.raises(helm.HelmRenderError) as caught:
        chart.render(values, name="rel", namespace="shop")
    assert "weights must sum to 100, they sum to 90" in str(caught.value)


def test_duplicate_version_names_fail_the_render(chart: Any, helm: ModuleType) -> None:
    values = two_versions(name="stable")
    with pytest.raises(helm.HelmRenderError) as caught:
        chart.render(values, name="rel", namespace="shop")
    assert 'the version name "stable" appears more than once' in str(caught.value)


# Kubernetes objects passed through verbatim; their fields are documented by Kubernetes.
VERBATIM_BLOCKS = {"resources", "podSecurityContext", "securityContext", "selector", "labels"}
KEY = re.compile(r"^(?P<indent>\s*)(?P<dash>- )?(?P<key>[A-Za-z_][A-Za-z0-9_]*):")


def test_every_values_key_is_commented() -> None:
    """Each key of values.yaml has a comment right above it, as `helm create` values do."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    parents: list[tuple[int, str]] = []
    list_items: dict[int, int] = {}
    missing = []
    for index, line in enumerate(lines):
        if line.lstrip().startswith("- "):
            item_indent = len(line) - len(line.lstrip()) + 2
            list_items[item_indent] = list_items.get(item_indent, 0) + 1
        match = KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"]) + (2 if match["dash"] else 0)
        while parents and parents[-1][0] >= indent:
            parents.pop()
        previous = lines[index - 1].strip()
        in_verbatim = any(name in VERBATIM_BLOCKS for _, name in parents)
        # Keys of the second and later list items repeat the documented first item.
        later_item = list_items.get(indent, 0) > 1
        if not in_verbatim and not later_item and not previous.lstrip("- ").startswith("#"):
            missing.append(f"line {index + 1}: {line.strip()}")
        parents.append((indent, match["key"]))
    assert missing == []
