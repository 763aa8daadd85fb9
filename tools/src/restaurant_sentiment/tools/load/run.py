"""Send a bounded number of requests through the gateway and measure answers, latency, memory."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx

from restaurant_sentiment.tools.localmesh.settings import UpSettings
from restaurant_sentiment.tools.localmesh.up import plan
from restaurant_sentiment.tools.paths import ROOT, check_model_folders
from restaurant_sentiment.tools.procs import (
    NotReady,
    free_port,
    percentile,
    pid_listening_on,
    rss_bytes,
    start,
    stop,
    wait_http,
)
from restaurant_sentiment.values import Values

REVIEWS = [
    "The pasta was perfect and the staff were lovely.",
    "Cold food, rude waiter, never again.",
    "Decent curry but the wait was far too long.",
    "Best seafood I have had in years!",
    "The dessert was stale and the coffee bitter.",
]


@dataclass
class Target:
    """Where the load goes: the gateway's address, its two hosts, the model-service ports."""

    gateway: str
    app_host: str
    service_host: str
    model_service_ports: dict[str, int]
    slugs: list[str]
    restaurants: list[str]


@dataclass
class Results:
    """Answers and latencies per kind of request."""

    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.statuses.setdefault(kind, Counter())[status] += 1
        self.latencies.setdefault(kind, []).append(seconds)

    @property
    def server_errors(self) -> int:
        return sum(n for c in self.statuses.values() for s, n in c.items() if s >= 500)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values()) + sum(self.errors.values())


def requests_plan(target: Target, count: int) -> Iterator[tuple[str, str, str, dict | None]]:
    """(kind, host, path, json body) for count requests: half /predict, half restaurant pages.

    The homepage `/` is rate limited per client address (20 a minute), so the app half goes to
    the restaurant pages, which are not.
    """
    slugs = itertools.cycle(target.slugs)
    reviews = itertools.cycle(REVIEWS)
    # A name outside the catalogue too: it must be counted as `other`, not as a new label.
    names = itertools.cycle([*target.restaurants[:3], "Elsewhere"])
    for index in range(count):
        if index % 2 == 0:
            body = {"review": next(reviews), "restaurantName": next(names)}
            yield "predict", target.service_host, "/predict", body
        else:
            yield "page", target.app_host, f"/restaurants/{next(slugs)}", None


async def send(target: Target, count: int, concurrency: int, deadline: float) -> Results:
    """Send count requests with concurrency workers; stop at the deadline (monotonic)."""
    results = Results()
    work = iter(requests_plan(target, count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(30.0)
    # No cookie jar: every request is a new visitor, so the gateway's weighted split applies.
    async with httpx.AsyncClient(
        base_url=target.gateway,
        limits=limits,
        timeout=timeout,
        trust_env=False,
        # httpx copies a Cookies object into a jar of its own; a jar's policy is kept.
        cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
    ) as client:

        async def worker() -> None:
            for kind, host, path, body in work:
                if time.monotonic() > deadline:
                    results.errors["deadline"] += 1
                    continue
                started = time.perf_counter()
                try:
                    if body is None:
                        response = await client.get(path, headers={"host": host})
                    else:
                        response = await client.post(path, json=body, headers={"host": host})
                    await response.aread()
                except httpx.HTTPError as exc:
                    results.errors[type(exc).__name__] += 1
                    continue
                results.record(kind, response.status_code, time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def memory(ports: dict[str, int]) -> dict[str, int]:
    """Resident memory of each model-service version, found by its listening port."""
    return {name: rss_bytes(pid_listening_on(port)) for name, port in ports.items()}


@contextlib.contextmanager
def local_mesh(
    values: Values, model_dir: Path, log: Path, log_level: str = "warning"
) -> Iterator[Target]:
    """Start the processes of `make up` (no Prometheus) on free loopback ports."""
    check_model_folders(values, model_dir)
    ports = {name: free_port() for name in values.version_names}
    settings = UpSettings(
        gateway_port=free_port(),
        mesh_port=free_port(),
        envoy_admin_port=free_port(),
        frontend_port=free_port(),
        model_service_ports=ports,
    )
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="load-") as tmp, log.open("ab") as sink:
        services = plan(values, settings, model_dir.resolve(), Path(tmp), None)
        try:
            for service in services:
                # Access logs go to a file: a full pipe would stall the servers under load.
                env = {**service.env, "MODEL_SERVICE_LOG_LEVEL": log_level}
                env["FRONTEND_LOG_LEVEL"] = log_level
                procs.append(start(service.command, env=env, cwd=ROOT, output=sink))
            for service, proc in zip(services, procs, strict=True):
                try:
                    wait_http(service.ready_url, timeout=120, proc=proc)
                except NotReady as exc:
                    raise RuntimeError(f"{exc}; see {log}") from None
            yield Target(
                gateway=f"http://127.0.0.1:{settings.gateway_port}",
                app_host=values.hosts.app,
                service_host=values.hosts.service,
                model_service_ports=ports,
                slugs=[r.slug for r in values.restaurants],
                restaurants=values.restaurant_names,
            )
        finally:
            for proc in procs:
                stop(proc)


def report(results: Results, seconds: float, before: dict[str, int], after: dict[str, int]) -> str:
    """The figures, one line each."""
    lines = [f"{results.total} requests in {seconds:.1f}s ({results.total / seconds:.0f}/s)"]
    for kind, latencies in sorted(results.latencies.items()):
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(results.statuses[kind].items()))
        lines.append(
            f"  {kind:8} {len(latencies):6} answers ({statuses}); "
            f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
        )
    if results.errors:
        lines.append(f"  no answer: {dict(results.errors)}")
    for name in before:
        growth = after[name] / before[name] - 1
        lines.append(
            f"  model-service {name}: RSS {before[name] / 2**20:.1f} MiB -> "
            f"{after[name] / 2**20:.1f} MiB ({growth:+.1%})"
        )
    return "\n".join(lines)


def verdicts(
    results: Results, before: dict[str, int], after: dict[str, int], max_growth: float
) -> list[str]:
    """The targets missed; empty when all are met."""
    missed = []
    if results.server_errors:
        missed.append(f"{results.server_errors} answers were 5xx (target: none)")
    if results.errors:
        missed.append(f"{sum(results.errors.values())} requests got no answer (target: none)")
    for name in before:
        growth = after[name] / before[name] - 1
        if growth >= max_growth:
            missed.append(
                f"model-service {name} memory grew {growth:.1%} (target: under {max_growth:.0%})"
            )
    return missed
