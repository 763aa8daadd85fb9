"""Loading a model version and scoring reviews with it (no HTTP, and no sklearn, here).

The artefacts are sklearn objects; training also stores them reduced to tables
(``model_service.tables``), which load here with numpy alone. Without those, a child process
reduces the artefacts (``model_service.artefacts``). Either way serving costs a few dictionary
look-ups per review and the serving process stays small.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from restaurant_sentiment.model_service.calibration import confidence_many, confidence_one
from restaurant_sentiment.model_service.files import (
    CALIBRATION_FILE,
    CLASSIFIER_FILE,
    METADATA_FILE,
    TABLES_FILE,
    VECTORIZER_FILE,
)
from restaurant_sentiment.model_service.lexicon import VALENCE_SCALE, lexicon_features
from restaurant_sentiment.model_service.metadata import ModelMetadata
from restaurant_sentiment.model_service.preprocess import preprocess, preprocess_words
from restaurant_sentiment.model_service.tables import TablesError, read_tables

if TYPE_CHECKING:
    from restaurant_sentiment.model_service.artefacts import Artefacts


class ModelLoadError(RuntimeError):
    """A model version that cannot be served; the message names the file at fault."""


@dataclass(frozen=True, slots=True)
class Scored:
    """One review's verdict: 1 positive, 0 negative, and the probability of that verdict."""

    prediction: int
    confidence: float


def read_metadata(folder: Path) -> ModelMetadata | None:
    """A version folder's metadata.json, validated; None when the folder has none."""
    path = folder / METADATA_FILE
    if not path.is_file():
        return None
    try:
        return ModelMetadata.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"].startswith("json"):
            raise ModelLoadError(
                f"model metadata {path} is not valid JSON: {first['msg']}"
            ) from exc
        where = ".".join(str(part) for part in first["loc"]) or "the document"
        raise ModelLoadError(
            f"model metadata {path} is not valid: {where}: {first['msg']}"
        ) from exc


# The fitted objects the serving tables are reduced from.
SKLEARN_FILES = (VECTORIZER_FILE, CLASSIFIER_FILE, CALIBRATION_FILE)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_checksums(folder: Path, metadata: ModelMetadata | None) -> dict[str, str]:
    """Check each artefact metadata.json lists; return the sha256 of the sklearn artefacts."""
    listed = {} if metadata is None else metadata.artefacts
    digests: dict[str, str] = {}
    for name in sorted({VECTORIZER_FILE, CLASSIFIER_FILE} | set(listed)):
        path = folder / name
        if not path.is_file():
            raise ModelLoadError(f"model artefact {path} is missing")
        digests[name] = _sha256(path)
        expected = listed.get(name)
        if expected is not None and digests[name] != expected:
            raise ModelLoadError(
                f"model artefact {path} does not match the sha256 in its {METADATA_FILE}"
            )
    if CALIBRATION_FILE not in digests and (folder / CALIBRATION_FILE).is_file():
        digests[CALIBRATION_FILE] = _sha256(folder / CALIBRATION_FILE)
    return {name: digests[name] for name in SKLEARN_FILES if name in digests}


def _stored_tables(folder: Path, digests: dict[str, str]) -> dict[str, Any] | None:
    """The tables training stored, if they were reduced from exactly these artefacts."""
    path = folder / TABLES_FILE
    if not path.is_file():
        return None
    try:
        tables, sources = read_tables(path)
    except TablesError as exc:
        raise ModelLoadError(str(exc)) from exc
    return tables if sources == digests else None


