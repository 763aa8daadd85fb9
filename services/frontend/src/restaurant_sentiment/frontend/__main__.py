"""`frontend`: run the web app with uvicorn; flags override the settings."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from restaurant_sentiment.frontend.config import Settings, describe_error


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line flags; each one left out keeps the environment's setting."""
    parser = argparse.ArgumentParser(
        prog="frontend", description="Restaurant-review sentiment web app."
    )
    parser.add_argument("--host", help="address to listen on (FRONTEND_HOST, 127.0.0.1)")
    parser.add_argument("--port", help="port to listen on (FRONTEND_PORT, 8083)")
    parser.add_argument("--model-service-url", help="model-service base URL (MODEL_SERVICE_URL)")
    parser.add_argument(
        "--values-file",
        help="the chart's values: catalogue, cookie, weights (FRONTEND_VALUES_FILE)",
    )
    parser.add_argument("--log-level", help="uvicorn log level (FRONTEND_LOG_LEVEL, info)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Validate the settings, then serve until stopped."""
    args = parse_args(argv)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = Settings(**overrides)
    except (ValidationError, SettingsError) as exc:
        print(f"frontend: {describe_error(exc)}", file=sys.stderr)
        return 2
    # Imported late: the app module reads templates and static files.
    from restaurant_sentiment.frontend.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=False,
        # The app writes its own one-line access log when FRONTEND_ACCESS_LOG is set.
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
