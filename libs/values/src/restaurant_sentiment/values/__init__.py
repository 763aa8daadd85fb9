"""The Helm chart's values, typed: the one reading that services and tools share.

The chart's `values.yaml` is the single source of the hosts, model versions and weights, the
sticky cookie, the rate limit, the restaurant catalogue and the experiment's thresholds. Services
read the file a setting names (mounted in the cluster and in compose, passed by `make up`)::

    values = load_values(Path(os.environ["MODEL_SERVICE_VALUES_FILE"]))
    values.restaurant_names, values.weights, values.model_service.cookie.name
"""

from restaurant_sentiment.values.load import (
    ConfigError,
    ValuesFile,
    describe_errors,
    load_values,
    parse_values,
    read_raw,
    write_values,
)
from restaurant_sentiment.values.model import (
    Cookie,
    Drain,
    Gateway,
    Hosts,
    ModelService,
    OutlierDetection,
    RateLimit,
    Resilience,
    Restaurant,
    Retries,
    Rollout,
    Thresholds,
    Values,
    Version,
    slugify,
)

__all__ = [
    "ConfigError",
    "Cookie",
    "Drain",
    "Gateway",
    "Hosts",
    "ModelService",
    "OutlierDetection",
    "RateLimit",
    "Resilience",
    "Restaurant",
    "Retries",
    "Rollout",
    "Thresholds",
    "Values",
    "ValuesFile",
    "Version",
    "describe_errors",
    "load_values",
    "parse_values",
    "read_raw",
    "slugify",
    "write_values",
]
