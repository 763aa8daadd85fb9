"""Reducing a fitted version to plain tables, and scoring one review from them without sklearn.

Tables (all plain Python values; what a serving process would unpickle):

- ``classes``: [negative, positive]; ``kind``: "gnb" or "linear"; ``bias``: float.
- ``blocks``: the feature blocks in the vectoriser's column order, each a dict with ``type``:
  - "tfidf" over words: ``terms`` {term (a word, or a tuple of words for an n-gram):
    (weight, idf or GaussianNB square term)}, ``ngrams`` (low, high), ``sublinear``, ``l2``,
    ``binary``, ``min_len`` (1 for token pattern \\S+, 2 for sklearn's default);
  - "chars": the same over sklearn's ``char_wb`` n-grams, ``ngrams`` the character range;
  - "lexicon": ``lexicon`` {word: valence}, ``layout``, ``scale``, ``weights`` (one per feature).
- ``calibration``: None (the raw sigmoid of z), or {"type": "platt", ``squash``, ``knots``,
  ``slopes``}: p(positive) = sigmoid(sign(z) * spline(g(|z|))), the confidence p for a positive
  verdict and 1 - p for a negative one; or {"type": "binned", ``edges``, ``values``}, per verdict
  side (0 negative, 1 positive): the confidence is values[side][bisect_right(edges[side],
  log1p(|z|))].

A linear model's score is bias + the sum of each block's dot product with its slice of
``coef_``; FeatureUnion concatenates blocks each normalised on its own, so each TF-IDF block has
its own l2 norm. Gaussian naive Bayes with two classes reduces to bias + sum(x*w - x*x*s).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from itertools import pairwise
from typing import Any

import numpy as np

from research.calibration import BinnedConfidence, PlattSlope, spline_one
from research.features import LexiconFeatures, char_wb_ngrams, lexicon_features

try:  # the service's preprocessing, in the old layout or the new one
    from model_service.preprocess import preprocess, preprocess_words
except ImportError:  # pragma: no cover - the workspace layout
    from restaurant_sentiment.model_service.preprocess import (  # type: ignore[no-redef]
        preprocess,
        preprocess_words,
    )

_PATTERNS = {r"\S+": 1, r"(?u)\b\w\w+\b": 2}


def _term_key(term: str) -> str | tuple[str, ...]:
    return tuple(term.split(" ")) if " " in term else term


def _tfidf_block(vectorizer: Any, weights: np.ndarray, second: np.ndarray | None) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    if vectorizer.analyzer == "char_wb":
        kind, min_len = "chars", 0
        keys: dict[Any, int] = dict(vectorizer.vocabulary_)
    elif vectorizer.analyzer == "word" and vectorizer.token_pattern in _PATTERNS:
        kind, min_len = "tfidf", _PATTERNS[vectorizer.token_pattern]
        keys = {_term_key(t): i for t, i in vectorizer.vocabulary_.items()}
    else:
        raise ValueError(f"vectoriser not reducible to tables: {vectorizer!r}")
    tfidf = isinstance(vectorizer, TfidfVectorizer)
    if tfidf and vectorizer.norm not in ("l2", None):
        raise ValueError("only l2 or no normalisation")
    idf = vectorizer.idf_ if tfidf and vectorizer.use_idf else np.ones(len(weights))
    other = idf if second is None else second
    index = list(keys.values())
    return {
        "type": kind,
        "terms": dict(
            zip(keys, zip(weights[index].tolist(), other[index].tolist(), strict=True), strict=True)
        ),
        "ngrams": tuple(vectorizer.ngram_range),
        "sublinear": bool(tfidf and vectorizer.sublinear_tf),
        "l2": bool(tfidf and vectorizer.norm == "l2"),
        "binary": bool(vectorizer.binary),
        "min_len": min_len,
    }


def calibration_tables(calibrator: PlattSlope | BinnedConfidence | None) -> dict[str, Any] | None:
    """The calibration as plain values."""
    if calibrator is None:
        return None
    if isinstance(calibrator, BinnedConfidence):
        return {
            "type": "binned",
            "edges": [list(calibrator.edges_[0]), list(calibrator.edges_[1])],
            "values": [list(calibrator.values_[0]), list(calibrator.values_[1])],
        }
    return {
        "type": "platt",
        "squash": calibrator.squash,
        "knots": tuple(calibrator.knots),
        "slopes": list(calibrator.slopes_),
    }


def extract(
    vectorizer: Any, classifier: Any, calibrator: PlattSlope | BinnedConfidence | None
) -> dict[str, Any]:
    """Plain tables equivalent to the fitted sklearn objects."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import FeatureUnion

    calibration = calibration_tables(calibrator)
    out: dict[str, Any] = {
        "classes": [int(c) for c in classifier.classes_],
        "calibration": calibration,
    }
    if isinstance(classifier, GaussianNB):
        var, theta = classifier.var_, classifier.theta_
        linear, square = theta / var, 0.5 / var
        base = (
            np.log(classifier.class_prior_)
            - 0.5 * np.sum(np.log(2.0 * np.pi * var), axis=1)
            - 0.5 * np.sum(theta**2 / var, axis=1)
        )
        block = _tfidf_block(vectorizer, linear[1] - linear[0], square[1] - square[0])
        if block["l2"] or block["sublinear"] or block["type"] != "tfidf":
            raise ValueError("Gaussian naive Bayes tables need raw counts")
        out.update(kind="gnb", bias=float(base[1] - base[0]), blocks=[block])
        return out
    if not isinstance(classifier, LogisticRegression) or classifier.coef_.shape[0] != 1:
        raise ValueError("only binary logistic regression or Gaussian naive Bayes")
    coef = np.asarray(classifier.coef_[0], dtype=float)
    parts = (
        [t for _, t in vectorizer.transformer_list]
        if isinstance(vectorizer, FeatureUnion)
        else [vectorizer]
    )
    blocks, start = [], 0
    for part in parts:
        if isinstance(part, LexiconFeatures):
            width = part.n_features_out_
            blocks.append(
                {
                    "type": "lexicon",
                    "lexicon": dict(part.lexicon_),
                    "layout": part.layout,
                    "scale": float(part.scale),
                    "weights": coef[start : start + width].tolist(),
                }
            )
        else:
            width = len(part.vocabulary_)
            blocks.append(_tfidf_block(part, coef[start : start + width], None))
        start += width
    if start != len(coef):
        raise ValueError("feature blocks do not cover the coefficients")
    out.update(kind="linear", bias=float(classifier.intercept_[0]), blocks=blocks)
    return out


