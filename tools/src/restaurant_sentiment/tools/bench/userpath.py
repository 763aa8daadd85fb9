"""The path a diner takes, measured through the gateway with wrk: `make bench-up`.

Starts the processes of `make up` on free loopback ports (no Prometheus), and a bare ASGI app
under the model-service's uvicorn settings, then loads each path for the same time at the same
concurrency, one after the other, and compares them in this one run (ratios hold on a shared
machine better than absolute figures):

- the review POST (htmx) reaches >= 0.5x POST /predict through the gateway, p99 <= 4x its p50;
- a restaurant page reaches >= 0.7x the frontend's /healthz through the gateway;
- the model-service's POST /predict reaches >= 0.5x the bare ASGI app, and >= 0.7x its own
  /healthz (both straight to one model-service process).

The homepage `/` is rate limited per client at the gateway, so no path here uses it.
Needs wrk (Debian/Ubuntu: `apt-get install wrk`). Exits 1 on a missed target, 2 when the stack
or wrk cannot run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx

from restaurant_sentiment.tools.bench import wrk
from restaurant_sentiment.tools.bench.targets import target_type
from restaurant_sentiment.tools.load.run import Target, local_mesh
from restaurant_sentiment.tools.paths import ARTEFACTS, CHART_VALUES, MODEL_DIR, ROOT
from restaurant_sentiment.tools.procs import NotReady, free_port, start, stop, wait_http
from restaurant_sentiment.values import ConfigError, load_values

REVIEW = "The pasta was divine but the waiter was rude."
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Ratio:
    """A target: `numerator` reaches at least `minimum` times `denominator` (requests/s)."""

    name: str
    numerator: str
    denominator: str
    minimum: float


# Paths by name; every figure and ratio below refers to these names.
PATHS = ("bare", "ms-healthz", "ms-predict", "predict", "healthz", "page", "review")
LABELS = {
    "bare": "bare ASGI app, POST (direct)",
    "ms-healthz": "model-service GET /healthz (direct)",
    "ms-predict": "model-service POST /predict (direct)",
    "predict": "POST /predict (service host, gateway)",
    "healthz": "GET /healthz (app host, gateway)",
    "page": "GET /restaurants/{slug} (gateway)",
    "review": "POST .../reviews, HX-Request (gateway)",
}
RATIOS = (
    Ratio("review-vs-predict", "review", "predict", 0.5),
    Ratio("page-vs-healthz", "page", "healthz", 0.7),
    Ratio("predict-vs-bare", "ms-predict", "bare", 0.5),
    Ratio("predict-vs-healthz", "ms-predict", "ms-healthz", 0.7),
)
# The review's 99th percentile may be at most this many times its median.
MAX_REVIEW_TAIL = 4.0


def requests_for(target: Target, model_service: str, bare: str) -> dict[str, wrk.Request]:
    """Each path as wrk sends it; no cookie anywhere, so the gateway's weighted split applies."""
    slug = target.slugs[0]
    restaurant = target.restaurants[0]
    predict = json.dumps({"review": REVIEW, "restaurantName": restaurant})
    app, service = target.app_host, target.service_host
    return {
        "bare": wrk.Request(f"{bare}/predict", "bench", predict),
        "ms-healthz": wrk.Request(f"{model_service}/healthz", "bench"),
        "ms-predict": wrk.Request(f"{model_service}/predict", "bench", predict),
        "predict": wrk.Request(f"{target.gateway}/predict", service, predict),
        "healthz": wrk.Request(f"{target.gateway}/healthz", app),
        "page": wrk.Request(f"{target.gateway}/restaurants/{slug}", app),
        "review": wrk.Request(
            f"{target.gateway}/restaurants/{slug}/reviews",
            app,
            urlencode({"review": REVIEW}),
            FORM,
            (("HX-Request", "true"),),
        ),
    }


def check_answers(requests: dict[str, wrk.Request]) -> None:
    """One request per path first: each must answer 200 with what a diner would see."""
    expected = {"ms-predict": '"prediction"', "predict": '"prediction"', "review": "experience"}
    with httpx.Client(timeout=10, trust_env=False) as client:
        for name, request in requests.items():
            headers = {"host": request.host, **dict(request.headers)}
            if request.body is None:
                response = client.get(request.url, headers=headers)
            else:
                headers["content-type"] = request.content_type
                response = client.post(request.url, content=request.body, headers=headers)
            if response.status_code != 200 or expected.get(name, "") not in response.text:
                raise RuntimeError(
                    f"{LABELS[name]} answered {response.status_code}: {response.text[:200]}"
                )


