"""`python -m experiment`: decide whether the canary wins, or simulate labelled traffic."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from restaurant_sentiment.experiment.analysis import analyse
from restaurant_sentiment.experiment.config import ConfigError, load_config
from restaurant_sentiment.experiment.sources import SourceError, collect, validate_window
from restaurant_sentiment.tools.experiment.report import format_analysis, format_simulation
from restaurant_sentiment.tools.experiment.simulate import (
    SimulationError,
    held_out,
    load_reviews,
    simulate,
)
from restaurant_sentiment.tools.experiment.store import from_store
from restaurant_sentiment.tools.paths import CHART_VALUES as DEFAULT_VALUES
from restaurant_sentiment.tools.paths import CORPUS
from restaurant_sentiment.values import load_values

MAX_REVIEWS = 100_000
MAX_CLIENTS = 10_000


def _bounded_int(low: int, high: int) -> type[int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse  # type: ignore[return-value]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be above zero")
    return value


def _window(text: str) -> str | None:
    if text.lower() in {"none", "all", ""}:
        return None
    try:
        return validate_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def running_store() -> str | None:
    """The feedback store of the `make up` running on GATEWAY_PORT, if one runs."""
    from restaurant_sentiment.tools.localmesh.settings import load_settings
    from restaurant_sentiment.tools.localmesh.traffic import live_state
    from restaurant_sentiment.values import ConfigError as MeshConfigError

    try:
        state = live_state(load_settings().gateway_port)
    except MeshConfigError:
        return None
    return state.feedback_store if state is not None and state.feedback_store else None


def default_metrics_urls() -> list[str]:
    """The /metrics of the model-services behind the local gateway: those of the `make up`
    running on GATEWAY_PORT (at addresses that follow `make restart`), else MODEL_SERVICE_PORTS."""
    from pydantic_settings import SettingsError

    from restaurant_sentiment.tools.localmesh.settings import load_settings
    from restaurant_sentiment.tools.localmesh.traffic import live_state
    from restaurant_sentiment.values import ConfigError as MeshConfigError

    try:
        settings = load_settings()
    except MeshConfigError as exc:
        raise ConfigError(str(exc)) from None
    except SettingsError:
        raise ConfigError('MODEL_SERVICE_PORTS must be JSON such as {"stable": 8091}') from None
    state = live_state(settings.gateway_port)
    if state is not None:
        return state.metrics_urls()
    return [f"http://127.0.0.1:{port}/metrics" for port in settings.model_service_ports.values()]


def values_for_decision(given: Path | None) -> Path:
    """The values given, else those of the `make up` running on GATEWAY_PORT (with the weights
    a promote, rollback or split put on its gateway), else the chart's."""
    if given is not None:
        return given
    from restaurant_sentiment.tools.localmesh.settings import load_settings
    from restaurant_sentiment.tools.localmesh.traffic import values_in_force

    return values_in_force(load_settings().gateway_port, DEFAULT_VALUES)


