"""Start one model-service instance: `model-service --model-version canary --port 8092`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from restaurant_sentiment.model_service.config import Settings, setting_name
from restaurant_sentiment.model_service.model import Loading, ModelLoadError


def settings_error(exc: ValidationError) -> str:
    """Name each bad setting by the environment variable or flag that sets it."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        if field:
            flag = f"--{field.replace('_', '-')}"
            lines.append(f"setting {setting_name(field)} ({flag}): {message}")
        else:
            # A check of the whole configuration: the values file is the only one.
            lines.append(f"setting {setting_name('values_file')} (--values-file): {message}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model-service", description=__doc__)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--model-version")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--values-file", type=Path, help="the chart's values (catalogue)")
    parser.add_argument("--log-level")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"error: invalid configuration\n{settings_error(exc)}", file=sys.stderr)
        return 2
    try:
        # The model loads in a child process while this one imports the web stack.
        loading = Loading(settings.model_dir, settings.model_version)
        from restaurant_sentiment.model_service.app import create_app

        model = loading.result()
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    uvicorn.run(
        create_app(settings, model),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # The app writes its own one-line access log when MODEL_SERVICE_ACCESS_LOG is set.
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
