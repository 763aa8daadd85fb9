"""`make restart`: a rolling restart of a running `make up`, as `kubectl rollout restart` does it.

Every process of every service (each model-service version, then the frontend; the gateway keeps
running) is replaced one at a time, like a RollingUpdate with maxSurge 1 and maxUnavailable 0:

1. start a new process with the current code and ml-model/ artefacts, on a free port;
2. wait until it is ready (a process that exits or stays unready stops the restart with its
   reason; the old process never stopped serving);
3. publish both to the gateway's endpoint file, the old one DRAINING (no new requests), and wait
   until Envoy applies it;
4. wait until the old process has no request in flight (Envoy's `rq_active`), SIGTERM it and wait
   for it to finish, then drop it from the endpoints.

Retries on `reset` and `connect-failure` (values `resilience`) cover the rare request that still
meets a closing connection. `make up` does the work; `make restart` asks it over a Unix socket in
the run directory and prints the progress it streams back (Ctrl-C on `make restart` stops the
printing, not the restart).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import socketserver
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

from restaurant_sentiment.tools.localmesh import gateway, prometheus, traffic
from restaurant_sentiment.tools.localmesh.service import Service
from restaurant_sentiment.tools.localmesh.supervisor import Process, Supervisor, describe_exit
from restaurant_sentiment.tools.procs import free_port
from restaurant_sentiment.values import ConfigError, Values

CONTROL_SOCKET = "control.sock"
# A Unix socket path must fit in sockaddr_un (104 bytes on macOS, 108 on Linux).
MAX_SOCKET_PATH = 100
READY_TIMEOUT = 120.0
APPLY_TIMEOUT = 30.0
POLL = 0.05

Report = Callable[[str], None]


class RestartError(Exception):
    """A replacement that cannot go on; the process it was to replace keeps serving."""


def control_path(directory: Path) -> Path:
    """The control socket of the `make up` whose run directory this is."""
    path = directory / CONTROL_SOCKET
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"localmesh-{digest}.sock"


# --- Envoy's view of the endpoints ----------------------------------------------------------


def host_statuses(admin_port: int, cluster: str) -> dict[int, tuple[str, int]]:
    """Port -> (EDS health status, requests in flight) of each host of a cluster, from Envoy."""
    url = f"http://127.0.0.1:{admin_port}/clusters?format=json"
    response = httpx.get(url, timeout=5.0, trust_env=False)
    response.raise_for_status()
    hosts: dict[int, tuple[str, int]] = {}
    for status in response.json().get("cluster_statuses", []):
        if status.get("name") != cluster:
            continue
        for host in status.get("host_statuses", []):
            port = int(host["address"]["socket_address"]["port_value"])
            health = host.get("health_status", {}).get("eds_health_status", "HEALTHY")
            active = next(
                (int(s.get("value", 0)) for s in host.get("stats", []) if s["name"] == "rq_active"),
                0,
            )
            hosts[port] = (health, active)
    return hosts


class RollingRestart:
    """Replaces the processes of the replaceable services, one at a time (see the module)."""

    def __init__(
        self,
        supervisor: Supervisor,
        services: list[Service],
        values: Values,
        directory: Path,
        admin_port: int,
        with_prometheus: bool,
    ) -> None:
        self.supervisor = supervisor
        # The model-service versions first, the frontend last: it calls them.
        self.services = [s for s in services if s.cluster is not None]
        self.values = values
        self.directory = directory
        self.admin_port = admin_port
        self.with_prometheus = with_prometheus
        self._lock = threading.Lock()

    @property
    def drain(self) -> tuple[float, float]:
        """(the longest request, the grace period of a stopping process), from the values."""
        policy = self.values.resilience
        return (
            float(policy.retries.per_try_timeout_seconds),
            float(policy.drain.termination_grace_period_seconds),
        )

    def run(self, report: Report) -> float:
        """Replace every process; return the seconds it took. One restart at a time."""
        if not self._lock.acquire(blocking=False):
            raise RestartError("a restart of this `make up` is already running")
        try:
            started = time.monotonic()
            for service in self.services:
                self.replace(service, report)
            return time.monotonic() - started
        finally:
            self._lock.release()

    def _current(self, service: Service) -> Process:
        live = [p for p in self.supervisor.live(service.name) if p.adopted]
        if len(live) != 1:
            raise RestartError(f"{service.name}: expected one serving process, found {len(live)}")
        return live[0]

    def replace(self, service: Service, report: Report) -> None:
        assert service.cluster is not None
        old = self._current(service)
        began = time.monotonic()
        port = free_port()
        try:
            new = self.supervisor.start(
                service.name, service.command_at(port), service.env, port, adopted=False
            )
        except (OSError, RuntimeError) as exc:
            raise RestartError(f"{service.name}: cannot start a new process: {exc}") from None
        report(
            f"{service.name}: started {new.label} (pid {new.pid}) on port {port} to replace "
            f"{old.label} (pid {old.pid}, port {old.port}); waiting until it is ready"
        )
        try:
            self._wait_ready(service, new, old)
        except RestartError:
            # Nothing was published: the gateway never sent it a request.
            self.supervisor.retire(new, timeout=5.0)
            raise
        self.supervisor.adopt(new)
        report(f"{service.name}: {new.label} is ready after {time.monotonic() - began:.1f}s")

        assert old.port is not None
        endpoints = [
            gateway.Endpoint(gateway.Address("127.0.0.1", port)),
            gateway.Endpoint(gateway.Address("127.0.0.1", old.port), draining=True),
        ]
        self._publish(service.cluster, endpoints)
        self._record()
        report(
            f"{service.name}: the gateway sends new requests to {new.label}; "
            f"{old.label} is draining"
        )

        longest, grace = self.drain
        drained_at = time.monotonic()
        left = self._wait_drained(service.cluster, old.port, longest)
        finished = time.monotonic() - drained_at
        if left:
            report(
                f"{service.name}: {old.label} still has {left} request(s) in flight after "
                f"{finished:.1f}s; stopping it, it finishes them first"
            )
        else:
            report(f"{service.name}: {old.label} has no request in flight; stopping it")
        stop_began = time.monotonic()
        code = self.supervisor.retire(old, timeout=grace)
        report(
            f"{service.name}: {old.label} stopped ({describe_exit(code)}) after "
            f"{time.monotonic() - stop_began:.1f}s"
        )
        self._publish(service.cluster, endpoints[:1])
        self._record()
        report(f"{service.name}: replaced in {time.monotonic() - began:.1f}s")

    def _wait_ready(self, service: Service, new: Process, old: Process) -> None:
        url = service.ready_url_at(new.port)
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer yet"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.supervisor.stopping.is_set():
                    raise RestartError("`make up` is stopping")
                code = new.returncode()
                if code is not None:
                    new.exited.wait(timeout=2)  # its last lines are read
                    raise RestartError(
                        f"{new.label} (the new {service.name}) exited ({describe_exit(code)}) "
                        f"before it was ready: {new.last_error()}. {old.label} (pid {old.pid}) "
                        "keeps serving; nothing else was stopped"
                    )
                try:
                    response = client.get(url)
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}"
                except httpx.TransportError as exc:
                    last = type(exc).__name__
                time.sleep(POLL)
        raise RestartError(
            f"{new.label} (the new {service.name}) was not ready after {READY_TIMEOUT:.0f}s "
            f"({url}: {last}); {old.label} (pid {old.pid}) keeps serving; nothing else was "
            "stopped"
        )

    def _publish(self, cluster: str, endpoints: list[gateway.Endpoint]) -> None:
        """Write the cluster's endpoint file and wait until Envoy serves exactly these hosts."""
        gateway.write_endpoint_file(self.directory, cluster, endpoints, uuid.uuid4().hex[:12])
        wanted = {e.address.port: ("DRAINING" if e.draining else "HEALTHY") for e in endpoints}
        deadline = time.monotonic() + APPLY_TIMEOUT
        seen: dict[int, str] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                seen = {p: h for p, (h, _) in host_statuses(self.admin_port, cluster).items()}
                if seen == wanted:
                    return
            time.sleep(POLL)
        raise RestartError(
            f"Envoy (admin port {self.admin_port}) did not take up the endpoints of {cluster} "
            f"within {APPLY_TIMEOUT:.0f}s (wanted {wanted}, it has {seen}); its log says why"
        )

    def _wait_drained(self, cluster: str, port: int, timeout: float) -> int:
        """Wait until the host on port has no request in flight, seen twice in a row (a worker
        may have picked it just before the draining status reached it); return what is left."""
        deadline = time.monotonic() + timeout
        active, quiet = -1, 0
        while time.monotonic() < deadline and quiet < 2:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                active = host_statuses(self.admin_port, cluster).get(port, ("", 0))[1]
                quiet = quiet + 1 if active == 0 else 0
            time.sleep(POLL)
        return max(active, 0)

    def _ports(self, service: Service) -> list[int]:
        """The ports of a service's processes in the pool now, oldest first."""
        return [p.port for p in self.supervisor.live(service.name) if p.adopted and p.port]

    def _record(self) -> None:
        """Make the run state and Prometheus's targets follow the processes serving now (the
        newest of a service is the one the gateway sends new requests to)."""
        ports = {s.cluster: self._ports(s) for s in self.services}
        versions = {name: ports[gateway.cluster_name(name)] for name in self.values.version_names}
        traffic.update_state(
            self.directory,
            frontend_port=ports["frontend"][-1],
            model_service_ports={name: held[-1] for name, held in versions.items()},
        )
        if self.with_prometheus:
            prometheus.write_targets(self.directory, versions, ports["frontend"])


