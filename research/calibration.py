"""Calibrated confidence for a binary model's log-odds z that never changes the verdict.

``PlattSlope`` is Platt scaling without an intercept, p(positive) = sigmoid(a * g(z)), fitted as a
one-feature logistic regression on out-of-fold log-odds. With no intercept and a > 0 it is
increasing in z and crosses 1/2 exactly at z = 0, the threshold sklearn's ``predict`` uses, so the
verdict stays the model's own and the confidence (the calibrated probability of that verdict) is
never below 1/2. ``g`` may squash the log-odds first (``log``: sign(z) * log1p(|z|)), which keeps
both properties and suits Gaussian naive Bayes, whose z runs into the hundreds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from research.models import decision, fit

SQUASHES = ("linear", "log")


def squash(z: np.ndarray, kind: str) -> np.ndarray:
    if kind == "linear":
        return np.asarray(z, dtype=float)
    if kind == "log":
        return np.sign(z) * np.log1p(np.abs(z))
    raise ValueError(f"unknown squash {kind!r}")


def squash_one(z: float, kind: str) -> float:
    """The same as ``squash`` on one float, for the table scorer."""
    if kind == "linear":
        return z
    return math.copysign(math.log1p(abs(z)), z) if z != 0.0 else 0.0


class PlattSlope(BaseEstimator):  # type: ignore[misc]
    """p(positive | z) = sigmoid(slope_ * g(z)); ``intercept=True`` fits a free Platt offset too
    (kept only to measure what the zero-crossing constraint costs)."""

    def __init__(self, squash: str = "linear", intercept: bool = False) -> None:
        self.squash = squash
        self.intercept = intercept

    def fit(self, z: np.ndarray, y: np.ndarray) -> PlattSlope:
        x = squash(np.asarray(z, dtype=float), self.squash).reshape(-1, 1)
        # A large C: two parameters at most, thousands of points, no need to shrink them.
        lr = LogisticRegression(C=1e6, fit_intercept=self.intercept, max_iter=1000)
        lr.fit(x, np.asarray(y))
        self.slope_ = float(lr.coef_[0, 0])
        self.offset_ = float(lr.intercept_[0]) if self.intercept else 0.0
        if self.slope_ <= 0.0:
            raise ValueError("calibration slope is not positive: the model is worse than chance")
        return self

    def predict_proba(self, z: np.ndarray) -> np.ndarray:
        """Columns: p(negative), p(positive)."""
        t = self.slope_ * squash(np.asarray(z, dtype=float), self.squash) + self.offset_
        positive = 1.0 / (1.0 + np.exp(-np.clip(t, -700.0, 700.0)))
        return np.column_stack([1.0 - positive, positive])

    def confidence(self, z: np.ndarray) -> np.ndarray:
        """The calibrated probability of the verdict sklearn's predict gives (z > 0 positive)."""
        positive = self.predict_proba(z)[:, 1]
        return np.where(np.asarray(z) > 0, positive, 1.0 - positive)


def out_of_fold_decision(
    build: Any, texts: list[str], labels: list[int], folds: int = 5, seed: int = 42
) -> np.ndarray:
    """Log-odds of each text from a model fitted on the other folds (``build()`` -> pair)."""
    y = np.asarray(labels)
    z = np.zeros(len(texts))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(texts, y):
        pair = fit(build(), [texts[i] for i in train_idx], list(y[train_idx]))
        z[test_idx] = decision(pair, [texts[i] for i in test_idx])
    return z


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """ECE over the predicted class's probability, ``bins`` equal-width bins on [0, 1]."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - confidence[mask].mean())
    return total / len(confidence)
