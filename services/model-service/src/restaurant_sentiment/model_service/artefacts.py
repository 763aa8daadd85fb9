"""The sklearn side of a model version: unpickling its artefacts and reducing them to tables.

The serving process never imports sklearn (about 70 MB of memory): it runs
``python -m restaurant_sentiment.model_service.artefacts FOLDER``, which writes the tables to stdout
plain values and numpy arrays, and exits. Tests and benchmarks use the sklearn objects directly.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from restaurant_sentiment.model_service.files import CLASSIFIER_FILE, VECTORIZER_FILE

# Token patterns whose tokens, on preprocessed text, are its space-separated words of at least
# this many characters (preprocess emits only [a-z0-9_] words).
_PATTERNS = {r"\S+": 1, r"(?u)\b\w\w+\b": 2}


class ArtefactError(RuntimeError):
    """An artefact that cannot be used; the message names the file."""


def _unpickle(path: Path) -> Any:
    if not path.is_file():
        raise ArtefactError(f"model artefact {path} is missing")
    try:
        return joblib.load(path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError, OSError) as exc:  # fmt: skip
        raise ArtefactError(f"model artefact {path} is corrupt or unreadable: {exc}") from exc


def load_sklearn(folder: Path) -> tuple[Any, Any]:
    """The fitted vectoriser and classifier of a version folder, checked for their roles."""
    vectorizer = _unpickle(folder / VECTORIZER_FILE)
    classifier = _unpickle(folder / CLASSIFIER_FILE)
    if not hasattr(vectorizer, "transform") or not hasattr(vectorizer, "vocabulary_"):
        raise ArtefactError(f"model artefact {folder / VECTORIZER_FILE} is not a text vectoriser")
    if not hasattr(classifier, "predict_proba") or not hasattr(classifier, "classes_"):
        raise ArtefactError(f"model artefact {folder / CLASSIFIER_FILE} is not a fitted classifier")
    return vectorizer, classifier


def _instance(obj: Any, module: str, name: str) -> bool:
    # Unpickling an object imports its module, so a module that is not loaded cannot be its type;
    # checking this way keeps, say, naive Bayes out of a process that serves a linear model.
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, getattr(loaded, name))


def is_gaussian_nb(classifier: Any) -> bool:
    """Whether a classifier is sklearn's GaussianNB."""
    return _instance(classifier, "sklearn.naive_bayes", "GaussianNB")


def tables(vectorizer: Any, classifier: Any) -> dict[str, Any] | None:
    """Reduce a binary bag-of-words model to plain tables, or None if it is of another kind."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    if not isinstance(vectorizer, CountVectorizer) or len(classifier.classes_) != 2:
        return None
    plain = (
        vectorizer.analyzer == "word"
        and vectorizer.tokenizer is None
        and vectorizer.preprocessor is None
        and vectorizer.stop_words is None
        and vectorizer.strip_accents is None
        and vectorizer.token_pattern in _PATTERNS
    )
    if not plain:
        return None
    out: dict[str, Any] = {
        "classes": [int(c) for c in classifier.classes_],
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
        out["sublinear"] = bool(vectorizer.sublinear_tf)
        out["idf"] = np.asarray(vectorizer.idf_, dtype=float) if vectorizer.use_idf else None
        out["l2"] = vectorizer.norm == "l2"
    if is_gaussian_nb(classifier):
        if out["idf"] is not None or out["l2"] or out["sublinear"]:
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
    out.update(kind="linear", weights=np.asarray(coef[0], dtype=float), square=None)
    out["bias"] = float(classifier.intercept_[0])
    return out


def main(argv: list[str] | None = None) -> int:
    """Write a version folder's tables to stdout; errors go to stderr with exit status 2."""
    args = sys.argv[1:] if argv is None else argv
    try:
        compiled = tables(*load_sklearn(Path(args[0])))
    except ArtefactError as exc:
        print(exc, file=sys.stderr)
        return 2
    sys.stdout.buffer.write(pickle.dumps(compiled, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