def _decide(args: argparse.Namespace) -> int:
    values = values_for_decision(args.values)
    config = load_config(values, control=args.control, treatment=args.treatment)
    prometheus_url = args.prometheus_url
    metrics_urls = args.metrics_url or []
    store = args.store
    if not prometheus_url and not metrics_urls and not store:
        prometheus_url = os.environ.get("PROMETHEUS_URL") or None
        if not prometheus_url:
            store = running_store()
            if not store:
                metrics_urls = default_metrics_urls()
    if store:
        password = os.environ.get("MODEL_SERVICE_FEEDBACK_STORE_PASSWORD") or None
        observation = asyncio.run(from_store(store, config.split, password))
    else:
        observation = asyncio.run(
            collect(prometheus_url, metrics_urls, args.window, split=config.split)
        )
    analysis = analyse(observation, config)
    if args.json:
        print(json.dumps(analysis.model_dump(mode="json"), indent=2))
    else:
        print(format_analysis(analysis))
        print(f"Weights and thresholds: {values}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    reviews = held_out(load_reviews(args.data))
    values = load_values(args.values)
    host = args.host_header or values.hosts.service
    bar = tqdm(
        total=args.reviews, unit="review", file=sys.stderr, disable=args.quiet, desc="simulating"
    )
    with bar:
        report = asyncio.run(
            simulate(
                args.gateway,
                reviews,
                restaurants=values.restaurant_names,
                host_header=host,
                clients=args.clients,
                total=args.reviews,
                time_limit=args.time_limit,
                seed=args.seed,
                concurrency=args.concurrency,
                api_calls=args.api_calls,
                batch=args.batch,
                progress=bar.update,
            )
        )
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        print(f"{len(reviews)} held-out reviews from {args.data}, sent through {args.gateway}")
        print(format_simulation(report))
    return 1 if report.timed_out or report.predictions == 0 else 0


def build_parser() -> argparse.ArgumentParser:
    """The command line: `decide` and `simulate`."""
    parser = argparse.ArgumentParser(prog="python -m experiment", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    decide = commands.add_parser(
        "decide",
        help="analyse feedback per version and print PROMOTE, ROLLBACK or CONTINUE with the reason",
        description="Reads counts from Prometheus (--prometheus-url, else PROMETHEUS_URL) or, "
        "without one, from the feedback store (--store, else the running `make up`'s), or from "
        "each model-service's /metrics (--metrics-url, else the local gateway's upstreams from "
        "MODEL_SERVICE_PORTS).",
    )
    source = decide.add_mutually_exclusive_group()
    source.add_argument("--prometheus-url", help="base URL of the Prometheus HTTP API")
    source.add_argument(
        "--metrics-url", action="append", help="a model-service /metrics URL (repeat for each)"
    )
    source.add_argument(
        "--store",
        help="the model-services' feedback store (sqlite:///PATH or redis://...): exact counts "
        "that survive restarts (default without Prometheus: the running `make up`'s store)",
    )
    decide.add_argument(
        "--window",
        type=_window,
        default="7d",
        help="Prometheus range over which counters increase, e.g. 2h or 7d; 'all' sums the "
        "raw counters, which restart from zero with each pod (default: 7d)",
    )
    decide.add_argument(
        "--values",
        type=Path,
        help="values file (default: the running `make up`'s live values, else the chart's)",
    )
    decide.add_argument("--control", default="stable", help="version compared against")
    decide.add_argument("--treatment", default="canary", help="version under test")
    decide.add_argument("--json", action="store_true", help="print the analysis as JSON")
    decide.set_defaults(handler=_decide)

    sim = commands.add_parser(
        "simulate",
        help="send held-out labelled reviews through the gateway as distinct clients, "
        "with feedback",
    )
    sim.add_argument(
        "--gateway",
        default=f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}",
        help="gateway base URL (default: http://127.0.0.1:$GATEWAY_PORT, port 8080)",
    )
    sim.add_argument(
        "--host-header", help="Host header for the model-service (default: hosts.service)"
    )
    sim.add_argument("--data", type=Path, default=CORPUS)
    sim.add_argument("--values", type=Path, default=DEFAULT_VALUES, help="Helm values file")
    sim.add_argument(
        "--clients",
        type=_bounded_int(1, MAX_CLIENTS),
        default=1000,
        help="distinct users, each with its own cookie jar (default: 1000, one review each, "
        "which keeps the sample-ratio test exact)",
    )
    sim.add_argument("--reviews", type=_bounded_int(1, MAX_REVIEWS), default=1000)
    sim.add_argument(
        "--time-limit", type=_positive_float, default=300.0, help="seconds before stopping"
    )
    sim.add_argument("--seed", type=int, default=7, help="seed of review order and restaurants")
    sim.add_argument(
        "--concurrency",
        type=_bounded_int(1, 256),
        default=16,
        help="reviews in flight at once (default: 16)",
    )
    sim.add_argument(
        "--api-calls",
        type=_bounded_int(0, MAX_REVIEWS),
        default=0,
        help="cookieless /predict calls mixed in, as API clients make them (default: 0)",
    )
    sim.add_argument(
        "--batch",
        type=_bounded_int(0, 1000),
        default=0,
        help="reviews of one /predict/batch call mixed in (default: 0, none)",
    )
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim.set_defaults(handler=_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors become one message on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (ConfigError, SourceError, SimulationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
