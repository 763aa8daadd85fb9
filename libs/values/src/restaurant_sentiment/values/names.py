"""Names that the chart, the services and the experiment must spell alike."""

from __future__ import annotations

# A version name is a folder, a pod label and a cookie value: DNS-label characters only.
VERSION_NAME = r"^[a-z][a-z0-9-]{0,30}$"
# Cookie-name characters that need no escaping in a regex or a header value.
COOKIE_NAME = r"^[A-Za-z0-9_-]{1,64}$"
HOST_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
# The restaurant label of every restaurant outside the catalogue, so label values stay bounded.
OTHER_RESTAURANT = "other"
# At most this many restaurants: each becomes a metric label value.
MAX_RESTAURANTS = 50

# Metric labels.
VERSION_LABEL = "model_version"
RESTAURANT_LABEL = "restaurant"

# The experiment's counters, as exposed (prometheus_client adds `_total` to a counter's name).
PREDICTIONS = "predictions_total"
POSITIVE_PREDICTIONS = "pos_predictions_total"
NEGATIVE_PREDICTIONS = "neg_predictions_total"
TRUE_POSITIVES = "true_pos_predictions_total"
TRUE_NEGATIVES = "true_neg_predictions_total"
FALSE_POSITIVES = "false_pos_predictions_total"
FALSE_NEGATIVES = "false_neg_predictions_total"
CORRECT_FEEDBACK = (TRUE_POSITIVES, TRUE_NEGATIVES)
INCORRECT_FEEDBACK = (FALSE_POSITIVES, FALSE_NEGATIVES)
ACCURACY = "model_accuracy"
# The frontend's gauge of the configured share of each version, which the SRM alert compares with.
CONFIGURED_WEIGHT = "model_version_configured_weight"


def counter_base(name: str) -> str:
    """The name to register a counter under, so that it is exposed as `name`."""
    return name.removesuffix("_total")
