"""Run wrk (Debian's /usr/bin/wrk 4.1) against one URL and read its figures."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

POST_SCRIPT = Path(__file__).with_name("post.lua")
BODIES_SCRIPT = Path(__file__).with_name("bodies.lua")
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_TOTAL = re.compile(r"^\s+(\d+) requests in", re.MULTILINE)


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed something that could not be read."""


@dataclass(frozen=True)
class Request:
    """One kind of request: a URL on loopback, the Host header, and for a POST its body.

    `bodies`, a file of JSON documents one a line, makes each request a JSON POST with the next.
    """

    url: str
    host: str
    body: str | None = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    bodies: Path | None = None


@dataclass(frozen=True)
class Figures:
    """What wrk measured: requests a second, median and 99th percentile latency, failures."""

    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    failed: int

    @property
    def tail(self) -> float:
        """How much slower the 99th percentile is than the median."""
        return self.p99_ms / self.p50_ms if self.p50_ms else float("inf")


def wrk_binary() -> str:
    """The wrk on the PATH; WrkError naming the package when there is none."""
    found = shutil.which("wrk")
    if found is None:
        raise WrkError("wrk is not on the PATH (Debian/Ubuntu: `sudo apt-get install wrk`)")
    return found


def command(request: Request, seconds: float, connections: int) -> list[str]:
    """wrk's arguments: one thread, `connections` keep-alive connections, latency percentiles."""
    args = [wrk_binary(), "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    args += ["-H", f"Host: {request.host}"]
    for name, value in request.headers:
        args += ["-H", f"{name}: {value}"]
    if request.bodies is not None:
        args += ["-s", str(BODIES_SCRIPT)]
    elif request.body is not None:
        args += ["-s", str(POST_SCRIPT)]
    return [*args, request.url]


def run(request: Request, seconds: float, connections: int) -> Figures:
    """Load one URL for `seconds` and return wrk's figures."""
    env = dict(os.environ)
    if request.bodies is not None:
        env["WRK_BODIES"] = str(request.bodies)
    elif request.body is not None:
        env.update(WRK_BODY=request.body, WRK_CONTENT_TYPE=request.content_type)
    result = subprocess.run(
        command(request, seconds, connections),
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    if result.returncode != 0:
        raise WrkError(f"wrk failed ({result.returncode}): {result.stderr.strip()}")
    return parse(result.stdout)


def parse(output: str) -> Figures:
    """The figures in wrk's `--latency` report."""
    rate = _RATE.search(output)
    total = _TOTAL.search(output)
    percentiles = {
        m.group(1): float(m.group(2)) * _UNITS[m.group(3)] for m in _PERCENTILE.finditer(output)
    }
    if rate is None or total is None or set(percentiles) != {"50", "99"}:
        raise WrkError(f"could not read wrk's report:\n{output}")
    failed = 0
    if (non_2xx := _NON_2XX.search(output)) is not None:
        failed += int(non_2xx.group(1))
    if (errors := _SOCKET_ERRORS.search(output)) is not None:
        failed += sum(int(n) for n in errors.groups())
    return Figures(
        requests=int(total.group(1)),
        rate=float(rate.group(1)),
        p50_ms=percentiles["50"],
        p99_ms=percentiles["99"],
        failed=failed,
    )
