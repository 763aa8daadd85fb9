"""Loading a model version's artefacts and scoring reviews with them (no HTTP here)."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from model_service.preprocess import preprocess

VECTORIZER_FILE = "c1_BoW_Sentiment_Model.pkl"
CLASSIFIER_FILE = "c2_Classifier_Sentiment_Model"
METADATA_FILE = "metadata.json"


def _is_gaussian_nb(classifier: Any) -> bool:
    # Checked without importing sklearn.naive_bayes: a canary process never needs it in memory,
    # and a GaussianNB can only exist once unpickling has imported that module.
    module = sys.modules.get("sklearn.naive_bayes")
    return module is not None and isinstance(classifier, module.GaussianNB)


class ModelLoadError(RuntimeError):
    """A model version that cannot be served; the message names the file at fault."""


@dataclass(frozen=True, slots=True)
class Scored:
    """One review's verdict: 1 positive, 0 negative, and the probability of that verdict."""

    prediction: int
    confidence: float


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_artefact(path: Path, expected_sha256: str | None) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"model artefact {path} is missing")
    if expected_sha256 is not None and _sha256(path) != expected_sha256:
        raise ModelLoadError(
            f"model artefact {path} does not match the sha256 in its {METADATA_FILE}"
        )
    try:
        return joblib.load(path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError, OSError) as exc:  # fmt: skip
        raise ModelLoadError(f"model artefact {path} is corrupt or unreadable: {exc}") from exc


def _verdict(z: float, negative: int, positive: int) -> Scored:
    """Turn a log-odds score into a verdict; ties go to the first class, as in sklearn."""
    p = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
    return Scored(positive, p) if z > 0 else Scored(negative, 1.0 - p)


