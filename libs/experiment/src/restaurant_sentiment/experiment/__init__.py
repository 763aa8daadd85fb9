"""Continuous experimentation: decide with statistics whether the canary model wins.

Typical use (the frontend's JSON endpoint, `make experiment`, `make promote`)::

    config = config_from_values(values)           # thresholds and weights of the chart values
    observation = await collect(prometheus_url, metrics_urls)
    analysis = analyse(observation, config)       # pydantic model; .decision, .reason
"""

from restaurant_sentiment.experiment.analysis import Analysis, Decision, analyse
from restaurant_sentiment.experiment.config import (
    ConfigError,
    ExperimentConfig,
    Thresholds,
    config_from_values,
    load_config,
)
from restaurant_sentiment.experiment.sources import (
    Observation,
    SourceError,
    VersionCounts,
    collect,
    from_metrics,
    from_prometheus,
)

__all__ = [
    "Analysis",
    "ConfigError",
    "Decision",
    "ExperimentConfig",
    "Observation",
    "SourceError",
    "Thresholds",
    "VersionCounts",
    "analyse",
    "collect",
    "config_from_values",
    "from_metrics",
    "from_prometheus",
    "load_config",
]
