"""Start one model-service instance: python -m model_service --model-version canary --port 8092."""

from __future__ import annotations

import argparse
import sys

import uvicorn
from pydantic import ValidationError

from model_service.config import Settings
from model_service.model import Loading, ModelLoadError


def settings_error(exc: ValidationError) -> str:
    """Name each bad setting by the environment variable or flag that sets it."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        lines.append(
            f"setting MODEL_SERVICE_{field.upper()} (--{field.replace('_', '-')}): {error['msg']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_service", description=__doc__)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--model-version")
    parser.add_argument("--model-dir")
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
        from model_service.app import create_app

        model = loading.result()
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    uvicorn.run(
        create_app(settings, model),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
