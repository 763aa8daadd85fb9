"""Continuous experimentation: decide with statistics whether the canary model wins.

Typical use (the frontend's JSON endpoint, `make experiment`, `make promote`)::

    config = load_config()                        # thresholds and weights from values.yaml
    observation = await collect(prometheus_url, metrics_urls)
    analysis = analyse(observation, config)       # pydantic model; .decision, .reason
"""

from experiment.analysis import Analysis, Decision, analyse
from experiment.config import ConfigError, ExperimentConfig, Thresholds, load_config
from experiment.sources import (
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
    "from_metrics",
    "from_prometheus",
    "load_config",
]
