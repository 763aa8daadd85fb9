"""`make rollout`: the canary through the steps of `rollout:`, locally or with `helm upgrade`."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from restaurant_sentiment.experiment.sources import SourceError
from restaurant_sentiment.tools.localmesh import traffic
from restaurant_sentiment.tools.paths import CHART_VALUES
from restaurant_sentiment.tools.rollout.policy import rollback_weights, rollout_of, step_weights
from restaurant_sentiment.tools.rollout.run import (
    INTERRUPTED,
    HelmRelease,
    LocalGateway,
    RolloutError,
    Runner,
    StepLog,
    Target,
    default_log_path,
    describe_weights,
)
from restaurant_sentiment.tools.rollout.signals import (
    LocalSignals,
    PrometheusSignals,
    Signals,
    experiment_queries,
    istio_queries,
    window,
)
from restaurant_sentiment.values import ConfigError, Rollout, Values, load_values


def rule_lines(values: Values, rollout: Rollout) -> list[str]:
    """The decision rule of each step, with this configuration's numbers."""
    treatment = rollout.treatment
    return [
        f"Every {rollout.poll_seconds:g} s each step's own figures (counted from its start) are "
        "read and judged, first match wins:",
        f"  ROLLBACK  {treatment} answered more than {100 * rollout.max_error_rate:g}% of its "
        f"requests with a 5xx (judged from {rollout.min_requests_for_error_rate} requests on)",
        "  ROLLBACK  the step's assignments do not match its split "
        f"(sample-ratio test p < {values.experiment.srm_p_value:g})",
        f"  WAIT      fewer than {rollout.min_feedback_per_step} feedback events for a version",
        f"  ROLLBACK  the experiment decides ROLLBACK (P({treatment} better) <= "
        f"{values.experiment.rollback_probability:g})",
        "  ADVANCE   the experiment decides PROMOTE, or CONTINUE with "
        f"P({treatment} better) >= {rollout.no_harm_probability:g}",
        f"  WAIT      otherwise; ROLLBACK after {rollout.step_timeout_seconds:g} s without a "
        "verdict",
        f"A rollback sends all new clients, and those pinned to {treatment}, to {rollout.control}.",
    ]


def plan(
    values: Values,
    rollout: Rollout,
    target: Target,
    signals: Signals | None,
    namespace: str | None = None,
) -> str:
    """What `make rollout` would do, step by step; with Helm, each command and its PromQL."""
    helm = target if isinstance(target, HelmRelease) else None
    lines = [
        f"Progressive rollout of {rollout.treatment} against {rollout.control} on "
        f"{target.describe()}.",
        *rule_lines(values, rollout),
    ]
    if signals is not None:
        lines += [f"Figures: {line}" for line in signals.describe()]
    steps = rollout.analysed_steps
    span = window(rollout.poll_seconds)
    for number, percent in enumerate(steps, start=1):
        weights = step_weights(values, rollout, percent)
        split = values.with_weights(weights).split
        lines.append(f"step {number}/{len(steps)}: {describe_weights(weights)} (split {split})")
        if helm is not None:
            lines.append(f"  {traffic.format_command(helm.command(weights))}")
            lines.append(
                f"  decides on (PromQL of its first reading; the range grows to the time since "
                f"the step began, {span} here):"
            )
            queries = experiment_queries(split, span)
            if namespace is not None:
                queries += list(istio_queries(namespace, span).values())
            lines += [f"    {query}" for query in queries]
    full = step_weights(values, rollout, 100)
    lines.append(f"then: {describe_weights(full)} (the rollout is complete)")
    if helm is not None:
        lines.append(f"  {traffic.format_command(helm.command(full))}")
    back = rollback_weights(values, rollout)
    lines.append(f"on a rollback: {describe_weights(back)}")
    if helm is not None:
        lines.append(f"  {traffic.format_command(helm.command(back))}")
    return "\n".join(lines)


def _dry_run(args: argparse.Namespace) -> bool:
    return bool(args.dry_run) or os.environ.get("DRY_RUN", "") == "1"


def _prometheus_url(args: argparse.Namespace) -> str | None:
    return args.prometheus_url or os.environ.get("PROMETHEUS_URL") or None


