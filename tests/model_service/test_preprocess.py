from hypothesis import given, settings
from hypothesis import strategies as st

from restaurant_sentiment.model_service.preprocess import normalise, preprocess, preprocess_words


def test_negation_scope_is_marked_until_punctuation_or_contrast() -> None:
    assert preprocess("The food was not good, but the staff were LOVELY!") == (
        "the food was not neg_good but the staff were lovely"
    )


def test_contractions_in_every_spelling_become_not() -> None:
    for text in ("I can't recommend it", "I can\u2019t recommend it", "I cant recommend it"):
        assert preprocess(text) == "i can not neg_recommend neg_it"
    assert preprocess("won't return") == "will not neg_return"
    assert preprocess("it wasn't bad at all") == "it was not neg_bad neg_at neg_all"


def test_accents_case_and_possessives_fold_to_plain_words() -> None:
    assert normalise("Café SERENDIPITY's crème brûlée!") == [
        "cafe", "serendipitys", "creme", "brulee", "!",
    ]  # fmt: skip


def test_empty_and_symbol_only_text_gives_no_words() -> None:
    assert preprocess("") == ""
    assert preprocess("🙂 ... !!!") == ""


# Review-like text: words that open, end or expand a negation's scope, apostrophes of both kinds,
# punctuation, accents and other characters.
REVIEW_TEXT = st.lists(
    st.sampled_from(
        [
            "not",
            "no",
            "never",
            "dont",
            "cannot",
            "but",
            "good",
            "Bad",
            "it's",
            "isn't",
            "can\u2019t",
            "café",
            "'",
            "''",
            ".",
            ",",
            "!",
            "?",
            " ",
            "  ",
            "x'y",
            "n't",
            "N\u2019T",
            "o'",
            "_",
            "9",
            "-",
            "\n",
        ]
    )
    | st.text(max_size=4),
    max_size=20,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(REVIEW_TEXT)
def test_serving_words_are_the_words_training_sees(text: str) -> None:
    assert preprocess_words(text) == preprocess(text).split()