class Loading:
    """A model version being loaded.

    The tables training stored load in this process, with numpy alone. Without them (or when
    they were reduced from other artefacts than the folder holds now) a child process unpickles
    the sklearn artefacts, checks them and reduces them to tables, while this process goes on
    importing the web stack.
    """

    def __init__(self, model_dir: Path, version: str) -> None:
        self.folder = model_dir / version
        self.version = version
        if not self.folder.is_dir():
            raise ModelLoadError(f"model folder {self.folder} does not exist (run `make models`)")
        self.metadata = read_metadata(self.folder)
        digests = _check_checksums(self.folder, self.metadata)
        self._tables = _stored_tables(self.folder, digests)
        if self._tables is not None:
            return
        # The serving process never imports sklearn: a child unpickles the artefacts and reduces
        # them to plain tables.
        self._child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "restaurant_sentiment.model_service.artefacts",
                str(self.folder),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def result(self) -> SentimentModel:
        """Build the model (waiting for the child, if one reduces the artefacts)."""
        if self._tables is not None:
            return SentimentModel(self.version, self.folder, self.metadata, self._tables, None)
        out, err = self._child.communicate()
        if self._child.returncode != 0:
            message = err.decode(errors="replace").strip()
            raise ModelLoadError(message or f"cannot load the model in {self.folder}")
        # The child is our own code reading files we just checked; its output is plain data.
        tables = pickle.loads(out)
        if tables is None:
            # A kind of model the tables do not cover: sklearn scores it, in this process.
            return SentimentModel(
                self.version, self.folder, self.metadata, None, _load_sklearn(self.folder)
            )
        return SentimentModel(self.version, self.folder, self.metadata, tables, None)


# Follows each review's words in a flattened batch; no word holds a space.
_SEPARATOR = " "


