"""The canary's lexicon features as a sklearn transformer, for training and the sklearn reference.

Serving computes the same values from the tables with ``lexicon.lexicon_features``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from restaurant_sentiment.model_service.lexicon import (
    FEATURE_NAMES,
    lexicon_features,
    read_vader_lexicon,
    signed_valences,
)


class LexiconFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Per preprocessed review, the sums of its positive and negative word valences.

    ``lexicon=None`` reads VADER's lexicon when fitted; the fitted ``lexicon_`` (word valences)
    and ``signed_`` (the same with each word's negated form) are plain dicts pickled with the
    transformer, so the artefact carries them.
    """

    def __init__(self, lexicon: dict[str, float] | None = None) -> None:
        self.lexicon = lexicon

    def fit(self, texts: Sequence[str], y: Any = None) -> LexiconFeatures:
        self.lexicon_ = dict(self.lexicon) if self.lexicon is not None else read_vader_lexicon()
        self.signed_ = signed_valences(self.lexicon_)
        self.n_features_out_ = len(FEATURE_NAMES)
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        # FeatureUnion stacks this dense block beside the sparse TF-IDF one.
        rows = [lexicon_features(text.split(), self.signed_) for text in texts]
        return np.asarray(rows, dtype=float).reshape(len(rows), len(FEATURE_NAMES))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(FEATURE_NAMES, dtype=object)
