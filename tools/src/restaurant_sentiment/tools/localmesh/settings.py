"""Local ports of `make up`, read from the environment and checked before anything starts."""

from __future__ import annotations

import errno
import socket
from typing import Annotated

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from restaurant_sentiment.values import ConfigError, Values, describe_errors

Port = Annotated[int, Field(ge=1, le=65535)]


class UpSettings(BaseSettings):
    """Ports of the local processes; each is an environment variable of the same name."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    gateway_port: Port = 8080
    mesh_port: Port = 8094
    envoy_admin_port: Port = 8095
    frontend_port: Port = 8093
    prometheus_port: Port = 9090
    model_service_ports: dict[str, Port] = {"stable": 8091, "canary": 8092}


def load_settings() -> UpSettings:
    """Read the settings from the environment; raise ConfigError naming the variable."""
    try:
        return UpSettings()
    except SettingsError:
        # The only structured (JSON) setting; pydantic-settings reports it without the value.
        raise ConfigError(
            "MODEL_SERVICE_PORTS: not a JSON object of version to port, "
            'e.g. MODEL_SERVICE_PORTS=\'{"stable": 8091, "canary": 8092}\''
        ) from None
    except ValidationError as exc:
        # The field names are the environment variables, upper-cased.
        named = []
        for line in describe_errors(exc).splitlines():
            path, detail = line.split(": ", 1)
            variable, _, key = path.partition(".")
            named.append(variable.upper() + (f"[{key}]" if key else "") + ": " + detail)
        raise ConfigError("invalid environment:\n" + "\n".join(named)) from None


def port_plan(settings: UpSettings, values: Values, prometheus: bool) -> dict[str, int]:
    """Map each environment variable that sets a port to its port, checked for unknown versions."""
    unknown = sorted(set(settings.model_service_ports) - set(values.version_names))
    if unknown:
        raise ConfigError(
            f"MODEL_SERVICE_PORTS: unknown version(s) {', '.join(unknown)}; "
            f"the values file defines {', '.join(values.version_names)}"
        )
    plan = {
        "GATEWAY_PORT": settings.gateway_port,
        "MESH_PORT": settings.mesh_port,
        "ENVOY_ADMIN_PORT": settings.envoy_admin_port,
        "FRONTEND_PORT": settings.frontend_port,
    }
    for name in values.version_names:
        if name not in settings.model_service_ports:
            raise ConfigError(
                f"MODEL_SERVICE_PORTS: no port for version {name!r} "
                f"(set it as JSON, e.g. MODEL_SERVICE_PORTS='{{\"{name}\": 8096}}')"
            )
        plan[f"MODEL_SERVICE_PORTS[{name}]"] = settings.model_service_ports[name]
    if prometheus:
        plan["PROMETHEUS_PORT"] = settings.prometheus_port
    seen: dict[int, str] = {}
    for setting, port in plan.items():
        if port in seen:
            raise ConfigError(f"{setting} and {seen[port]} are both port {port}: pick another")
        seen[port] = setting
    return plan


def check_ports_free(plan: dict[str, int], host: str = "127.0.0.1") -> None:
    """Fail at once, naming the port, when another process (another `make up`?) holds one."""
    for setting, port in plan.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # The servers set SO_REUSEADDR too: only a live listener should count as busy.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(
                        f"port {port} ({setting}) is already in use: is `make up` already "
                        f"running? Stop it, or set {setting.split('[')[0]} to a free port."
                    ) from None
                raise ConfigError(
                    f"port {port} ({setting}) cannot be used: {exc.strerror}"
                ) from None
