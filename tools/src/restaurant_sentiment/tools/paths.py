"""Where things live in a checkout: the tools run from the repository, never in an image."""

from __future__ import annotations

from pathlib import Path

from restaurant_sentiment.values import ConfigError, Values

# tools/src/restaurant_sentiment/tools/paths.py -> the repository root.
ROOT = Path(__file__).resolve().parents[4]
CHART = ROOT / "deploy" / "helm" / "restaurant-sentiment"
CHART_VALUES = CHART / "values.yaml"
PROMETHEUS_RULES = CHART / "files" / "prometheus-rules.yaml"
MODEL_DIR = ROOT / "ml-model"
CORPUS = ROOT / "data" / "restaurant_reviews.tsv"
ARTEFACTS = ROOT / "test-artefacts"


def check_model_folders(values: Values, model_dir: Path) -> None:
    """Fail unless every version has its trained model folder `<model_dir>/<name>`."""
    for index, version in enumerate(values.model_service.versions):
        folder = model_dir / version.name
        if not folder.is_dir():
            raise ConfigError(
                f"modelService.versions[{index}].name: unknown version {version.name!r}: "
                f"no model folder {folder} (train it with `make models`)"
            )