class SentimentModel:
    """A fitted vectoriser and classifier, scored without sklearn's per-call overhead."""

    def __init__(self, version: str, vectorizer: Any, classifier: Any, metadata: dict[str, Any]):
        self.version = version
        self.vectorizer = vectorizer
        self.classifier = classifier
        self.metadata = metadata
        self.classes = [int(c) for c in classifier.classes_]
        self._analyzer: Callable[[str], list[str]] = vectorizer.build_analyzer()
        self._score_one = self._compile()

    @classmethod
    def load(cls, model_dir: Path, version: str) -> SentimentModel:
        """Load ml-model/<version>/, checking each artefact against metadata.json."""
        folder = model_dir / version
        if not folder.is_dir():
            raise ModelLoadError(f"model folder {folder} does not exist (run `make models`)")
        meta_path = folder / METADATA_FILE
        metadata: dict[str, Any] = {}
        checksums: dict[str, str] = {}
        if meta_path.is_file():
            try:
                metadata = json.loads(meta_path.read_text(encoding="utf-8"))
                checksums = dict(metadata.get("artefacts", {}))
            except (ValueError, UnicodeDecodeError, AttributeError, TypeError) as exc:
                raise ModelLoadError(
                    f"model metadata {meta_path} is not valid JSON: {exc}"
                ) from exc
        vectorizer = _load_artefact(folder / VECTORIZER_FILE, checksums.get(VECTORIZER_FILE))
        classifier = _load_artefact(folder / CLASSIFIER_FILE, checksums.get(CLASSIFIER_FILE))
        if not hasattr(vectorizer, "transform") or not hasattr(vectorizer, "build_analyzer"):
            raise ModelLoadError(
                f"model artefact {folder / VECTORIZER_FILE} is not a text vectoriser"
            )
        if not hasattr(classifier, "predict_proba") or not hasattr(classifier, "classes_"):
            raise ModelLoadError(
                f"model artefact {folder / CLASSIFIER_FILE} is not a fitted classifier"
            )
        return cls(version, vectorizer, classifier, metadata)

    # -- reference path: exactly what sklearn does, used by tests and benchmarks --------------

    def sklearn_predict(self, reviews: Sequence[str]) -> np.ndarray:
        """sklearn's own predictions, the reference the fast paths must reproduce."""
        features = self.vectorizer.transform([preprocess(r) for r in reviews])
        if _is_gaussian_nb(self.classifier):
            features = features.toarray()
        return np.asarray(self.classifier.predict(features))

    # -- serving paths -------------------------------------------------------------------------

    def predict(self, review: str) -> Scored:
        """Score one review."""
        return self._score_one(preprocess(review))

    def predict_batch(self, reviews: Sequence[str]) -> list[Scored]:
        """Score many reviews in one vectorised pass."""
        features = self.vectorizer.transform([preprocess(r) for r in reviews])
        proba = self._batch_proba(features)
        best = proba.argmax(axis=1)
        return [
            Scored(self.classes[i], float(p))
            for i, p in zip(best.tolist(), proba[np.arange(len(best)), best].tolist(), strict=True)
        ]

    def _batch_proba(self, features: sparse.csr_matrix) -> np.ndarray:
        clf = self.classifier
        if _is_gaussian_nb(clf):
            squared = features.multiply(features)
            jll = np.asarray(
                self._gnb_base + features @ self._gnb_linear.T - squared @ self._gnb_square.T
            )
            jll -= jll.max(axis=1, keepdims=True)
            exp = np.exp(jll)
            return np.asarray(exp / exp.sum(axis=1, keepdims=True))
        return np.asarray(clf.predict_proba(features))  # type: ignore[no-any-return]

    def _compile(self) -> Callable[[str], Scored]:
        """Precompute per-term weights so one review costs a few dictionary look-ups."""
        vec, clf = self.vectorizer, self.classifier
        vocabulary: dict[str, int] = vec.vocabulary_
        binary = bool(getattr(vec, "binary", False))
        idf: np.ndarray | None = None
        sublinear = False
        if isinstance(vec, TfidfVectorizer):
            if vec.norm not in ("l2", None):
                return self._fallback
            idf = vec.idf_ if vec.use_idf else np.ones(len(vocabulary))
            sublinear = bool(vec.sublinear_tf)
            l2 = vec.norm == "l2"
        elif isinstance(vec, CountVectorizer):
            l2 = False
        else:
            return self._fallback

        if _is_gaussian_nb(clf):
            var, theta = clf.var_, clf.theta_
            self._gnb_linear = theta / var
            self._gnb_square = 0.5 / var
            self._gnb_base = (
                np.log(clf.class_prior_)
                - 0.5 * np.sum(np.log(2.0 * np.pi * var), axis=1)
                - 0.5 * np.sum(theta**2 / var, axis=1)
            )
            if idf is not None or len(self.classes) != 2:
                return self._fallback
            # For two classes only the difference of the joint log-likelihoods matters.
            diff_linear = self._gnb_linear[1] - self._gnb_linear[0]
            diff_square = self._gnb_square[1] - self._gnb_square[0]
            gnb_table = {
                t: (diff_linear[i].item(), diff_square[i].item()) for t, i in vocabulary.items()
            }
            gnb_base = float(self._gnb_base[1] - self._gnb_base[0])
            negative, positive = self.classes
            analyzer = self._analyzer

            def score_gnb(text: str) -> Scored:
                z = gnb_base
                for term, count in Counter(t for t in analyzer(text) if t in gnb_table).items():
                    x = 1 if binary else count
                    a, b = gnb_table[term]
                    z += x * a - x * x * b
                return _verdict(z, negative, positive)

            return score_gnb

        coef = getattr(clf, "coef_", None)
        if coef is None or coef.shape[0] != 1 or not hasattr(clf, "predict_proba"):
            return self._fallback
        weights = coef[0]
        intercept = float(clf.intercept_[0])
        idf_list = idf.tolist() if idf is not None else None
        table = {
            t: (weights[i].item(), idf_list[i] if idf_list else 1.0) for t, i in vocabulary.items()
        }
        negative, positive = self.classes
        analyzer = self._analyzer

        def score_linear(text: str) -> Scored:
            dot = 0.0
            norm = 0.0
            for term, count in Counter(t for t in analyzer(text) if t in table).items():
                weight, term_idf = table[term]
                tf = 1.0 if binary else (1.0 + math.log(count) if sublinear else float(count))
                value = tf * term_idf
                dot += weight * value
                norm += value * value
            if l2 and norm > 0.0:
                dot /= math.sqrt(norm)
            return _verdict(dot + intercept, negative, positive)

        return score_linear

    def _fallback(self, text: str) -> Scored:
        # Models the fast path does not know are scored by sklearn itself.
        proba = self._batch_proba(self.vectorizer.transform([text]))[0]
        best = int(proba.argmax())
        return Scored(self.classes[best], float(proba[best]))
