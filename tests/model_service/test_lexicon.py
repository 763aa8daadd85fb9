import re

import pytest

from restaurant_sentiment.model_service.lexicon import (
    lexicon_features,
    read_vader_lexicon,
    signed_valences,
)
from restaurant_sentiment.model_service.preprocess import preprocess_words

LEXICON = signed_valences({"good": 1.9, "awful": -2.0, "okay": 0.9})


def test_positive_and_negative_valences_are_summed_apart_and_scaled() -> None:
    assert lexicon_features(["good", "but", "awful"], LEXICON) == pytest.approx((1.9 / 4, 2.0 / 4))


def test_a_negated_word_counts_against_its_valence_as_vader_does() -> None:
    positive, negative = lexicon_features(preprocess_words("The soup was not good."), LEXICON)
    assert positive == 0.0
    assert negative == pytest.approx(0.74 * 1.9 / 4)
    positive, negative = lexicon_features(preprocess_words("Never awful."), LEXICON)
    assert positive == pytest.approx(0.74 * 2.0 / 4)
    assert negative == 0.0


def test_words_outside_the_lexicon_count_nothing() -> None:
    assert lexicon_features(["the", "neg_soup", "neg_"], LEXICON) == (0.0, 0.0)


def test_only_words_preprocessing_can_emit_are_kept() -> None:
    assert set(signed_valences({"good": 1.9, ":)": 2.0, "neg_x": 1.0})) == {"good", "neg_good"}


def test_vaders_lexicon_has_single_words_with_their_polarity() -> None:
    lexicon = read_vader_lexicon()
    assert len(lexicon) > 5000
    assert all(re.fullmatch(r"[a-z0-9]+", word) for word in lexicon)
    assert lexicon["good"] > 0 > lexicon["awful"]
    assert all(-4.0 <= v <= 4.0 for v in lexicon.values())
