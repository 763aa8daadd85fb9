"""`make up`: every service in the foreground behind the Envoy gateway, supervised by honcho."""

from __future__ import annotations

import datetime
import json
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from honcho.manager import Manager
from honcho.printer import Message, Printer

from restaurant_sentiment.tools.localmesh import gateway, prometheus, traffic
from restaurant_sentiment.tools.localmesh.settings import UpSettings, check_ports_free, port_plan
from restaurant_sentiment.tools.localmesh.traffic import effective_values_file
from restaurant_sentiment.tools.paths import check_model_folders
from restaurant_sentiment.values import ConfigError, Values, write_values

READY_TIMEOUT = 120.0
PROMETHEUS_HINT = (
    "prometheus is not on the PATH, so metrics and alerts are off; to get them install it "
    "(Debian/Ubuntu: `sudo apt-get install prometheus`, macOS: `brew install prometheus`) "
    "and run `make up` again. Carrying on without it."
)
SYSTEM = "localmesh"


@dataclass(frozen=True)
class Service:
    """One supervised process and the URL that answers 200 once it is ready."""

    name: str
    command: list[str]
    ready_url: str
    env: dict[str, str]


def envoy_binary() -> str:
    """The Envoy of this environment (`make up` runs the venv's Python without activating it)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("envoy", path=search)
    if found is None:
        raise ConfigError("envoy not found: install the project first (`make install`)")
    return found


def url_host(host: str, port: int) -> str:
    return f"http://{host}" if port == 80 else f"http://{host}:{port}"


def plan(
    values: Values,
    settings: UpSettings,
    model_dir: Path,
    workdir: Path,
    prometheus_bin: str | None,
    routes_dir: Path | None = None,
) -> list[Service]:
    """The processes to run, with their configuration files written into workdir.

    Every service reads the same effective values file in routes_dir (the chart's values with
    the weights the gateway applies now), as pods read the chart's values from a ConfigMap.
    """
    python = sys.executable
    routes_dir = routes_dir or workdir
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
    }
    services = [
        Service(
            f"model-service-{name}",
            [
                python,
                "-m",
                "restaurant_sentiment.model_service",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--model-version",
                name,
            ],
            f"http://127.0.0.1:{port}/readyz",
            model_env,
        )
        for name, port in ((n, settings.model_service_ports[n]) for n in values.version_names)
    ]
    # The frontend reaches the model-service through the mesh listener, as through its sidecar.
    mesh_url = f"http://127.0.0.1:{settings.mesh_port}"
    services.append(
        Service(
            "frontend",
            [
                python,
                "-m",
                "restaurant_sentiment.frontend",
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.frontend_port),
                "--model-service-url",
                mesh_url,
            ],
            f"http://127.0.0.1:{settings.frontend_port}/healthz",
            {
                **base_env,
                "FRONTEND_VALUES_FILE": str(values_file),
                **frontend_experiment_env(values, settings),
            },
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
    )
    # The routes live in files Envoy watches, so `make promote` can change weights in place.
    bootstrap = gateway.build_bootstrap(values, upstreams, listen)
    gateway.write_route_files(bootstrap, routes_dir, "initial")
    envoy_config = workdir / "envoy.yaml"
    envoy_config.write_text(yaml.safe_dump(gateway.with_file_routes(bootstrap, routes_dir)))
    services.append(
        Service(
            "gateway",
            # No hot restart means no shared memory: several Envoys (tests, checkouts) coexist.
            [
                envoy_binary(),
                "-c",
                str(envoy_config),
                "--disable-hot-restart",
                "--log-level",
                "warn",
            ],
            f"http://127.0.0.1:{settings.envoy_admin_port}/ready",
            base_env,
        )
    )
    if prometheus_bin is not None:
        rules = prometheus.rule_groups_file(prometheus.RULES, workdir)
        config = prometheus.build_config(
            upstreams_ports(upstreams), settings.frontend_port, settings.envoy_admin_port, rules
        )
        prometheus_config = workdir / "prometheus.yaml"
        prometheus_config.write_text(yaml.safe_dump(config))
        services.append(
            Service(
                "prometheus",
                [
                    prometheus_bin,
                    f"--config.file={prometheus_config}",
                    f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
                    "--log.level=warn",
                ],
                f"http://127.0.0.1:{settings.prometheus_port}/-/ready",
                base_env,
            )
        )
    return services


def frontend_experiment_env(values: Values, settings: UpSettings) -> dict[str, str]:
    """The /experiment page's sources: every version's /metrics, read directly.

    Through the mesh it would reach only the version of its cookie.
    """
    urls = [
        f"http://127.0.0.1:{settings.model_service_ports[name]}/metrics"
        for name in values.version_names
    ]
    return {"FRONTEND_EXPERIMENT_METRICS_URLS": json.dumps(urls)}


def upstreams_ports(upstreams: gateway.Upstreams) -> dict[str, int]:
    return {name: address.port for name, address in upstreams.model_services.items()}


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
        "Press Ctrl-C to stop everything.",
    ]
    return "\n".join(lines)


class _Watcher(threading.Thread):
    """Waits for every service's ready URL, then prints the banner; stops all on a timeout."""

    def __init__(self, manager: Manager, services: list[Service], banner: str) -> None:
        super().__init__(name="readiness", daemon=True)
        self.manager = manager
        self.services = services
        self.banner = banner
        self.stopped = threading.Event()
        self.failed = False

    def say(self, text: str) -> None:
        self.manager.events.put(Message("line", text + "\n", datetime.datetime.now(), SYSTEM, None))

    def run(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(self.services)
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while pending and not self.stopped.is_set():
                if time.monotonic() > deadline:
                    names = ", ".join(s.name for s in pending)
                    self.say(f"not ready after {READY_TIMEOUT:.0f}s: {names}; stopping")
                    self.failed = True
                    self.manager.terminate()
                    return
                service = pending[0]
                try:
                    if client.get(service.ready_url).status_code == 200:
                        self.say(f"{service.name} is ready")
                        pending.pop(0)
                        continue
                except httpx.TransportError:
                    pass
                self.stopped.wait(0.2)
        if not self.stopped.is_set():
            self.say(self.banner)


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
    with tempfile.TemporaryDirectory(prefix="localmesh-") as tmp:
        services = plan(values, settings, model_dir.resolve(), Path(tmp), prometheus_bin, directory)
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
            ),
        )
        printer = Printer(sys.stdout)
        manager = Manager(printer)
        for service in services:
            manager.add_process(
                service.name, "exec " + shlex.join(service.command), env=service.env
            )
        printer.width = max(len(SYSTEM), *(len(s.name) for s in services))
        if prometheus_bin is None:
            printer.write(Message("line", PROMETHEUS_HINT, datetime.datetime.now(), SYSTEM, None))
        watcher = _Watcher(manager, services, banner(values, settings, prometheus_bin is not None))
        watcher.start()
        manager.loop()
        watcher.stopped.set()
        watcher.join(timeout=5)
    if watcher.failed:
        return 1
    # A stop asked for by Ctrl-C or SIGTERM is a clean end; a service that died is not.
    if manager.returncode in (130, 143):
        return 0
    return manager.returncode or 1
