"""The canary's lexicon features: a review's positive and negative polarity from word valences.

Shared by training (inside the ``LexiconFeatures`` transformer) and serving (from the tables), so
both compute the same floats. No sklearn here. The valences come from VADER's lexicon, which
only training reads (``read_vader_lexicon``); the fitted transformer stores it, so the artefact
carries it and the serving process needs no other package.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources

# VADER's own rule: a word in a negation's scope counts -0.74 times its valence.
NEGATION_SCALAR = -0.74
NEG_PREFIX = "neg_"
# VADER's valences run from -4 to 4; dividing by 4 keeps the sums on the scale of TF-IDF values.
VALENCE_SCALE = 4.0
FEATURE_NAMES = ("lexicon_positive", "lexicon_negative")
# Only entries that preprocessing can emit as one word can ever be looked up.
_WORD = re.compile(r"[a-z0-9]+")


def read_vader_lexicon() -> dict[str, float]:
    """VADER's valence (-4..4) of every single-word entry preprocessing can emit.

    Reads the lexicon file of the ``vaderSentiment`` package; needed at training time only.
    """
    path = resources.files("vaderSentiment") / "vader_lexicon.txt"
    table: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = line.split("\t")
        if len(cells) >= 2 and _WORD.fullmatch(cells[0]):
            table[cells[0]] = float(cells[1])
    return table


def signed_valences(lexicon: Mapping[str, float]) -> dict[str, float]:
    """The lexicon with each word's negated form: ``neg_<word>`` counts -0.74 times its valence.

    One look-up then gives a preprocessed word's signed valence, negated or not.
    """
    table = {word: value for word, value in lexicon.items() if _WORD.fullmatch(word)}
    table.update({NEG_PREFIX + word: NEGATION_SCALAR * value for word, value in table.items()})
    return table


def lexicon_features(words: Iterable[str], signed: Mapping[str, float]) -> tuple[float, float]:
    """(positive, negative): the sums of a review's positive and negative valences, over 4.

    ``words`` are preprocessed words and ``signed`` a ``signed_valences`` table, so a negated
    positive word adds to the negative sum. Both sums are at least 0.
    """
    positive = negative = 0.0
    get = signed.get
    for word in words:
        value = get(word)
        if value is None:
            continue
        if value > 0.0:
            positive += value
        else:
            negative -= value
    return positive / VALENCE_SCALE, negative / VALENCE_SCALE
