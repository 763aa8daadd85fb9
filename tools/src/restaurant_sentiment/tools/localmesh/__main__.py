"""Command line behind `make up`, `make restart`, `make promote`, `rollback` and `split`."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from restaurant_sentiment.tools.localmesh import gateway
from restaurant_sentiment.tools.paths import CHART_VALUES as DEFAULT_VALUES
from restaurant_sentiment.tools.paths import MODEL_DIR
from restaurant_sentiment.values import ConfigError, Values, load_values

COMPOSE_HEADER = """\
# Generated from deploy/helm/restaurant-sentiment/values.yaml by
#   python -m restaurant_sentiment.tools.localmesh render-envoy --upstreams compose \\
#     --out deploy/istio/envoy.yaml
# Do not edit: tests/mesh fails when this file drifts from the values.
"""


def compose_bootstrap(values: Values) -> dict[str, object]:
    """The Envoy bootstrap of a compose setup: containers named after the Deployments."""
    listen = gateway.Listen(
        gateway=gateway.Address("0.0.0.0", 8080),
        mesh=gateway.Address("0.0.0.0", 8094),
        admin=gateway.Address("127.0.0.1", 8095),
        stats=gateway.Address("0.0.0.0", 15090),
        access_log=True,
    )
    return gateway.build_bootstrap(values, gateway.compose_upstreams(values), listen)


def render_compose(values: Values) -> str:
    return COMPOSE_HEADER + yaml.safe_dump(compose_bootstrap(values), sort_keys=False, width=100)


def _render_envoy(args: argparse.Namespace) -> int:
    values = load_values(args.values)
    if args.upstreams == "compose":
        text = render_compose(values)
    else:
        from restaurant_sentiment.tools.localmesh.settings import load_settings

        settings = load_settings()
        listen = gateway.Listen(
            gateway=gateway.Address("127.0.0.1", settings.gateway_port),
            mesh=gateway.Address("127.0.0.1", settings.mesh_port),
            admin=gateway.Address("127.0.0.1", settings.envoy_admin_port),
        )
        ports = {n: settings.model_service_ports.get(n, 0) for n in values.version_names}
        missing = [n for n, p in ports.items() if not p]
        if missing:
            raise ConfigError(f"MODEL_SERVICE_PORTS: no port for version(s) {', '.join(missing)}")
        upstreams = gateway.local_upstreams(ports, settings.frontend_port)
        text = yaml.safe_dump(
            gateway.build_bootstrap(values, upstreams, listen), sort_keys=False, width=100
        )
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--out: cannot write {args.out}: {exc.strerror}") from None
    return 0


def _up(args: argparse.Namespace) -> int:
    from restaurant_sentiment.tools.localmesh import up
    from restaurant_sentiment.tools.localmesh.settings import load_settings

    values = load_values(args.values)
    return up.run(values, load_settings(), args.model_dir, args.values)


def _restart(args: argparse.Namespace) -> int:
    from restaurant_sentiment.tools.localmesh import restart, traffic
    from restaurant_sentiment.tools.localmesh.settings import load_settings

    port = load_settings().gateway_port
    _, state = traffic.load_state(port)
    print(f"restarting every service process of the `make up` on port {port}", flush=True)
    return restart.request_restart(state)


def _dry_run(args: argparse.Namespace) -> bool:
    return bool(args.dry_run) or os.environ.get("DRY_RUN", "") == "1"


def _weights_asked(args: argparse.Namespace, values: Values) -> dict[str, int]:
    from restaurant_sentiment.tools.localmesh import traffic

    if args.command == "split":
        if args.weights is None:
            return values.weights  # the values file's own split
        return traffic.parse_weights(args.weights, values)
    return traffic.winner_weights(values, args.version)


def _move_traffic(args: argparse.Namespace) -> int:
    """`promote` / `rollback` / `split`: new weights, locally or in Kubernetes."""
    from restaurant_sentiment.tools.localmesh import traffic

    if args.kubernetes:
        weights = _weights_asked(args, load_values(args.values))
        command = traffic.helm_command(args.values, weights, args.release, args.namespace)
        if _dry_run(args):
            print(traffic.format_command(command))
            return 0
        helm = shutil.which("helm")
        if helm is None:
            raise ConfigError(
                "helm is not on the PATH: install it, or print the command with DRY_RUN=1"
            )
        print(f"+ {traffic.format_command(command)}", flush=True)
        return subprocess.run([helm, *command[1:]], check=False).returncode
    from restaurant_sentiment.tools.localmesh.settings import load_settings

    port = load_settings().gateway_port
    _, state = traffic.load_state(port)
    weights = _weights_asked(args, load_values(Path(state.values)))
    if _dry_run(args):
        print(f"would give the gateway on port {port} the weights {traffic.describe(weights)} "
              f"(now {traffic.describe(state.weights)})")  # fmt: skip
        return 0
    state, weights = traffic.apply_local_weights(weights, port)
    retired = [name for name, weight in weights.items() if weight == 0]
    moved = (
        f"; clients pinned to {', '.join(retired)} move with their next request" if retired else ""
    )
    print(
        f"gateway on port {port}: {traffic.describe(weights)}{moved}. The experiment, its page "
        f"and gauge use these weights now, until `make up` restarts (it reads {state.values})."
    )
    return 0


def _helm_options(command: argparse.ArgumentParser) -> None:
    """What a traffic move needs to act on a release instead of the running `make up`."""
    command.add_argument(
        "--kubernetes", action="store_true", help="run `helm upgrade --reuse-values` instead"
    )
    command.add_argument(
        "--dry-run", action="store_true", help="print what would be done (also DRY_RUN=1)"
    )
    command.add_argument(
        "--release",
        default=os.environ.get("RELEASE") or "restaurant-sentiment",
        help="Helm release (RELEASE, default restaurant-sentiment)",
    )
    command.add_argument(
        "--namespace",
        default=os.environ.get("NAMESPACE") or "restaurant",
        help="namespace of the release (NAMESPACE, default restaurant)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localmesh",
        description="Run restaurant-sentiment locally behind an Envoy gateway generated from the "
        "Helm chart's values, so traffic behaves as with the chart's Istio resources.",
    )
    parser.add_argument(
        "--values", type=Path, default=DEFAULT_VALUES, help="the Helm chart's values file"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser(
        "up",
        help="run the whole app behind the Envoy gateway (ports from GATEWAY_PORT, MESH_PORT, "
        "ENVOY_ADMIN_PORT, FRONTEND_PORT, PROMETHEUS_PORT, MODEL_SERVICE_PORTS)",
    )
    up_parser.add_argument(
        "--model-dir", type=Path, default=MODEL_DIR, help="trained models, one folder each"
    )
    up_parser.set_defaults(handler=_up)
    restart_parser = commands.add_parser(
        "restart",
        help="replace every model-service and frontend process of the running `make up` "
        "(GATEWAY_PORT) one at a time, with the current code and models, dropping no request",
    )
    restart_parser.set_defaults(handler=_restart)
    render = commands.add_parser("render-envoy", help="print or write the Envoy bootstrap")
    render.add_argument("--upstreams", choices=["local", "compose"], default="local")
    render.add_argument("--out", type=Path, help="file to write (default: standard output)")
    render.set_defaults(handler=_render_envoy)
    for name, default, what in (
        ("promote", "canary", "the version that won"),
        ("rollback", "stable", "the version to go back to"),
    ):
        move = commands.add_parser(
            name,
            help=f"send all traffic to one version (default {default}): reload the running "
            "`make up` gateway without dropping requests, or `helm upgrade` with --kubernetes",
        )
        move.add_argument("version", nargs="?", default=default, help=f"{what} (default {default})")
        _helm_options(move)
        move.set_defaults(handler=_move_traffic)
    split = commands.add_parser(
        "split",
        help="set the weights of new traffic (default: the values file's): reload the running "
        "`make up` gateway without dropping requests, or `helm upgrade` with --kubernetes",
    )
    split.add_argument("--weights", help="e.g. stable=70,canary=30 (WEIGHTS); they must sum to 100")
    _helm_options(split)
    split.set_defaults(handler=_move_traffic)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C before the services started: nothing to stop.
        return 130


if __name__ == "__main__":
    sys.exit(main())
