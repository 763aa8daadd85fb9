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
SPLIT_LABEL = "split"
OUTCOME_LABEL = "outcome"

# The gateway (and the mesh) set this request header on the weighted route only, i.e. when it
# assigns a client without a version cookie to a version; its value is the split in force, as
# `Values.split` spells it. Cookie routes remove it, so a client cannot forge an assignment.
ASSIGNMENT_HEADER = "x-model-assignment"
# What a split looks like on the wire and as a label value: "stable=70,canary=30".
SPLIT = r"^[a-z][a-z0-9-]{0,30}=[0-9]{1,3}(,[a-z][a-z0-9-]{0,30}=[0-9]{1,3}){0,9}$"

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
# Clients assigned to each version by the weighted route: the unit the split randomises, and so
# what the sample-ratio test counts (labelled with the split in force).
ASSIGNMENTS = "model_assignments_total"
# /predict/batch is API traffic, not a diner: its predictions and the feedback on them are
# counted apart, and never enter the sample-ratio test or the per-user accuracy.
BATCH_PREDICTIONS = "batch_predictions_total"
BATCH_FEEDBACK = "batch_feedback_total"
# The frontend's gauge of the configured share of each version, which the SRM alert compares with.
CONFIGURED_WEIGHT = "model_version_configured_weight"
# ... and its gauge naming the split in force (1), which the SRM rule joins assignments on.
CONFIGURED_SPLIT = "model_split_configured"


def counter_base(name: str) -> str:
    """The name to register a counter under, so that it is exposed as `name`."""
    return name.removesuffix("_total")
