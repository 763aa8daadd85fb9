"""Render the chart with the API versions a cluster serves, as `helm template --api-versions` does.

The chart renders its Istio and Prometheus Operator objects only when the cluster serves their
APIs (`.Capabilities.APIVersions.Has`). helm-python-sdk 0.2.2's `Chart.render` forwards name,
namespace, revision and the install/upgrade flags only, but the C library under it (helm-c-sdk's
`helm_render`) takes the rest of Helm's render options in the same JSON: `api_versions` and
`kube_version` (it rejects unknown keys, so a renamed option fails loudly rather than being
ignored). Linting has no such option (`helm_lint_run_opts` rejects it): lint sees a plain cluster.
"""

from __future__ import annotations

import json
from typing import Any

#: What `make deploy-k8s` installs before the chart: Istio (networking v1 and v1alpha3 for the
#: EnvoyFilter, security v1) and the Prometheus Operator of kube-prometheus-stack.
ISTIO_APIS = ("networking.istio.io/v1", "networking.istio.io/v1alpha3", "security.istio.io/v1")
OPERATOR_APIS = ("monitoring.coreos.com/v1",)
MESH_CLUSTER = ISTIO_APIS + OPERATOR_APIS


def render(
    chart: Any,
    values: dict[str, Any] | None = None,
    *,
    name: str,
    namespace: str,
    api_versions: tuple[str, ...] = MESH_CLUSTER,
    kube_version: str | None = None,
) -> dict[str, str]:
    """`helm template NAME CHART -n NAMESPACE --api-versions ...`: template path -> manifest."""
    from helm_python import _native

    options: dict[str, Any] = {"name": name, "namespace": namespace}
    if api_versions:
        options["api_versions"] = list(api_versions)
    if kube_version:
        options["kube_version"] = kube_version
    rendered: dict[str, str] = json.loads(
        _native.call_string(
            "helm_render", chart._raw(), json.dumps(values or {}), json.dumps(options)
        )
    )
    return rendered