# --- The control channel ----------------------------------------------------------------------


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        def send(kind: str, text: str) -> None:
            with contextlib.suppress(OSError):  # the client may have gone: carry on regardless
                self.wfile.write((json.dumps({kind: text}) + "\n").encode())
                self.wfile.flush()

        try:
            request = json.loads(self.rfile.readline(4096) or b"{}")
        except ValueError:
            send("error", "not a JSON request")
            return
        if not isinstance(request, dict) or request.get("command") != "restart":
            send("error", f"unknown request {request!r}: this `make up` takes `restart`")
            return
        supervisor = self.server.restarts.supervisor

        def report(text: str) -> None:
            supervisor.say(f"restart: {text}")
            send("progress", text)

        try:
            seconds = self.server.restarts.run(report)
        except RestartError as exc:
            supervisor.say(f"restart failed: {exc}")
            send("error", str(exc))
            return
        count = len(self.server.restarts.services)
        report(f"done: {count} processes replaced in {seconds:.1f}s")
        send("done", f"{seconds:.1f}")


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    restarts: RollingRestart


class ControlServer:
    """The Unix socket of a running `make up` that `make restart` talks to."""

    def __init__(self, path: Path, restarts: RollingRestart) -> None:
        self.path = path
        self.restarts = restarts
        self._server: _Server | None = None

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        try:
            server = _Server(str(self.path), _Handler)
            os.chmod(self.path, 0o600)
        except OSError as exc:
            self.restarts.supervisor.say(
                f"`make restart` is off: cannot open the control socket {self.path}: {exc}"
            )
            return
        server.restarts = self.restarts
        self._server = server
        threading.Thread(target=server.serve_forever, name="control", daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# --- `make restart` ---------------------------------------------------------------------------


def request_restart(state: traffic.RunState, out: IO[str] = sys.stdout) -> int:
    """Ask the `make up` of state to restart its processes, printing its progress; 0 on success."""
    if not state.control:
        raise ConfigError("this `make up` has no control socket: start it again with `make up`")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(state.control)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ConfigError(
                f"the `make up` on port {state.gateway_port} does not take a restart yet: it is "
                "still starting (wait for its URLs) or stopping"
            ) from None
        sock.sendall(b'{"command": "restart"}\n')
        with sock.makefile("r", encoding="utf-8") as answers:
            for line in answers:
                message: dict[str, Any] = json.loads(line)
                if "progress" in message:
                    print(message["progress"], file=out, flush=True)
                elif "done" in message:
                    return 0
                elif "error" in message:
                    print(f"error: {message['error']}", file=sys.stderr, flush=True)
                    return 1
    print("error: `make up` stopped before the restart finished", file=sys.stderr)
    return 1
