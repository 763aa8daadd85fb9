"""A service of `make up`: how to start one of its processes and when that process is ready."""

from __future__ import annotations

from dataclasses import dataclass

# Stands for the listening port in a service's command and ready URL.
PORT = "{port}"


@dataclass(frozen=True)
class Service:
    """One supervised service: its command, the URL that answers 200 once it is ready, its
    environment, and, for a service `make restart` replaces, its first port and its cluster."""

    name: str
    argv: tuple[str, ...]
    ready: str
    env: dict[str, str]
    port: int | None = None
    cluster: str | None = None

    def command_at(self, port: int | None = None) -> list[str]:
        """The command of a process listening on port (default: the first port)."""
        chosen = str(port if port is not None else self.port)
        return [part.replace(PORT, chosen) for part in self.argv]

    def ready_url_at(self, port: int | None = None) -> str:
        return self.ready.replace(PORT, str(port if port is not None else self.port))

    @property
    def command(self) -> list[str]:
        return self.command_at()

    @property
    def ready_url(self) -> str:
        return self.ready_url_at()
