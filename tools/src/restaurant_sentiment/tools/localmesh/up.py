"""`make up`: every service in the foreground behind the Envoy gateway, under our supervisor.

The gateway reads its routes and its endpoints from files in the run directory, so weights change
(`make promote`) and processes are replaced (`make restart`) while it keeps running.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from restaurant_sentiment.tools.localmesh import gateway, prometheus, restart, traffic
from restaurant_sentiment.tools.localmesh.service import PORT, Service
from restaurant_sentiment.tools.localmesh.settings import UpSettings, check_ports_free, port_plan
from restaurant_sentiment.tools.localmesh.supervisor import SYSTEM, Printer, Supervisor
from restaurant_sentiment.tools.localmesh.traffic import effective_values_file
from restaurant_sentiment.tools.paths import check_model_folders
from restaurant_sentiment.tools.procs import free_port
from restaurant_sentiment.values import ConfigError, Values, write_values

READY_TIMEOUT = 120.0
PROMETHEUS_HINT = (
    "prometheus is not on the PATH, so metrics and alerts are off; to get them install it "
    "(Debian/Ubuntu: `sudo apt-get install prometheus`, macOS: `brew install prometheus`) "
    "and run `make up` again. Carrying on without it."
)


def envoy_binary() -> str:
    """The Envoy of this environment (`make up` runs the venv's Python without activating it)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("envoy", path=search)
    if found is None:
        raise ConfigError("envoy not found: install the project first (`make install`)")
    return found


def feedback_store_url(directory: Path) -> str:
    """The feedback store every model-service process of a `make up` shares: MODEL_SERVICE_
    FEEDBACK_STORE when set (a Redis, say), else a SQLite file in the run directory, which
    outlives the processes `make restart` replaces."""
    return os.environ.get("MODEL_SERVICE_FEEDBACK_STORE") or (
        f"sqlite://{directory.resolve() / 'feedback.sqlite3'}"
    )


def url_host(host: str, port: int) -> str:
    return f"http://{host}" if port == 80 else f"http://{host}:{port}"


def plan(
    values: Values,
    settings: UpSettings,
    model_dir: Path,
    workdir: Path,
    prometheus_bin: str | None,
    routes_dir: Path | None = None,
    metrics_port: int | None = None,
) -> list[Service]:
    """The processes to run, with their configuration files written into workdir.

    Every service reads the same effective values file in routes_dir (the chart's values with
    the weights the gateway applies now), as pods read the chart's values from a ConfigMap. The
    gateway's routes, endpoints and Prometheus's targets are files there too, which a promotion
    or a restart rewrites. Each service's environment is set here, once: a replacement process
    gets the same.
    """
    python = sys.executable
    routes_dir = routes_dir or workdir
    routes_dir.mkdir(parents=True, exist_ok=True)
    metrics_port = metrics_port or free_port()
    values_file = effective_values_file(routes_dir)
    write_values(values, values_file)
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # One key per run, shared by the versions as a Secret would be in the cluster, so a
    # prediction id from one version verifies on the other; never written to disk.
    model_env = {
        **base_env,
        "MODEL_SERVICE_MODEL_DIR": str(model_dir),
        "MODEL_SERVICE_VALUES_FILE": str(values_file),
        "MODEL_SERVICE_FEEDBACK_SECRET": os.environ.get(
            "MODEL_SERVICE_FEEDBACK_SECRET", secrets.token_urlsafe(32)
        ),
        # Claimed prediction ids and the experiment's tallies, shared by every process.
        "MODEL_SERVICE_FEEDBACK_STORE": feedback_store_url(routes_dir),
    }
    services = [
        Service(
            f"model-service-{name}",
            (
                python,
                "-m",
                "restaurant_sentiment.model_service",
                "--host",
                "127.0.0.1",
                "--port",
                PORT,
                "--model-version",
                name,
            ),
            f"http://127.0.0.1:{PORT}/readyz",
            model_env,
            port=settings.model_service_ports[name],
            cluster=gateway.cluster_name(name),
        )
        for name in values.version_names
    ]
    # The frontend reaches the model-service through the mesh listener, as through its sidecar.
    mesh_url = f"http://127.0.0.1:{settings.mesh_port}"
    services.append(
        Service(
            "frontend",
            (
                python,
                "-m",
                "restaurant_sentiment.frontend",
                "--host",
                "127.0.0.1",
                "--port",
                PORT,
                "--model-service-url",
                mesh_url,
            ),
            f"http://127.0.0.1:{PORT}/healthz",
            {
                **base_env,
                # The /experiment page reads the feedback store's counts through the mesh.
                "FRONTEND_VALUES_FILE": str(values_file),
            },
            port=settings.frontend_port,
            cluster="frontend",
        )
    )
    upstreams = gateway.local_upstreams(
        {n: settings.model_service_ports[n] for n in values.version_names}, settings.frontend_port
    )
    listen = gateway.Listen(
        gateway=gateway.Address("127.0.0.1", settings.gateway_port),
        mesh=gateway.Address("127.0.0.1", settings.mesh_port),
        admin=gateway.Address("127.0.0.1", settings.envoy_admin_port),
        access_log=True,
        metrics=gateway.Address("127.0.0.1", metrics_port),
    )
    # Routes and endpoints live in files Envoy watches: `make promote` changes weights in place,
    # `make restart` adds and drains processes.
    bootstrap = gateway.build_bootstrap(values, upstreams, listen)
    clusters = gateway.service_clusters(values)
    gateway.write_route_files(bootstrap, routes_dir)
    gateway.write_endpoint_files(bootstrap, routes_dir, clusters, "initial")
    dynamic = gateway.with_file_endpoints(
        gateway.with_file_routes(bootstrap, routes_dir), routes_dir, clusters
    )
    envoy_config = workdir / "envoy.yaml"
    envoy_config.write_text(yaml.safe_dump(dynamic))
    services.append(
        Service(
            "gateway",
            # No hot restart means no shared memory: several Envoys (tests, checkouts) coexist.
            (
                envoy_binary(),
                "-c",
                str(envoy_config),
                "--disable-hot-restart",
                "--log-level",
                "warn",
            ),
            f"http://127.0.0.1:{settings.envoy_admin_port}/ready",
            base_env,
        )
    )
    if prometheus_bin is not None:
        rules = prometheus.rule_groups_file(prometheus.RULES, workdir)
        prometheus.write_targets(
            routes_dir,
            {n: [settings.model_service_ports[n]] for n in values.version_names},
            [settings.frontend_port],
        )
        config = prometheus.build_config(routes_dir, settings.envoy_admin_port, rules)
        prometheus_config = workdir / "prometheus.yaml"
        prometheus_config.write_text(yaml.safe_dump(config))
        services.append(
            Service(
                "prometheus",
                (
                    prometheus_bin,
                    f"--config.file={prometheus_config}",
                    f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
                    "--log.level=warn",
                ),
                f"http://127.0.0.1:{settings.prometheus_port}/-/ready",
                base_env,
            )
        )
    return services


def banner(values: Values, settings: UpSettings, with_prometheus: bool) -> str:
    """The URLs printed once every service is ready."""
    port = settings.gateway_port
    cookie = values.model_service.cookie.name
    lines = [
        "restaurant-sentiment is ready:",
        f"  app                {url_host(values.hosts.app, port)}/",
        f"  API and its docs   {url_host(values.hosts.service, port)}/apidocs",
    ]
    if with_prometheus:
        lines.append(f"  Prometheus         http://127.0.0.1:{settings.prometheus_port}/")
    first = values.version_names[0]
    lines += [
        f"Pick a model version with the cookie, e.g. curl -H 'Cookie: {cookie}={first}' "
        f"{url_host(values.hosts.service, port)}/version",
        "`make restart` (another terminal) replaces every service process without a failed "
        "request.",
        "Press Ctrl-C to stop everything.",
    ]
    return "\n".join(lines)


class _Watcher(threading.Thread):
    """Waits for every service's ready URL, then prints the banner and calls on_ready; stops
    everything when one is not ready in time."""

    def __init__(
        self,
        supervisor: Supervisor,
        services: list[Service],
        banner: str,
        on_ready: Callable[[], None],
    ) -> None:
        super().__init__(name="readiness", daemon=True)
        self.supervisor = supervisor
        self.services = services
        self.banner = banner
        self.on_ready = on_ready

    def run(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(self.services)
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while pending and not self.supervisor.stopping.is_set():
                if time.monotonic() > deadline:
                    names = ", ".join(s.name for s in pending)
                    self.supervisor.fail(f"not ready after {READY_TIMEOUT:.0f}s: {names}")
                    return
                service = pending[0]
                try:
                    if client.get(service.ready_url).status_code == 200:
                        self.supervisor.say(f"{service.name} is ready")
                        pending.pop(0)
                        continue
                except httpx.TransportError:
                    pass
                self.supervisor.stopping.wait(0.2)
        if not self.supervisor.stopping.is_set():
            self.on_ready()
            self.supervisor.say(self.banner)


def run(values: Values, settings: UpSettings, model_dir: Path, values_path: Path) -> int:
    """Start everything, print the URLs once ready, and stop everything on Ctrl-C or SIGTERM."""
    check_model_folders(values, model_dir)
    prometheus_bin = shutil.which("prometheus")
    check_ports_free(port_plan(settings, values, prometheus=prometheus_bin is not None))
    directory = traffic.run_dir(settings.gateway_port)
    # The port was free, so whatever is left there belongs to a `make up` that is gone.
    shutil.rmtree(directory, ignore_errors=True)
    try:
        directory.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create the run directory {directory}: {exc.strerror}") from None
    try:
        return _run(values, values_path, settings, model_dir, prometheus_bin, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run(
    values: Values,
    values_path: Path,
    settings: UpSettings,
    model_dir: Path,
    prometheus_bin: str | None,
    directory: Path,
) -> int:
    metrics_port = free_port()
    control = restart.control_path(directory)
    with tempfile.TemporaryDirectory(prefix="localmesh-") as tmp:
        services = plan(
            values,
            settings,
            model_dir.resolve(),
            Path(tmp),
            prometheus_bin,
            directory,
            metrics_port,
        )
        traffic.save_state(
            directory,
            traffic.RunState(
                pid=os.getpid(),
                values=str(values_path.resolve()),
                gateway_port=settings.gateway_port,
                mesh_port=settings.mesh_port,
                admin_port=settings.envoy_admin_port,
                frontend_port=settings.frontend_port,
                model_service_ports={
                    n: settings.model_service_ports[n] for n in values.version_names
                },
                weights={v.name: v.weight for v in values.model_service.versions},
                metrics_port=metrics_port,
                control=str(control),
                feedback_store=feedback_store_url(directory),
            ),
        )
        printer = Printer(sys.stdout, max(len(SYSTEM), *(len(s.name) for s in services)))
        supervisor = Supervisor(printer)
        if prometheus_bin is None:
            supervisor.say(PROMETHEUS_HINT)
        for service in services:
            supervisor.start(service.name, service.command, service.env, service.port)
        server = restart.ControlServer(
            control,
            restart.RollingRestart(
                supervisor,
                services,
                values,
                directory,
                settings.envoy_admin_port,
                with_prometheus=prometheus_bin is not None,
            ),
        )
        watcher = _Watcher(
            supervisor,
            services,
            banner(values, settings, prometheus_bin is not None),
            on_ready=server.start,
        )
        watcher.start()
        code = supervisor.run(on_stop=server.close)
        watcher.join(timeout=5)
    return code
