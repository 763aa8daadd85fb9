"""The two versions as sklearn objects: stable (the seed's model) and canary options.

A version is a (vectoriser, classifier) pair fitted on preprocessed reviews, as the service stores
it; the canary's vectoriser may be a FeatureUnion of TF-IDF blocks and lexicon features.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import FeatureUnion

from research.features import LexiconFeatures


@dataclass(frozen=True)
class CanaryOptions:
    """One canary design: which feature blocks, and the regularisation."""

    c: float = 8.0
    word_ngrams: tuple[int, int] = (1, 2)
    min_df: int = 1
    sublinear: bool = True
    lexicon: str | None = None  # a LAYOUTS name, or None for no lexicon block
    lexicon_scale: float = 1.0
    chars: tuple[int, int] | None = None  # char_wb n-gram range, or None
    char_min_df: int = 2
    class_weight: str | None = None

    def label(self) -> str:
        parts = [f"words{self.word_ngrams[0]}-{self.word_ngrams[1]}"]
        if self.min_df > 1:
            parts.append(f"min_df{self.min_df}")
        if not self.sublinear:
            parts.append("raw-tf")
        if self.chars:
            parts.append(f"char_wb{self.chars[0]}-{self.chars[1]}")
        if self.lexicon:
            parts.append(f"vader:{self.lexicon}x{self.lexicon_scale:g}")
        return " + ".join(parts) + f", C={self.c:g}"

    def but(self, **changes: Any) -> CanaryOptions:
        return replace(self, **changes)


SEED_CANARY = CanaryOptions()


def build_stable() -> tuple[Any, BaseEstimator]:
    """The seed's baseline, unchanged: a 1,420-word bag of words and Gaussian naive Bayes."""
    return CountVectorizer(max_features=1420), GaussianNB()


def build_canary(
    options: CanaryOptions, lexicon: dict[str, float] | None = None
) -> tuple[Any, Any]:
    """An unfitted canary: TF-IDF word n-grams, optionally char n-grams and lexicon features."""
    words = TfidfVectorizer(
        ngram_range=options.word_ngrams,
        sublinear_tf=options.sublinear,
        token_pattern=r"\S+",
        min_df=options.min_df,
    )
    classifier = LogisticRegression(C=options.c, max_iter=5000, class_weight=options.class_weight)
    if options.chars is None and options.lexicon is None:
        return words, classifier
    blocks: list[tuple[str, Any]] = [("words", words)]
    if options.chars is not None:
        chars = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=options.chars,
            sublinear_tf=options.sublinear,
            min_df=options.char_min_df,
        )
        blocks.append(("chars", chars))
    if options.lexicon is not None:
        blocks.append(("lexicon", LexiconFeatures(lexicon, options.lexicon, options.lexicon_scale)))
    return FeatureUnion(blocks), classifier


def _dense(matrix: Any) -> Any:
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def fit(pair: tuple[Any, Any], texts: list[str], labels: list[int]) -> tuple[Any, Any]:
    """Fit a (vectoriser, classifier) pair on preprocessed texts."""
    vectorizer, classifier = pair
    features = vectorizer.fit_transform(texts)
    if isinstance(classifier, GaussianNB):
        features = _dense(features)
    classifier.fit(features, labels)
    return vectorizer, classifier


def decision(pair: tuple[Any, Any], texts: list[str]) -> np.ndarray:
    """sklearn's log-odds of the positive class: z > 0 exactly when predict says positive."""
    vectorizer, classifier = pair
    features = vectorizer.transform(texts)
    if isinstance(classifier, GaussianNB):
        joint = classifier.predict_joint_log_proba(_dense(features))
        return np.asarray(joint[:, 1] - joint[:, 0])
    return np.asarray(classifier.decision_function(features))


def predict(pair: tuple[Any, Any], texts: list[str]) -> np.ndarray:
    """sklearn's own predictions (the reference every other path must reproduce)."""
    vectorizer, classifier = pair
    features = vectorizer.transform(texts)
    if isinstance(classifier, GaussianNB):
        features = _dense(features)
    return np.asarray(classifier.predict(features))