@contextmanager
def bare_app(log: Path) -> Iterator[str]:
    """The bare ASGI app on a free port, stopped when the block ends."""
    port = free_port()
    with log.open("ab") as sink:
        proc = start(
            [sys.executable, "-m", "restaurant_sentiment.tools.bench.bare", "--port", str(port)],
            cwd=ROOT,
            output=sink,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/", timeout=30, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def measure(
    requests: dict[str, wrk.Request], seconds: float, connections: int
) -> dict[str, wrk.Figures]:
    """Each path in turn, after a short warm-up of its own."""
    figures = {}
    for name in PATHS:
        wrk.run(requests[name], min(1.0, seconds), connections)
        figures[name] = wrk.run(requests[name], seconds, connections)
        print(f"  measured {LABELS[name]}", flush=True)
    return figures


def verdicts(
    figures: dict[str, wrk.Figures], minimums: dict[str, float], max_tail: float
) -> tuple[list[str], list[str]]:
    """(report lines of the ratios, the targets missed)."""
    lines, missed = [], []
    for name, figure in figures.items():
        if figure.failed:
            missed.append(f"{LABELS[name]}: {figure.failed} of {figure.requests} failed")
    for ratio in RATIOS:
        value = figures[ratio.numerator].rate / figures[ratio.denominator].rate
        minimum = minimums[ratio.name]
        ok = value >= minimum
        verdict = "ok" if ok else "MISSED"
        lines.append(f"  {ratio.name:<20} {value:5.2f}x  (target >= {minimum:g}x)  {verdict}")
        if not ok:
            missed.append(f"{ratio.name} {value:.2f}x < {minimum:g}x")
    tail = figures["review"].tail
    ok = tail <= max_tail
    lines.append(
        f"  {'review-p99-vs-p50':<20} {tail:5.2f}x  (target <= {max_tail:g}x)  "
        + ("ok" if ok else "MISSED")
    )
    if not ok:
        missed.append(f"review p99 {tail:.2f}x its p50 > {max_tail:g}x")
    return lines, missed


def table(figures: dict[str, wrk.Figures]) -> str:
    rows = [f"  {'path':<40} {'req/s':>8} {'p50':>9} {'p99':>9}"]
    for name, f in figures.items():
        rows.append(f"  {LABELS[name]:<40} {f.rate:>8.0f} {f.p50_ms:>6.1f} ms {f.p99_ms:>6.1f} ms")
    return "\n".join(rows)


parse_target = target_type([*(r.name for r in RATIOS), "review-p99-vs-p50"])


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m restaurant_sentiment.tools.bench.userpath",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--seconds", type=float, default=10.0, help="per path (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default 32)")
    parser.add_argument(
        "--target",
        type=parse_target,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a target, e.g. review-vs-predict=0.6",
    )
    parser.add_argument("--log", type=Path, default=ARTEFACTS / "bench-up.log")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.connections < 1:
        parser.error("--seconds must be > 0 and --connections >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    overrides = dict(args.target)
    minimums = {r.name: overrides.get(r.name, r.minimum) for r in RATIOS}
    max_tail = overrides.get("review-p99-vs-p50", MAX_REVIEW_TAIL)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    try:
        wrk.wrk_binary()
        values = load_values(CHART_VALUES)
        print(f"starting the local mesh and a bare ASGI app (logs in {args.log})", flush=True)
        # The services log at their default level, as `make up` runs them.
        with (
            local_mesh(values, args.model_dir, args.log, "info") as target,
            bare_app(args.log) as bare,
        ):
            port = next(iter(target.model_service_ports.values()))
            requests = requests_for(target, f"http://127.0.0.1:{port}", bare)
            check_answers(requests)
            print(
                f"wrk: 1 thread, {args.connections} connections, {args.seconds:g} s per path",
                flush=True,
            )
            figures = measure(requests, args.seconds, args.connections)
    except (ConfigError, NotReady, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"bench-up: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(table(figures))
    lines, missed = verdicts(figures, minimums, max_tail)
    print("\n".join(lines))
    if missed:
        print("Missed targets: " + "; ".join(missed))
        return 1
    print("All targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
