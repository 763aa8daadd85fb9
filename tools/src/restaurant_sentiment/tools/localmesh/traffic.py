"""Promote or roll back: move all new traffic to one version, locally or with `helm upgrade`.

Locally the running `make up` gateway reads its routes from files in its run directory
(`.run/localmesh/gateway-<GATEWAY_PORT>/`); a promotion rewrites them from the same values with
the weights overridden, and Envoy swaps the routes without a restart, so nothing in flight is
dropped. The override lives as long as that `make up`: a new start reads values.yaml again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from restaurant_sentiment.tools.localmesh import gateway
from restaurant_sentiment.tools.paths import ROOT
from restaurant_sentiment.values import ConfigError, Values, load_values, read_raw, write_values

RUN_DIR_ENV = "LOCALMESH_RUN_DIR"
STATE_FILE = "state.json"
APPLY_TIMEOUT = 30.0
CHART_PATH = "deploy/helm/restaurant-sentiment"
DEFAULT_RELEASE = "restaurant-sentiment"
DEFAULT_NAMESPACE = "restaurant"


def run_base() -> Path:
    """Where each running `make up` keeps its routes and state (LOCALMESH_RUN_DIR overrides)."""
    return Path(os.environ.get(RUN_DIR_ENV) or ROOT / ".run" / "localmesh")


def run_dir(gateway_port: int) -> Path:
    return run_base() / f"gateway-{gateway_port}"


def effective_values_file(directory: Path) -> Path:
    """The values every process of a `make up` reads: the chart's, with the live weights."""
    return directory / "values.json"


@dataclass(frozen=True)
class RunState:
    """What a promotion, a restart and the metrics readers need to know about a `make up`.

    The ports of the frontend and the model-services are those of the processes serving now:
    `make restart` replaces them with processes on other ports and updates them here.
    """

    pid: int
    values: str
    gateway_port: int
    mesh_port: int
    admin_port: int
    frontend_port: int
    model_service_ports: dict[str, int]
    weights: dict[str, int]
    # The Envoy listener with a stable /<version>/metrics per version (0: none).
    metrics_port: int = 0
    # The Unix socket `make restart` talks to ("": none).
    control: str = ""
    # The feedback store the model-services share ("": none), which `make experiment` reads.
    feedback_store: str = ""

    def metrics_urls(self) -> list[str]:
        """Each version's /metrics at an address that outlives its processes."""
        if not self.metrics_port:
            return [f"http://127.0.0.1:{p}/metrics" for p in self.model_service_ports.values()]
        return [
            f"http://127.0.0.1:{self.metrics_port}{gateway.metrics_path(name)}"
            for name in self.model_service_ports
        ]

    def upstreams(self) -> gateway.Upstreams:
        return gateway.local_upstreams(self.model_service_ports, self.frontend_port)

    def listen(self) -> gateway.Listen:
        return gateway.Listen(
            gateway=gateway.Address("127.0.0.1", self.gateway_port),
            mesh=gateway.Address("127.0.0.1", self.mesh_port),
            admin=gateway.Address("127.0.0.1", self.admin_port),
            access_log=True,
        )


def save_state(directory: Path, state: RunState) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{STATE_FILE}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    os.replace(temporary, directory / STATE_FILE)


@contextlib.contextmanager
def _state_lock(directory: Path) -> Iterator[None]:
    """One writer of the run state at a time (a restart and a promotion may overlap)."""
    with (directory / ".state.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_state(directory: Path, **changes: Any) -> RunState:
    """Change some fields of the run state, keeping what another writer changed meanwhile."""
    with _state_lock(directory):
        raw = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        state = replace(RunState(**raw), **changes)
        save_state(directory, state)
        return state


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_state(gateway_port: int) -> tuple[Path, RunState]:
    """The state of the `make up` serving gateway_port, or ConfigError saying none runs."""
    directory = run_dir(gateway_port)
    not_running = (
        f"no `make up` is running with GATEWAY_PORT={gateway_port} (nothing in {directory}): "
        "start it with `make up`, or set GATEWAY_PORT to the port it uses"
    )
    try:
        raw = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        state = RunState(**raw)
    except FileNotFoundError:
        raise ConfigError(not_running) from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"the run state in {directory} cannot be read: {exc}") from None
    if not _alive(state.pid):
        raise ConfigError(not_running)
    return directory, state


def winner_weights(values: Values, winner: str) -> dict[str, int]:
    """All weight to winner, none to the others; ConfigError when winner is no version."""
    names = values.version_names
    if winner not in names:
        raise ConfigError(
            f"unknown version {winner!r}: modelService.versions has {', '.join(names)}"
        )
    return {name: 100 if name == winner else 0 for name in names}


def write_routes(values: Values, state: RunState, directory: Path) -> str:
    """Write the gateway's route files for these values; return the routes' version."""
    bootstrap = gateway.build_bootstrap(values, state.upstreams(), state.listen())
    return gateway.write_route_files(bootstrap, directory)


