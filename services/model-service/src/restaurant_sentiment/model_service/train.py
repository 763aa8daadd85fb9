"""Train the stable and canary models from a labelled TSV and write their artefacts.

Usage: python -m model_service.train --data data/restaurant_reviews.tsv --out ml-model
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.naive_bayes import GaussianNB

from restaurant_sentiment.model_service.corpus import Corpus, CorpusError, load_corpus
from restaurant_sentiment.model_service.files import CLASSIFIER_FILE, METADATA_FILE, VECTORIZER_FILE
from restaurant_sentiment.model_service.preprocess import preprocess

SEED = 42
HELD_OUT = 0.2
FOLDS = 5
VERSIONS = ("stable", "canary")
DESCRIPTIONS = {
    "stable": "CountVectorizer (1,420 features) + Gaussian naive Bayes",
    "canary": "TF-IDF word 1–2-grams with negation marking + logistic regression",
}


def build(version: str) -> tuple[Any, BaseEstimator]:
    """Return the unfitted (vectoriser, classifier) of a model version."""
    if version == "stable":
        # The original system's baseline: a bag of words and Gaussian naive Bayes.
        return CountVectorizer(max_features=1420), GaussianNB()
    if version == "canary":
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+", min_df=1
        )
        return vectorizer, LogisticRegression(C=8.0, max_iter=2000)
    raise ValueError(f"unknown model version {version!r}; expected one of {', '.join(VERSIONS)}")


def held_out_split(reviews: list[str], labels: list[int]) -> Any:
    """The stratified 80/20 split used for evaluation (and by the traffic simulator)."""
    return train_test_split(  # type: ignore[no-any-return]
        reviews, labels, test_size=HELD_OUT, random_state=SEED, stratify=labels
    )


def _dense(matrix: Any) -> np.ndarray:
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def fit(version: str, texts: list[str], labels: list[int]) -> tuple[Any, BaseEstimator]:
    """Fit a version on already preprocessed texts."""
    vectorizer, classifier = build(version)
    features = vectorizer.fit_transform(texts)
    if isinstance(classifier, GaussianNB):
        features = _dense(features)
    classifier.fit(features, labels)
    return vectorizer, classifier


def predict(vectorizer: Any, classifier: BaseEstimator, texts: list[str]) -> np.ndarray:
    """sklearn's own predictions for preprocessed texts (the reference the service must match)."""
    features = vectorizer.transform(texts)
    if isinstance(classifier, GaussianNB):
        features = _dense(features)
    return classifier.predict(features)  # type: ignore[attr-defined, no-any-return]


@dataclass
class Evaluation:
    """Held-out and cross-validated quality of one version."""

    accuracy: float
    precision: float
    recall: float
    confusion: list[list[int]]
    cv_mean: float
    cv_std: float
    cv_folds: list[float]


def evaluate(version: str, texts: list[str], labels: list[int]) -> Evaluation:
    """Score a version on the held-out split and in stratified k-fold cross-validation."""
    x_train, x_test, y_train, y_test = held_out_split(texts, labels)
    vec, clf = fit(version, x_train, y_train)
    guess = predict(vec, clf, x_test)
    folds = []
    y = np.asarray(labels)
    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    for train_idx, test_idx in splitter.split(texts, y):
        v, c = fit(version, [texts[i] for i in train_idx], list(y[train_idx]))
        folds.append(
            float(accuracy_score(y[test_idx], predict(v, c, [texts[i] for i in test_idx])))
        )
    return Evaluation(
        accuracy=float(accuracy_score(y_test, guess)),
        precision=float(precision_score(y_test, guess, zero_division=0)),
        recall=float(recall_score(y_test, guess, zero_division=0)),
        confusion=confusion_matrix(y_test, guess, labels=[0, 1]).tolist(),
        cv_mean=float(np.mean(folds)),
        cv_std=float(np.std(folds)),
        cv_folds=folds,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_version(version: str, corpus: Corpus, out: Path) -> dict[str, Any]:
    """Evaluate a version, fit it on the whole corpus and write its artefacts and metadata."""
    texts = [preprocess(review) for review in corpus.reviews]
    report = evaluate(version, texts, corpus.labels)
    # The served model is the one evaluated: fitted on the training split only, so the held-out
    # reviews (which the traffic simulator sends) are unseen and the recorded accuracy is its own.
    x_train, _, y_train, _ = held_out_split(texts, corpus.labels)
    vectorizer, classifier = fit(version, x_train, y_train)
    folder = out / version
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(vectorizer, folder / VECTORIZER_FILE)
    joblib.dump(classifier, folder / CLASSIFIER_FILE)
    metadata = {
        "version": version,
        "description": DESCRIPTIONS[version],
        "vectorizer": type(vectorizer).__name__,
        "classifier": type(classifier).__name__,
        "data": {
            "file": corpus.path.name,
            "sha256": corpus.sha256,
            "reviews": len(texts),
            "trained_on": len(x_train),
        },
        "artefacts": {name: _sha256(folder / name) for name in (VECTORIZER_FILE, CLASSIFIER_FILE)},
        "held_out": {
            "fraction": HELD_OUT,
            "accuracy": report.accuracy,
            "precision": report.precision,
            "recall": report.recall,
            "confusion_matrix": report.confusion,
        },
        "cross_validation": {
            "folds": FOLDS,
            "accuracy_mean": report.cv_mean,
            "accuracy_std": report.cv_std,
            "fold_accuracy": report.cv_folds,
        },
        "libraries": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "joblib": joblib.__version__,
        },
    }
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


def format_table(results: list[dict[str, Any]]) -> str:
    """A plain-text evaluation table, one row per version."""
    head = (
        f"{'version':<8} {'held-out acc':>12} {'precision':>9} {'recall':>6} {'5-fold acc':>15}"
        "  confusion [[TN FP] [FN TP]]"
    )
    rows = [head, "-" * len(head)]
    for meta in results:
        h, cv = meta["held_out"], meta["cross_validation"]
        rows.append(
            f"{meta['version']:<8} {h['accuracy']:>12.3f} {h['precision']:>9.3f} "
            f"{h['recall']:>6.3f} "
            f"{cv['accuracy_mean']:>8.3f} ± {cv['accuracy_std']:.3f}  {h['confusion_matrix']}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_service.train", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/restaurant_reviews.tsv"))
    parser.add_argument("--out", type=Path, default=Path("ml-model"))
    parser.add_argument("--versions", nargs="+", choices=VERSIONS, default=list(VERSIONS))
    args = parser.parse_args(argv)
    try:
        corpus = load_corpus(args.data)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    digest = corpus.sha256[:12]
    print(f"Training on {len(corpus.reviews)} reviews from {corpus.path} (sha256 {digest})")
    results = [train_version(version, corpus, args.out) for version in args.versions]
    print(format_table(results))
    print(f"Artefacts written to {args.out}/{{{','.join(args.versions)}}}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
