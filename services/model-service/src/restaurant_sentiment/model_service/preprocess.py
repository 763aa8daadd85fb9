"""Text normalisation shared by training and serving, so both see the same tokens."""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.,!?;:]")
# Contractions whose stem is not the word before "n't".
_IRREGULAR = {"ca": "can", "wo": "will", "sha": "shall", "ai": "is"}
# Apostrophe-less negations, common in reviews typed on phones.
_BARE = {
    f"{stem}nt": f"{stem} not"
    for stem in (
        *("do", "did", "does", "is", "was", "were", "would", "could", "should"),
        *("have", "has", "had", "are", "must", "need"),
    )
} | {"cant": "can not", "wont": "will not", "aint": "is not", "cannot": "can not"}
_NEGATORS = frozenset(
    {"not", "no", "never", "nothing", "nobody", "nowhere", "neither", "nor", "hardly", "without"}
)
# A negation's scope ends at punctuation or at a contrastive word.
_SCOPE_END = frozenset({"but", "however", "although", "though", "yet", "except"})
_PUNCTUATION = frozenset(".,!?;:")


def _fold(text: str) -> str:
    """Lower-case; fold typographic apostrophes and accents to ASCII."""
    if not text.isascii():
        text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00b4", "'")
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return text.lower()


def _words(tokens: list[str]) -> list[str]:
    """Expand contractions so every negation is the word "not"."""
    out: list[str] = []
    for token in tokens:
        if "'" in token:
            if token.endswith("n't"):
                stem = token[:-3]
                if stem:  # a bare "n't" is only the negation
                    out.append(_IRREGULAR.get(stem, stem))
                out.append("not")
                continue
            token = token.replace("'", "")
        bare = _BARE.get(token)
        if bare is None:
            out.append(token)
        else:
            out.extend(bare.split())
    return out


_PLAIN, _STOP, _END, _NEGATE, _EXPAND = range(5)
# One look-up classifies a token; words not listed (nearly all) are plain.
_KIND = (
    dict.fromkeys(_PUNCTUATION, _STOP)
    | dict.fromkeys(_SCOPE_END, _END)
    | dict.fromkeys(_NEGATORS, _NEGATE)
    | dict.fromkeys(_BARE, _EXPAND)
)


def _mark_negation(tokens: list[str]) -> list[str]:
    out: list[str] = []
    negated = False
    for token in tokens:
        kind = _KIND.get(token, _PLAIN)
        if kind == _PLAIN and "'" in token:
            kind = _EXPAND
        if kind == _PLAIN:
            out.append("neg_" + token if negated else token)
        elif kind == _STOP:
            negated = False
        elif kind == _END:
            negated = False
            out.append(token)
        elif kind == _NEGATE:
            negated = True
            out.append(token)
        else:  # a contraction: expand it and mark its words like any others
            for word in _words([token]):
                word_kind = _KIND.get(word, _PLAIN)
                if word_kind == _NEGATE:
                    negated = True
                    out.append(word)
                elif word_kind == _END:
                    negated = False
                    out.append(word)
                else:
                    out.append("neg_" + word if negated else word)
    return out


def normalise(text: str) -> list[str]:
    """Lower-case, fold accents and contractions, and split into words and punctuation."""
    return _words(_TOKEN.findall(_fold(text)))


# Words that open a negation's scope or expand into words that may: a review with none of them
# (and no apostrophe) has no scope to mark, and its words are its tokens minus punctuation.
_NEGATING = _NEGATORS | frozenset(_BARE)
# Every byte but [a-z0-9] made a space: the words of a text are then its runs of [a-z0-9], what
# _TOKEN finds without its punctuation, and str.split() finds them a few times faster.
_SPACE_OUT = bytes(
    b if chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789" else ord(" ") for b in range(256)
)


def preprocess_words(text: str) -> list[str]:
    """The review's words, those in a negation's scope marked ``neg_``."""
    text = _fold(text)
    if "'" not in text:
        words = text.encode().translate(_SPACE_OUT).decode("ascii").split()
        if _NEGATING.isdisjoint(words):
            return words
    return _mark_negation(_TOKEN.findall(text))


def preprocess(text: str) -> str:
    """Return the review as space-separated words, those in a negation's scope marked ``neg_``."""
    return " ".join(_mark_negation(_TOKEN.findall(_fold(text))))