def _kubernetes(args: argparse.Namespace) -> tuple[Values, Rollout, Target, Signals | None]:
    values_path = args.values or CHART_VALUES
    values = load_values(values_path)
    rollout = rollout_of(values)
    url = _prometheus_url(args)
    helm = shutil.which("helm")
    target = HelmRelease(helm or "helm", values_path, args.release, args.namespace)
    istio_queries(args.namespace, "1s")  # a bad NAMESPACE is named before anything runs
    if _dry_run(args):
        return values, rollout, target, PrometheusSignals(url or "$PROMETHEUS_URL", args.namespace)
    if url is None:
        raise ConfigError(
            "PROMETHEUS_URL: a rollout in Kubernetes reads its figures from Prometheus; set "
            "PROMETHEUS_URL (or --prometheus-url), or print the plan with DRY_RUN=1"
        )
    if helm is None:
        raise ConfigError("helm is not on the PATH: install it, or print the plan with DRY_RUN=1")
    return values, rollout, target, PrometheusSignals(url, args.namespace)


def _local(args: argparse.Namespace) -> tuple[Values, Rollout, Target, Signals | None]:
    from restaurant_sentiment.tools.localmesh.settings import load_settings

    port = load_settings().gateway_port
    target = LocalGateway(port)
    try:
        _, state = traffic.load_state(port)
    except ConfigError:
        if not _dry_run(args):
            raise
        values = load_values(args.values or CHART_VALUES)
        return values, rollout_of(values), target, None
    running = load_values(Path(state.values))
    values = load_values(args.values) if args.values else running
    if values.version_names != running.version_names:
        raise ConfigError(
            f"--values: its versions ({', '.join(values.version_names)}) are not those the "
            f"`make up` on port {port} serves ({', '.join(running.version_names)})"
        )
    urls = args.metrics_url or [
        f"http://127.0.0.1:{state.model_service_ports[name]}/metrics"
        for name in values.version_names
    ]
    signals = LocalSignals(urls, state.admin_port, _prometheus_url(args))
    return values, rollout_of(values), target, signals


def _run(args: argparse.Namespace) -> int:
    setup = _kubernetes if args.kubernetes else _local
    values, rollout, target, signals = setup(args)
    if _dry_run(args):
        print(plan(values, rollout, target, signals, args.namespace if args.kubernetes else None))
        return 0
    assert signals is not None
    log = StepLog(args.log or default_log_path())
    runner = Runner(values, rollout, target, signals, log)
    try:
        return asyncio.run(runner.run())
    except KeyboardInterrupt:
        runner.abort("interrupted: nobody is watching the treatment any more")
        return INTERRUPTED
    except RolloutError as exc:
        log.record("error", f"error: {exc}", reason=str(exc))
        try:
            runner.abort(f"the rollout could not go on: {exc}")
        except RolloutError as again:
            log.record("error", f"error: the rollback failed too: {again}", reason=str(again))
        return 2
    finally:
        log.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m restaurant_sentiment.tools.rollout",
        description="Move the treatment (canary) through the steps of the values' `rollout:`, "
        "judging each step on its own figures: advance on PROMOTE or on CONTINUE without sign "
        "of harm, roll back on ROLLBACK, a 5xx rate above the limit or a sample-ratio mismatch. "
        "Exit status: 0 reached 100%%, 1 rolled back, 2 bad input, 130 interrupted (rolled back).",
    )
    parser.add_argument(
        "--values",
        type=Path,
        help="values file with `rollout:` (default: the running `make up`'s, or the chart's)",
    )
    parser.add_argument(
        "--kubernetes", action="store_true", help="helm upgrade per step, figures from Prometheus"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan and change nothing (also DRY_RUN=1)"
    )
    parser.add_argument(
        "--prometheus-url", help="Prometheus to read (PROMETHEUS_URL); needed with --kubernetes"
    )
    parser.add_argument(
        "--metrics-url",
        action="append",
        help="a model-service /metrics URL (repeat; default: the running `make up`'s services)",
    )
    parser.add_argument(
        "--log", type=Path, help="JSON-lines log (default: .run/rollouts/rollout-<time>.jsonl)"
    )
    parser.add_argument(
        "--release",
        default=os.environ.get("RELEASE") or traffic.DEFAULT_RELEASE,
        help=f"Helm release (RELEASE, default {traffic.DEFAULT_RELEASE})",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("NAMESPACE") or traffic.DEFAULT_NAMESPACE,
        help=f"namespace of the release (NAMESPACE, default {traffic.DEFAULT_NAMESPACE})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ConfigError, SourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
