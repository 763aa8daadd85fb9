"""The model-service's OpenAPI document, committed for client generators: `make openapi`.

docs/openapi/model-service.json is what the service serves at /openapi.json with its default
settings; a test fails when the two differ, and `make openapi` writes it again.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from restaurant_sentiment.model_service.app import create_app
from restaurant_sentiment.model_service.config import Settings
from restaurant_sentiment.tools.paths import CHART_VALUES, MODEL_DIR, ROOT

DOCUMENT = ROOT / "docs" / "openapi" / "model-service.json"


def document() -> dict[str, Any]:
    """The OpenAPI document of the model-service with its default settings (nothing is loaded)."""
    # Settings that change the document are pinned to their defaults, whatever the environment.
    settings = Settings(values_file=CHART_VALUES, model_dir=MODEL_DIR, require_prediction_id=False)
    return create_app(settings).openapi()


def render() -> str:
    """The document as committed: indented, UTF-8, one trailing newline."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restaurant_sentiment.tools.openapi")
    parser.add_argument("--check", action="store_true", help="fail if the document is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.is_file() else ""
        if current != text:
            print(f"error: {DOCUMENT} is out of date (`make openapi`)", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