def _word_terms(words: list[str], block: dict[str, Any]) -> list[Any]:
    if block["min_len"] > 1:
        words = [w for w in words if len(w) >= block["min_len"]]
    low, high = block["ngrams"]
    terms: list[Any] = list(words) if low == 1 else []
    if low <= 2 <= high:
        terms += pairwise(words)
    for n in range(max(low, 3), high + 1):
        terms += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return terms


class TableScorer:
    """Scores one review from the tables: preprocessing, then dictionary look-ups."""

    def __init__(self, tables: dict[str, Any]) -> None:
        self.classes = tables["classes"]
        self.gnb = tables["kind"] == "gnb"
        self.bias = tables["bias"]
        self.blocks = tables["blocks"]
        self.calibration = tables["calibration"]

    def log_odds(self, review: str) -> float:
        words = preprocess_words(review)
        z = self.bias
        for block in self.blocks:
            kind = block["type"]
            if kind == "lexicon":
                values = lexicon_features(words, block["lexicon"], block["layout"], block["scale"])
                for w, v in zip(block["weights"], values, strict=True):
                    z += w * v
                continue
            table = block["terms"]
            if kind == "chars":
                low, high = block["ngrams"]
                terms: list[Any] = char_wb_ngrams(" ".join(words), low, high)
            else:
                terms = _word_terms(words, block)
            counts = Counter(t for t in terms if t in table)
            if self.gnb:
                for term, count in counts.items():
                    x = 1 if block["binary"] else count
                    weight, square = table[term]
                    z += x * weight - x * x * square
                continue
            dot = norm = 0.0
            for term, count in counts.items():
                weight, idf = table[term]
                if block["binary"]:
                    tf = 1.0
                else:
                    tf = 1.0 + math.log(count) if block["sublinear"] else float(count)
                value = tf * idf
                dot += weight * value
                norm += value * value
            if block["l2"] and norm > 0.0:
                dot /= math.sqrt(norm)
            z += dot
        return z

    def score(self, review: str) -> tuple[int, float]:
        """(verdict, calibrated probability of the verdict); positive exactly when z > 0."""
        z = self.log_odds(review)
        cal = self.calibration
        negative, positive = self.classes
        verdict = positive if z > 0 else negative
        if cal is not None and cal["type"] == "binned":
            side = 1 if z > 0 else 0
            bin_ = bisect_right(cal["edges"][side], math.log1p(abs(z)))
            return verdict, cal["values"][side][bin_]
        t = z if cal is None else spline_one(z, cal["squash"], cal["knots"], cal["slopes"])
        p = 1.0 / (1.0 + math.exp(-t)) if t > -700.0 else 0.0
        return verdict, (p if z > 0 else 1.0 - p)


def reference_text(review: str) -> str:
    """The text the sklearn objects see for a review."""
    return preprocess(review)
