"""Calibrated confidence for a binary model's log-odds z that never changes the verdict.

The verdict is always the model's own: positive exactly when z > 0 (sklearn's ``predict``). A
calibration only says how likely that verdict is right, so the confidence is never below 1/2.
sklearn's ``CalibratedClassifierCV`` cannot promise that: its sigmoid has an offset, which moves
the point where the probability crosses 1/2 away from z = 0, and isotonic regression can cross
it anywhere. Two forms that keep the verdict by construction:

- ``PlattSlope``: Platt scaling without an offset, p(positive) = sigmoid(a * z) with a > 0.
- ``BinnedConfidence``: histogram binning per verdict side: the confidence of a verdict is the
  accuracy of that side's verdicts in the same quantile bin of log(1 + |z|). Gaussian naive
  Bayes needs it: its |z| runs from tens to about 1e10 and its accuracy is not monotone in |z|.

Both are fitted on out-of-fold log-odds and reduce to plain tables (``table()``); serving applies
the tables with ``confidence_one`` or ``confidence_many``, the same arithmetic the fitted objects
use, without sklearn.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

import numpy as np

ECE_BINS = 10


class CalibrationError(ValueError):
    """Log-odds and labels from which no verdict-preserving calibration can be fitted."""


def confidence_one(z: float, table: dict[str, Any] | None) -> float:
    """The calibrated probability of the verdict for one log-odds (None: the plain sigmoid)."""
    if table is not None and table["type"] == "binned":
        side = 1 if z > 0 else 0
        return float(table["values"][side][bisect_right(table["edges"][side], math.log1p(abs(z)))])
    t = z if table is None else table["slope"] * z
    p = 1.0 / (1.0 + math.exp(-t)) if t > -700.0 else 0.0
    return p if z > 0 else 1.0 - p


def confidence_many(z: np.ndarray, table: dict[str, Any] | None) -> np.ndarray:
    """``confidence_one`` over an array of log-odds."""
    z = np.asarray(z, dtype=float)
    positive = z > 0
    if table is not None and table["type"] == "binned":
        g = np.log1p(np.abs(z))
        out = np.empty(len(z))
        for side, mask in ((0, ~positive), (1, positive)):
            index = np.searchsorted(np.asarray(table["edges"][side]), g[mask], side="right")
            out[mask] = np.asarray(table["values"][side], dtype=float)[index]
        return out
    t = z if table is None else table["slope"] * z
    p = 1.0 / (1.0 + np.exp(-np.clip(t, -700.0, 700.0)))
    return np.where(positive, p, 1.0 - p)


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE: the mean |accuracy - confidence| over equal-width bins of the verdict's probability,
    each bin weighted by its share of the reviews."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if len(confidence) == 0:
        raise CalibrationError("no reviews to measure the calibration error on")
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(index):
        mask = index == b
        total += mask.sum() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total / len(confidence))


class PlattSlope:
    """p(positive | z) = sigmoid(a * z): Platt scaling without an offset, a > 0."""

    method = "platt_slope"

    def fit(self, z: np.ndarray, y: np.ndarray) -> PlattSlope:
        from sklearn.linear_model import LogisticRegression

        # One parameter and thousands of points: a large C leaves it practically unshrunk.
        model = LogisticRegression(C=1e6, fit_intercept=False, max_iter=5000)
        model.fit(np.asarray(z, dtype=float).reshape(-1, 1), np.asarray(y))
        self.slope_ = float(model.coef_[0, 0])
        if self.slope_ <= 0.0:
            raise CalibrationError(
                f"the fitted slope {self.slope_:.4g} is not positive: the model's log-odds do "
                "not rank its verdicts"
            )
        return self

    def table(self) -> dict[str, Any]:
        return {"type": "platt", "slope": self.slope_}

    def confidence(self, z: np.ndarray) -> np.ndarray:
        """The calibrated probability of the verdict z > 0 (positive) or not."""
        return confidence_many(z, self.table())

    def describe(self) -> str:
        return f"Platt scaling without offset: p(positive) = sigmoid({self.slope_:.3f} z)"


class BinnedConfidence:
    """Per verdict side, quantile bins of log(1 + |z|) and each bin's accuracy (at least 1/2)."""

    method = "binned"

    def __init__(self, bins: int = 6) -> None:
        self.bins = bins

    def fit(self, z: np.ndarray, y: np.ndarray) -> BinnedConfidence:
        z = np.asarray(z, dtype=float)
        right = (z > 0).astype(int) == np.asarray(y)
        g = np.log1p(np.abs(z))
        self.edges_: list[list[float]] = []
        self.values_: list[list[float]] = []
        for side in (0, 1):
            mask = (z > 0) == bool(side)
            if not mask.any():
                raise CalibrationError(f"no {('negative', 'positive')[side]} verdicts to bin")
            inner = np.unique(np.quantile(g[mask], np.linspace(0, 1, self.bins + 1)[1:-1]))
            index = np.searchsorted(inner, g[mask], side="right")
            values = []
            for b in range(len(inner) + 1):
                hits = right[mask][index == b]
                values.append(max(0.5, float(hits.mean())) if len(hits) else 0.5)
            self.edges_.append(inner.tolist())
            self.values_.append(values)
        return self

    def table(self) -> dict[str, Any]:
        return {"type": "binned", "edges": self.edges_, "values": self.values_}

    def confidence(self, z: np.ndarray) -> np.ndarray:
        """The accuracy of the verdict's bin."""
        return confidence_many(z, self.table())

    def describe(self) -> str:
        def rounded(values: list[float]) -> list[float]:
            return [round(v, 3) for v in values]

        return (
            f"histogram binning of log(1+|z|), {self.bins} bins a side: negative verdicts "
            f"{rounded(self.values_[0])}, positive verdicts {rounded(self.values_[1])}"
        )


Calibrator = PlattSlope | BinnedConfidence
