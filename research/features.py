"""Feature transformers of the canary beside its TF-IDF n-grams, computable by look-ups.

Every transformer here takes preprocessed reviews (space-separated words, those in a negation's
scope marked ``neg_``, as ``preprocess`` returns them) and keeps in its fitted state all it needs,
so the pickled artefact carries the lexicon and serving needs no other package.
The per-review arithmetic lives in plain functions that serving calls too, so the feature values
are the same floats on both paths.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

# VADER's own constants: a negated word's valence is scaled by -0.74, and the compound score
# normalises a sum s as s / sqrt(s*s + 15).
NEGATION_SCALAR = -0.74
COMPOUND_ALPHA = 15.0
NEG_PREFIX = "neg_"
# Only entries that preprocessing can emit as one word can ever be looked up.
_WORD = re.compile(r"[a-z0-9]+")

# Feature layouts; each name lists the values lexicon_features returns, in order.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "sums": ("positive", "negative"),
    "compound": ("compound",),
    "full": ("positive", "negative", "compound", "hits"),
    "tail": ("positive", "negative", "compound", "last"),
}


def read_vader_lexicon() -> dict[str, float]:
    """VADER's word valences (-4..4) for every single-word entry preprocessing can emit.

    Needs the ``vaderSentiment`` package, at training time only.
    """
    text = (resources.files("vaderSentiment") / "vader_lexicon.txt").read_text(encoding="utf-8")
    table: dict[str, float] = {}
    for line in text.splitlines():
        cells = line.split("\t")
        if len(cells) >= 2 and _WORD.fullmatch(cells[0]):
            table[cells[0]] = float(cells[1])
    return table


def valences(words: Iterable[str], lexicon: Mapping[str, float]) -> list[float]:
    """The valence of each lexicon word of a review, negated words scaled as VADER does."""
    out: list[float] = []
    get = lexicon.get
    for word in words:
        if word.startswith(NEG_PREFIX):
            value = get(word[4:])
            if value is not None:
                out.append(NEGATION_SCALAR * value)
        else:
            value = get(word)
            if value is not None:
                out.append(value)
    return out


def lexicon_features(
    words: Sequence[str], lexicon: Mapping[str, float], layout: str, scale: float
) -> list[float]:
    """The lexicon features of one review's words, in the order LAYOUTS[layout] names."""
    vs = valences(words, lexicon)
    positive = negative = 0.0
    for v in vs:
        if v > 0.0:
            positive += v
        else:
            negative -= v
    total = positive - negative
    compound = total / math.sqrt(total * total + COMPOUND_ALPHA)
    if layout == "sums":
        values = [positive / 4.0, negative / 4.0]
    elif layout == "compound":
        values = [compound]
    elif layout == "full":
        values = [positive / 4.0, negative / 4.0, compound, len(vs) / 4.0]
    elif layout == "tail":
        values = [positive / 4.0, negative / 4.0, compound, vs[-1] / 4.0 if vs else 0.0]
    else:
        raise ValueError(f"unknown lexicon layout {layout!r}")
    return [scale * v for v in values]


class LexiconFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Polarity sums of a review from a sentiment lexicon, with negation scope.

    ``lexicon=None`` reads VADER's lexicon when fitted; the fitted ``lexicon_`` is a plain dict,
    pickled with the transformer.
    """

    def __init__(
        self, lexicon: dict[str, float] | None = None, layout: str = "sums", scale: float = 1.0
    ) -> None:
        self.lexicon = lexicon
        self.layout = layout
        self.scale = scale

    def fit(self, texts: Sequence[str], y: Any = None) -> LexiconFeatures:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown lexicon layout {self.layout!r}")
        self.lexicon_ = dict(self.lexicon) if self.lexicon is not None else read_vader_lexicon()
        self.n_features_out_ = len(LAYOUTS[self.layout])
        return self

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        rows = [
            lexicon_features(text.split(), self.lexicon_, self.layout, self.scale) for text in texts
        ]
        return sparse.csr_matrix(np.asarray(rows, dtype=float).reshape(len(rows), -1))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([f"lexicon_{name}" for name in LAYOUTS[self.layout]], dtype=object)


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """sklearn's ``char_wb`` analyzer on already lower-cased text, byte for byte.

    Each word is padded with one space either side; a padded word shorter than n yields itself.
    """
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        size = len(padded)
        for n in range(low, high + 1):
            if size <= n:  # sklearn counts a short word once, whatever the larger n
                grams.append(padded)
                break
            grams.extend(padded[i : i + n] for i in range(size - n + 1))
    return grams
