"""`python -m load`: bounded loopback load through the gateway; non-zero on a missed target."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from restaurant_sentiment.tools.load.run import (
    Target,
    local_mesh,
    memory,
    report,
    send,
    verdicts,
)
from restaurant_sentiment.tools.localmesh.settings import load_settings
from restaurant_sentiment.tools.localmesh.traffic import live_state
from restaurant_sentiment.tools.paths import CHART_VALUES, ROOT
from restaurant_sentiment.values import ConfigError, load_values

WARM_UP = 500


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m load", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000, help="requests to send")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument(
        "--gateway",
        help="a running `make up` gateway, e.g. http://127.0.0.1:8080 (its model-service ports "
        "come from its run state, else MODEL_SERVICE_PORTS); without it the local mesh is "
        "started on free ports",
    )
    parser.add_argument("--model-dir", type=Path, default=ROOT / "ml-model")
    parser.add_argument("--max-seconds", type=float, default=900, help="give up after this")
    parser.add_argument("--max-memory-growth", type=float, default=0.10)
    parser.add_argument("--log", type=Path, default=ROOT / "test-artefacts" / "load.log")
    args = parser.parse_args(argv)
    if not (1 <= args.requests <= 1_000_000) or not (1 <= args.concurrency <= 1024):
        parser.error("--requests must be 1..1000000 and --concurrency 1..1024")
    if args.gateway and not args.gateway.startswith(("http://127.", "http://localhost")):
        parser.error("--gateway must be a loopback address: load is never sent elsewhere")
    return args


@contextlib.contextmanager
def target_of(args: argparse.Namespace) -> Iterator[Target]:
    values = load_values(CHART_VALUES)
    if args.gateway:
        gateway = args.gateway.rstrip("/")
        # The processes serving now: `make restart` moves them to other ports.
        state = live_state(urlsplit(gateway).port or 80)
        ports = state.model_service_ports if state else load_settings().model_service_ports
        yield Target(
            gateway=gateway,
            app_host=values.hosts.app,
            service_host=values.hosts.service,
            model_service_ports={n: ports[n] for n in values.version_names},
            slugs=[r.slug for r in values.restaurants],
            restaurants=values.restaurant_names,
        )
        return
    args.log.parent.mkdir(parents=True, exist_ok=True)
    print(f"starting the local mesh (logs in {args.log})", flush=True)
    with local_mesh(values, args.model_dir, args.log) as target:
        yield target


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    deadline = time.monotonic() + args.max_seconds
    try:
        with target_of(args) as target:
            print(f"warming up with {WARM_UP} requests", flush=True)
            warm = asyncio.run(send(target, WARM_UP, args.concurrency, deadline))
            if warm.errors or warm.server_errors:
                print(report(warm, 1, {}, {}), file=sys.stderr)
                print("the target does not answer; is the gateway up?", file=sys.stderr)
                return 1
            before = memory(target.model_service_ports)
            print(f"sending {args.requests} requests, {args.concurrency} at a time", flush=True)
            started = time.monotonic()
            results = asyncio.run(send(target, args.requests, args.concurrency, deadline))
            seconds = time.monotonic() - started
            after = memory(target.model_service_ports)
    except (ConfigError, LookupError, RuntimeError) as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(report(results, seconds, before, after))
    missed = verdicts(results, before, after, args.max_memory_growth)
    for line in missed:
        print(f"MISSED: {line}", file=sys.stderr)
    if not missed:
        print("all targets met: no 5xx, every request answered, memory growth within bounds")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
