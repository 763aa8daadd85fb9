"""The sklearn side of a model version: unpickling its artefacts and reducing them to tables.

The serving process never imports sklearn (about 70 MB): it runs
``python -m restaurant_sentiment.model_service.artefacts FOLDER``, which writes the tables to
stdout as plain values and numpy arrays, and exits. Training, tests, benchmarks and the evaluation
use the sklearn objects directly, through ``Artefacts``.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from restaurant_sentiment.model_service.calibration import BinnedConfidence, Calibrator, PlattSlope
from restaurant_sentiment.model_service.files import (
    CALIBRATION_FILE,
    CLASSIFIER_FILE,
    VECTORIZER_FILE,
)

# Token patterns whose tokens, on preprocessed text, are its space-separated words of at least
# this many characters (preprocess emits only [a-z0-9_] words).
_PATTERNS = {r"\S+": 1, r"(?u)\b\w\w+\b": 2}


class ArtefactError(RuntimeError):
    """An artefact that cannot be used; the message names the file."""


def _instance(obj: Any, module: str, name: str) -> bool:
    # Unpickling an object imports its module, so a module that is not loaded cannot be its type;
    # checking this way keeps, say, naive Bayes out of a process that serves a linear model.
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, getattr(loaded, name))


def is_gaussian_nb(classifier: Any) -> bool:
    """Whether a classifier is sklearn's GaussianNB."""
    return _instance(classifier, "sklearn.naive_bayes", "GaussianNB")


@dataclass(frozen=True)
class Artefacts:
    """A version's fitted sklearn objects, taking preprocessed texts: the reference that the
    serving tables reproduce."""

    vectorizer: Any
    classifier: Any
    calibrator: Calibrator | None = None

    def features(self, texts: Sequence[str]) -> Any:
        """The classifier's input (GaussianNB takes dense arrays)."""
        matrix = self.vectorizer.transform(texts)
        if is_gaussian_nb(self.classifier) and hasattr(matrix, "toarray"):
            return matrix.toarray()
        return matrix

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """sklearn's own verdicts."""
        return np.asarray(self.classifier.predict(self.features(texts)))

    def decision(self, texts: Sequence[str]) -> np.ndarray:
        """Log-odds z of the positive class: ``predict`` says positive exactly when z > 0."""
        return log_odds(self.classifier, self.features(texts))

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Verdicts and the probability of each verdict: the calibrator's when there is one,
        otherwise the classifier's ``predict_proba``."""
        features = self.features(texts)
        verdicts = np.asarray(self.classifier.predict(features))
        if self.calibrator is not None:
            return verdicts, self.calibrator.confidence(log_odds(self.classifier, features))
        proba = np.asarray(self.classifier.predict_proba(features))
        return verdicts, proba.max(axis=1)


def log_odds(classifier: Any, features: Any) -> np.ndarray:
    """A fitted binary classifier's log-odds of its second class."""
    if hasattr(classifier, "decision_function"):
        return np.asarray(classifier.decision_function(features), dtype=float)
    if hasattr(classifier, "predict_joint_log_proba"):  # naive Bayes: no normalising constant
        joint = np.asarray(classifier.predict_joint_log_proba(features))
        return joint[:, 1] - joint[:, 0]
    log_proba = np.asarray(classifier.predict_log_proba(features))
    return log_proba[:, 1] - log_proba[:, 0]


def _unpickle(path: Path) -> Any:
    if not path.is_file():
        raise ArtefactError(f"model artefact {path} is missing")
    try:
        return joblib.load(path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError, OSError) as exc:  # fmt: skip
        raise ArtefactError(f"model artefact {path} is corrupt or unreadable: {exc}") from exc


def _is_text_vectorizer(vectorizer: Any) -> bool:
    if hasattr(vectorizer, "transformer_list"):  # a FeatureUnion: each part must transform
        return all(hasattr(part, "transform") for _, part in vectorizer.transformer_list)
    return hasattr(vectorizer, "transform") and hasattr(vectorizer, "vocabulary_")


def load_sklearn(folder: Path) -> Artefacts:
    """The fitted objects of a version folder, checked for their roles; the calibration is
    optional (a model without one reports its classifier's own probability)."""
    vectorizer = _unpickle(folder / VECTORIZER_FILE)
    classifier = _unpickle(folder / CLASSIFIER_FILE)
    if not _is_text_vectorizer(vectorizer):
        raise ArtefactError(f"model artefact {folder / VECTORIZER_FILE} is not a text vectoriser")
    if not hasattr(classifier, "predict_proba") or not hasattr(classifier, "classes_"):
        raise ArtefactError(f"model artefact {folder / CLASSIFIER_FILE} is not a fitted classifier")
    calibrator = None
    if (folder / CALIBRATION_FILE).exists():
        calibrator = _unpickle(folder / CALIBRATION_FILE)
        fitted = hasattr(calibrator, "slope_") or hasattr(calibrator, "values_")
        if not isinstance(calibrator, PlattSlope | BinnedConfidence) or not fitted:
            raise ArtefactError(
                f"model artefact {folder / CALIBRATION_FILE} is not a fitted calibration"
            )
        if len(classifier.classes_) != 2:
            raise ArtefactError(f"a calibration needs two classes; {folder} has {classifier}")
    return Artefacts(vectorizer, classifier, calibrator)


