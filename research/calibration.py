"""Calibrated confidence for a binary model's log-odds z that never changes the verdict.

``PlattSlope`` is Platt scaling without an intercept, p(positive) = sigmoid(a * z), fitted as a
logistic regression on out-of-fold log-odds. With no intercept and a > 0 it is increasing in z and
crosses 1/2 exactly at z = 0, the threshold sklearn's ``predict`` uses, so the verdict stays the
model's own and the confidence (the calibrated probability of that verdict) is never below 1/2.
Two extensions keep both properties: the magnitude may be log-squashed first (sign(z) *
log1p(|z|)), and the slope may change at knots (a piecewise-linear increasing function of |z|
through 0). Gaussian naive Bayes needs both: its |z| runs from tens to about 1e9, the top regime
coming from words one class never had in training (variance ~ var_smoothing).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from research.models import decision, fit

SQUASHES = ("linear", "log")


def squash(z: np.ndarray, kind: str) -> np.ndarray:
    """g(|z|): the magnitude of the log-odds, log-squashed or not."""
    magnitude = np.abs(np.asarray(z, dtype=float))
    if kind == "linear":
        return magnitude
    if kind == "log":
        return np.log1p(magnitude)
    raise ValueError(f"unknown squash {kind!r}")


def basis(z: np.ndarray, kind: str, knots: tuple[float, ...]) -> np.ndarray:
    """sign(z) times the pieces of g(|z|) between the knots (a linear spline, odd in z)."""
    g = squash(z, kind)
    edges = (0.0, *knots, math.inf)
    pieces = [np.clip(g - lo, 0.0, hi - lo) for lo, hi in itertools.pairwise(edges)]
    return np.sign(np.asarray(z, dtype=float))[:, None] * np.column_stack(pieces)


def spline_one(z: float, kind: str, knots: tuple[float, ...], slopes: list[float]) -> float:
    """The calibrated logit of one log-odds z, as ``basis(...) @ slopes`` computes it."""
    g = abs(z) if kind == "linear" else math.log1p(abs(z))
    t = 0.0
    lo = 0.0
    for i, slope in enumerate(slopes):
        hi = knots[i] if i < len(knots) else math.inf
        t += slope * min(max(g - lo, 0.0), hi - lo)
        lo = hi
    return t if z > 0 else (-t if z < 0 else 0.0)


class PlattSlope(BaseEstimator):  # type: ignore[misc]
    """p(positive | z) = sigmoid(sign(z) * s(g(|z|))), s a piecewise-linear increasing spline
    through 0 (one slope per interval between ``knots``; no knots: plain Platt without offset)."""

    def __init__(self, squash: str = "linear", knots: tuple[float, ...] = ()) -> None:
        self.squash = squash
        self.knots = knots

    def fit(self, z: np.ndarray, y: np.ndarray) -> PlattSlope:
        x = basis(z, self.squash, tuple(self.knots))
        # A large C: a few parameters, thousands of points, no need to shrink them.
        lr = LogisticRegression(C=1e6, fit_intercept=False, max_iter=5000)
        lr.fit(x, np.asarray(y))
        self.slopes_ = [float(v) for v in lr.coef_[0]]
        if min(self.slopes_) <= 0.0:
            raise ValueError(
                f"calibration slopes {self.slopes_} are not all positive: the confidence would "
                "not grow with the log-odds"
            )
        return self

    def predict_proba(self, z: np.ndarray) -> np.ndarray:
        """Columns: p(negative), p(positive)."""
        t = basis(z, self.squash, tuple(self.knots)) @ np.asarray(self.slopes_)
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


class BinnedConfidence(BaseEstimator):  # type: ignore[misc]
    """Histogram binning of the verdict's accuracy on log1p(|z|), per verdict side.

    The confidence of a verdict is the out-of-fold accuracy of that side's verdicts in the
    same quantile bin of log1p(|z|), at least 1/2 so it never contradicts the verdict. Not
    monotone in |z|: Gaussian naive Bayes' accuracy is not either.
    """

    def __init__(self, bins: int = 8) -> None:
        self.bins = bins

    def fit(self, z: np.ndarray, y: np.ndarray) -> BinnedConfidence:
        z = np.asarray(z, dtype=float)
        right = (z > 0).astype(int) == np.asarray(y)
        g = np.log1p(np.abs(z))
        self.edges_: dict[int, list[float]] = {}
        self.values_: dict[int, list[float]] = {}
        for side in (0, 1):
            mask = (z > 0) == bool(side)
            inner = np.unique(np.quantile(g[mask], np.linspace(0, 1, self.bins + 1)[1:-1]))
            index = np.searchsorted(inner, g[mask], side="right")
            values = []
            for b in range(len(inner) + 1):
                hits = right[mask][index == b]
                values.append(max(0.5, float(hits.mean())) if len(hits) else 0.5)
            self.edges_[side] = inner.tolist()
            self.values_[side] = values
        return self

    def confidence(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        g = np.log1p(np.abs(z))
        out = np.empty(len(z))
        for side in (0, 1):
            mask = (z > 0) == bool(side)
            index = np.searchsorted(np.asarray(self.edges_[side]), g[mask], side="right")
            out[mask] = np.asarray(self.values_[side])[index]
        return out


def describe(calibrator: PlattSlope | BinnedConfidence) -> str:
    """A one-line description of a fitted calibration."""
    if isinstance(calibrator, BinnedConfidence):
        return (
            f"binned on log1p|z|, {calibrator.bins} bins a side: negative verdicts "
            f"{[round(v, 3) for v in calibrator.values_[0]]}, positive "
            f"{[round(v, 3) for v in calibrator.values_[1]]}"
        )
    return (
        f"Platt without offset on {calibrator.squash} |z|, knots {tuple(calibrator.knots)}, "
        f"slopes {[round(v, 4) for v in calibrator.slopes_]}"
    )