def _flatten(groups: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """The words of all groups in one list, each group followed by the separator, and the index
    of the group each position belongs to."""
    flat: list[str] = []
    for words in groups:
        flat += words
        flat.append(_SEPARATOR)
    owner = np.repeat(np.arange(len(groups)), [len(words) + 1 for words in groups])
    return flat, owner


def _load_sklearn(folder: Path) -> Artefacts:
    from restaurant_sentiment.model_service.artefacts import ArtefactError, load_sklearn

    try:
        return load_sklearn(folder)
    except ArtefactError as exc:
        raise ModelLoadError(str(exc)) from exc


class SentimentModel:
    """A bag-of-words model scored from tables, one review or a batch at a time.

    The log-odds z is the classifier's: word n-gram terms looked up in one table, plus, for a
    model with lexicon features, the weighted sums of the review's word valences. The verdict is
    positive exactly when z > 0, as sklearn's ``predict``; the confidence is the stored
    calibration's probability of that verdict (without one, the classifier's own sigmoid).
    """

    def __init__(
        self,
        version: str,
        folder: Path,
        metadata: ModelMetadata | None,
        tables: dict[str, Any] | None,
        artefacts: Artefacts | None,
    ) -> None:
        self.version = version
        self.folder = folder
        self.info = metadata
        # As written by training, for /version; empty when the folder has no metadata.json.
        self.metadata: dict[str, Any] = {} if metadata is None else metadata.model_dump(mode="json")
        self._sklearn = artefacts
        self._by_sklearn = tables is None
        if tables is None:
            # A kind of model the tables do not cover: sklearn scores it, slowly but correctly.
            assert artefacts is not None
            self.classes = [int(c) for c in artefacts.classifier.classes_]
            return
        self.classes = list(tables["classes"])
        # n-grams are keyed by word tuples, so a review's bigrams need no string building.
        self._vocabulary: dict[str | tuple[str, ...], int] = {
            (tuple(term.split(" ")) if " " in term else term): index
            for term, index in tables["vocabulary"].items()
        }
        self._min_len: int = tables["min_len"]
        self._ngrams: tuple[int, int] = tables["ngram_range"]
        self._binary: bool = tables["binary"]
        self._sublinear: bool = tables["sublinear"]
        self._l2: bool = tables["l2"]
        self._gnb = tables["kind"] == "gnb"
        self._bias: float = tables["bias"]
        self._weights: np.ndarray = tables["weights"]
        lexicon = tables["lexicon"]
        # Word (or neg_word) -> signed valence, for the lexicon features.
        self._signed: dict[str, float] | None = None if lexicon is None else lexicon["signed"]
        self._lexicon_weights: tuple[float, float] = (
            (0.0, 0.0) if lexicon is None else (lexicon["weights"])
        )
        self._calibration: dict[str, Any] | None = tables["calibration"]
        n = len(self._weights)
        self._index_words()
        self._idf: np.ndarray = tables["idf"] if tables["idf"] is not None else np.ones(n)
        self._square: np.ndarray = tables["square"] if self._gnb else np.zeros(n)
        # term -> (weight, idf or GaussianNB square term): one look-up per word of a review.
        second = self._square if self._gnb else self._idf
        self._table = {
            t: (w, s)
            for t, w, s in zip(
                self._vocabulary,
                self._weights[list(self._vocabulary.values())].tolist(),
                second[list(self._vocabulary.values())].tolist(),
                strict=True,
            )
        }

    def _index_words(self) -> None:
        """Number every word of the vocabulary's terms and of the lexicon, for batches.

        One dictionary look-up per word of a batch then gives its id, and numpy does the rest:
        the id's unigram column and valence, and each n-gram's column from an integer key made
        of its word ids (a sorted array of the vocabulary's keys, searched all at once).
        """
        word_ids: dict[str, int] = {}
        for term in self._vocabulary:
            for word in (term,) if isinstance(term, str) else term:
                word_ids.setdefault(word, len(word_ids))
        for word in self._signed or {}:
            word_ids.setdefault(word, len(word_ids))
        self._word_ids = word_ids
        width = len(word_ids)
        # Indexed by word id; id -1, a word known to neither, reads the last entry.
        self._unigram_column = np.full(width + 1, -1, dtype=np.int64)
        self._valence = np.zeros(width + 1)
        for word, value in (self._signed or {}).items():
            self._valence[word_ids[word]] = value
        grams: dict[int, list[tuple[int, int]]] = {}
        for term, column in self._vocabulary.items():
            if isinstance(term, str):
                self._unigram_column[word_ids[term]] = column
                continue
            key = 0
            for word in term:
                key = key * width + word_ids[word]
            grams.setdefault(len(term), []).append((key, column))
        # n -> (sorted keys, their columns); an n whose keys would overflow int64 keeps tuples.
        self._gram_keys: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for n, pairs in grams.items():
            if (width + 1) ** n < 2**62:
                pairs.sort()
                keys, columns = zip(*pairs, strict=True)
                self._gram_keys[n] = (np.asarray(keys, np.int64), np.asarray(columns, np.int64))

    def _gram_columns(self, flat: list[str], ids: np.ndarray, n: int) -> np.ndarray:
        """The vocabulary column of the n-gram starting at each position of flat, or -1."""
        count = len(flat) - n + 1
        if n not in self._gram_keys:
            # The shifted copies are of unequal lengths: the n-grams end with the shortest.
            grams = pairwise(flat) if n == 2 else zip(*(flat[i:] for i in range(n)), strict=False)
            get = self._vocabulary.get
            return np.fromiter(map(get, grams, repeat(-1)), dtype=np.int64, count=count)
        keys, columns = self._gram_keys[n]
        width = len(self._word_ids)
        key = ids[:count].copy()
        valid = key >= 0
        for i in range(1, n):
            part = ids[i : i + count]
            key = key * width + part
            valid &= part >= 0
        at = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
        return np.where(valid & (keys[at] == key), columns[at], -1)

    @classmethod
    def load(cls, model_dir: Path, version: str) -> SentimentModel:
        """Load ml-model/<version>/, checking each artefact against metadata.json."""
        return Loading(model_dir, version).result()

    # -- reference path: exactly what sklearn does, used by tests and benchmarks --------------

    def sklearn_objects(self) -> Artefacts:
        """The fitted sklearn objects of the artefacts (loaded on first use)."""
        if self._sklearn is None:
            self._sklearn = _load_sklearn(self.folder)
        return self._sklearn

    def sklearn_predict(self, reviews: Sequence[str]) -> np.ndarray:
        """sklearn's own predictions, the reference the serving paths must reproduce."""
        return self.sklearn_objects().predict([preprocess(r) for r in reviews])

    def sklearn_score(self, reviews: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """sklearn's verdicts and the stored calibration's confidence in them."""
        return self.sklearn_objects().score([preprocess(r) for r in reviews])

    # -- serving paths -------------------------------------------------------------------------

    def _terms(self, words: list[str]) -> list[str | tuple[str, ...]]:
        """The vectoriser's terms for a review's words (sklearn's word analyzer)."""
        if self._min_len > 1:
            words = [w for w in words if len(w) >= self._min_len]
        low, high = self._ngrams
        terms: list[str | tuple[str, ...]] = list(words) if low == 1 else []
        if low <= 2 <= high:
            terms += pairwise(words)
        for n in range(max(low, 3), high + 1):
            terms += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        return terms

    def _scored(self, z: float) -> Scored:
        negative, positive = self.classes
        return Scored(positive if z > 0 else negative, confidence_one(z, self._calibration))

    def predict(self, review: str) -> Scored:
        """Score one review."""
        if self._by_sklearn:
            return self.predict_batch([review])[0]
        words = preprocess_words(review)
        table = self._table
        counts = Counter(t for t in self._terms(words) if t in table)
        z = self._bias
        if self._gnb:
            for term, count in counts.items():
                x = 1 if self._binary else count
                weight, square = table[term]
                z += x * weight - x * x * square
            return self._scored(z)
        dot = norm = 0.0
        for term, count in counts.items():
            weight, idf = table[term]
            tf = 1.0 if self._binary else (1.0 + math.log(count) if self._sublinear else count)
            value = tf * idf
            dot += weight * value
            norm += value * value
        if self._l2 and norm > 0.0:
            dot /= math.sqrt(norm)
        z += dot
        if self._signed is not None:
            positive, negative = lexicon_features(words, self._signed)
            z += self._lexicon_weights[0] * positive + self._lexicon_weights[1] * negative
        return self._scored(z)

    def predict_batch(self, reviews: Sequence[str]) -> list[Scored]:
        """Score many reviews in one vectorised pass over all their terms."""
        verdicts, confidences = self.score_batch(reviews)
        return [Scored(v, c) for v, c in zip(verdicts, confidences, strict=True)]

    def score_batch(self, reviews: Sequence[str]) -> tuple[list[int], list[float]]:
        """``predict_batch`` as two lists, the verdicts and their confidences."""
        if self._by_sklearn:
            verdicts, confidence = self.sklearn_score(reviews)
            return [int(v) for v in verdicts.tolist()], [float(c) for c in confidence.tolist()]
        n_docs = len(reviews)
        if n_docs == 0:
            return [], []
        per_review = [preprocess_words(review) for review in reviews]
        min_len = self._min_len
        gram_words = (
            per_review
            if min_len <= 1
            else [[w for w in words if len(w) >= min_len] for words in per_review]
        )
        # All reviews' words in one list, a separator after each, looked up in one pass in C;
        # no n-gram holding the separator is in the vocabulary.
        flat, owner = _flatten(gram_words)
        word_get = self._word_ids.get
        ids = np.fromiter(map(word_get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
        low, high = self._ngrams
        found, docs = ([self._unigram_column[ids]], [owner]) if low == 1 else ([], [])
        for n in range(max(low, 2), high + 1):
            if len(flat) >= n:
                found.append(self._gram_columns(flat, ids, n))
                docs.append(owner[: len(flat) - n + 1])
        z = np.full(n_docs, self._bias)
        if found:
            every = np.concatenate(found)
            known = every >= 0
            z += self._term_sums(np.concatenate(docs)[known], every[known], n_docs)
        if self._signed is not None:
            # lexicon_features over every review at once: the same sums in the same order (the
            # separators and words without a valence add 0.0).
            if gram_words is not per_review:
                flat, owner = _flatten(per_review)
                ids = np.fromiter(map(word_get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
            signed = self._valence[ids]
            positive = np.bincount(owner, weights=np.maximum(signed, 0.0), minlength=n_docs)
            negative = np.bincount(owner, weights=np.maximum(-signed, 0.0), minlength=n_docs)
            w_positive, w_negative = self._lexicon_weights
            z += w_positive * (positive / VALENCE_SCALE) + w_negative * (negative / VALENCE_SCALE)
        confidence = confidence_many(z, self._calibration)
        negative_class, positive_class = self.classes
        return np.where(z > 0, positive_class, negative_class).tolist(), confidence.tolist()

    def _term_sums(self, docs: np.ndarray, ids: np.ndarray, n_docs: int) -> np.ndarray:
        """Each review's n-gram part of the log-odds, from the (review, column) of each term."""
        n_terms = len(self._weights)
        keys, counts = np.unique(docs * n_terms + ids, return_counts=True)
        doc_of, term_of = keys // n_terms, keys % n_terms
        x = np.ones(len(keys)) if self._binary else counts.astype(float)
        if self._gnb:
            contrib = x * self._weights[term_of] - x * x * self._square[term_of]
        else:
            value = (np.log(x) + 1.0 if self._sublinear else x) * self._idf[term_of]
            if self._l2:
                norm = np.sqrt(np.bincount(doc_of, weights=value * value, minlength=n_docs))
                value = value / norm[doc_of]
            contrib = value * self._weights[term_of]
        return np.bincount(doc_of, weights=contrib, minlength=n_docs)