def _words_block(vectorizer: Any) -> dict[str, Any] | None:
    """A word n-gram vectoriser's settings, or None if the tables cannot reproduce it."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    plain = (
        isinstance(vectorizer, CountVectorizer)
        and vectorizer.analyzer == "word"
        and vectorizer.tokenizer is None
        and vectorizer.preprocessor is None
        and vectorizer.stop_words is None
        and vectorizer.strip_accents is None
        and vectorizer.token_pattern in _PATTERNS
    )
    if not plain:
        return None
    block: dict[str, Any] = {
        "vocabulary": {str(t): int(i) for t, i in vectorizer.vocabulary_.items()},
        "min_len": _PATTERNS[vectorizer.token_pattern],
        "ngram_range": tuple(vectorizer.ngram_range),
        "binary": bool(vectorizer.binary),
        "sublinear": False,
        "idf": None,
        "l2": False,
    }
    if isinstance(vectorizer, TfidfVectorizer):
        if vectorizer.norm not in ("l2", None):
            return None
        block["sublinear"] = bool(vectorizer.sublinear_tf)
        block["idf"] = np.asarray(vectorizer.idf_, dtype=float) if vectorizer.use_idf else None
        block["l2"] = vectorizer.norm == "l2"
    return block


def _parts(vectorizer: Any) -> tuple[Any, Any] | None:
    """(word vectoriser, lexicon transformer or None), or None for other feature layouts."""
    if not hasattr(vectorizer, "transformer_list"):
        return vectorizer, None
    from restaurant_sentiment.model_service.features import LexiconFeatures

    parts = [part for _, part in vectorizer.transformer_list]
    weighted = getattr(vectorizer, "transformer_weights", None)
    if weighted or len(parts) != 2 or not isinstance(parts[1], LexiconFeatures):
        return None
    return parts[0], parts[1]


def tables(artefacts: Artefacts) -> dict[str, Any] | None:
    """Reduce a binary bag-of-words model to plain tables, or None if it is of another kind.

    Covered: word n-gram counts or TF-IDF, optionally followed by the lexicon features in a
    FeatureUnion, into logistic regression; or word counts into Gaussian naive Bayes.
    """
    classifier = artefacts.classifier
    parts = _parts(artefacts.vectorizer)
    if parts is None or len(classifier.classes_) != 2:
        return None
    words, lexicon = parts
    out = _words_block(words)
    if out is None:
        return None
    out["classes"] = [int(c) for c in classifier.classes_]
    out["lexicon"] = None
    out["calibration"] = None if artefacts.calibrator is None else artefacts.calibrator.table()
    if is_gaussian_nb(classifier):
        if out["idf"] is not None or out["l2"] or out["sublinear"] or lexicon is not None:
            return None
        # Two classes: only the difference of the joint log-likelihoods matters, and with a
        # count x the per-feature difference is x * linear - x * x * square.
        var, theta = classifier.var_, classifier.theta_
        linear, square = theta / var, 0.5 / var
        base = (
            np.log(classifier.class_prior_)
            - 0.5 * np.sum(np.log(2.0 * np.pi * var), axis=1)
            - 0.5 * np.sum(theta**2 / var, axis=1)
        )
        out.update(kind="gnb", weights=linear[1] - linear[0], square=square[1] - square[0])
        out["bias"] = float(base[1] - base[0])
        return out
    coef = getattr(classifier, "coef_", None)
    logistic = _instance(classifier, "sklearn.linear_model", "LogisticRegression")
    if coef is None or coef.shape[0] != 1 or not logistic:
        return None
    coef = np.asarray(coef[0], dtype=float)
    width = len(out["vocabulary"])
    if lexicon is not None:
        # FeatureUnion puts the lexicon's two columns after the word columns.
        if len(coef) != width + lexicon.n_features_out_:
            return None
        out["lexicon"] = {
            "signed": dict(lexicon.signed_),
            "weights": tuple(float(w) for w in coef[width:]),
        }
    elif len(coef) != width:
        return None
    out.update(kind="linear", weights=coef[:width], square=None)
    out["bias"] = float(classifier.intercept_[0])
    return out


def main(argv: list[str] | None = None) -> int:
    """Write a version folder's tables to stdout; errors go to stderr with exit status 2."""
    args = sys.argv[1:] if argv is None else argv
    try:
        compiled = tables(load_sklearn(Path(args[0])))
    except ArtefactError as exc:
        print(exc, file=sys.stderr)
        return 2
    sys.stdout.buffer.write(pickle.dumps(compiled, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