def applied_versions(admin_port: int) -> dict[str, str]:
    """Route configuration name -> version Envoy serves now, from its admin config dump."""
    url = f"http://127.0.0.1:{admin_port}/config_dump?resource=dynamic_route_configs"
    response = httpx.get(url, timeout=5.0, trust_env=False)
    response.raise_for_status()
    return {
        item["route_config"]["name"]: item.get("version_info", "")
        for item in response.json().get("configs", [])
    }


def wait_applied(admin_port: int, version: str, timeout: float = APPLY_TIMEOUT) -> None:
    """Wait until Envoy serves every route file at version, or raise ConfigError."""
    wanted = set(gateway.DYNAMIC_LISTENERS)
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            seen = applied_versions(admin_port)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            seen = {}
        if all(seen.get(name) == version for name in wanted):
            return
        time.sleep(0.1)
    raise ConfigError(
        f"Envoy (admin port {admin_port}) did not take up the new routes within {timeout:.0f}s "
        f"(it serves {seen or 'nothing readable'}); its log in `make up` says why"
    )


def parse_weights(text: str, values: Values, setting: str = "WEIGHTS") -> dict[str, int]:
    """`stable=70,canary=30` as weights of the values' versions; ConfigError naming setting."""
    weights: dict[str, int] = {}
    for part in text.split(","):
        name, sep, share = part.strip().partition("=")
        if not sep or not share.strip().isdigit():
            raise ConfigError(f"{setting}: {part.strip()!r} is not name=percent, e.g. canary=30")
        if name not in values.version_names:
            raise ConfigError(
                f"{setting}: unknown version {name!r}: modelService.versions has "
                f"{', '.join(values.version_names)}"
            )
        weights[name] = int(share)
    missing = [n for n in values.version_names if n not in weights]
    if missing:
        raise ConfigError(f"{setting}: no weight for {', '.join(missing)}")
    if sum(weights.values()) != 100 or any(w > 100 for w in weights.values()):
        raise ConfigError(f"{setting}: the weights must sum to 100, got {describe(weights)}")
    return weights


def values_in_force(gateway_port: int, default: Path) -> Path:
    """The values the running `make up` on gateway_port serves with (its live weights), or
    default when none runs."""
    try:
        directory, _ = load_state(gateway_port)
    except ConfigError:
        return default
    live = effective_values_file(directory)
    return live if live.is_file() else default


def live_state(gateway_port: int) -> RunState | None:
    """The state of the `make up` serving gateway_port, or None when none runs."""
    try:
        return load_state(gateway_port)[1]
    except ConfigError:
        return None


def current_weights(gateway_port: int) -> dict[str, int]:
    """The weights the running `make up` on gateway_port applies now."""
    return load_state(gateway_port)[1].weights


def apply_local(winner: str, gateway_port: int) -> tuple[RunState, dict[str, int]]:
    """Send all new traffic of the running `make up` to winner, without a restart."""
    _, state = load_state(gateway_port)
    weights = winner_weights(load_values(Path(state.values)), winner)
    return apply_local_weights(weights, gateway_port)


def apply_local_weights(
    weights: dict[str, int], gateway_port: int
) -> tuple[RunState, dict[str, int]]:
    """Give the running `make up` these weights, without a restart; every reader follows."""
    directory, state = load_state(gateway_port)
    values = load_values(Path(state.values))
    moved = values.with_weights(weights)
    version = write_routes(moved, state, directory)
    wait_applied(state.admin_port, version)
    # The services read the weights from here: the experiment compares the split with them.
    write_values(moved, effective_values_file(directory))
    return update_state(directory, weights=weights), weights


def versions_json(raw_values: dict[str, Any], weights: dict[str, int]) -> str:
    """modelService.versions of the values file as JSON, with each weight replaced."""
    versions = [
        {**entry, "weight": weights[entry["name"]]}
        for entry in raw_values["modelService"]["versions"]
    ]
    return json.dumps(versions, separators=(",", ":"))


def helm_command(
    values_path: Path,
    weights: dict[str, int],
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    chart: str = CHART_PATH,
) -> list[str]:
    """`helm upgrade --reuse-values` that gives the versions these weights.

    The whole versions list is set, because `--set modelService.versions[1].weight=100` would
    replace the list with one holding weights only (Helm does not merge lists), dropping names,
    image tags and replicas. The list comes from the values file the release was installed from.
    The chart's ConfigMap carries the new weights to the frontend, which reads them without a
    restart: the experiment page, the configured-weight gauge and the SRM alert follow.
    """
    load_values(values_path)
    raw = read_raw(values_path)
    return [
        "helm", "upgrade", release, chart, "--namespace", namespace, "--reuse-values",
        "--set-json", f"modelService.versions={versions_json(raw, weights)}",
    ]  # fmt: skip


def describe(weights: dict[str, int]) -> str:
    return ", ".join(f"{name} {weight}%" for name, weight in weights.items())


def format_command(command: list[str]) -> str:
    return shlex.join(command)
