"""Train the stable and canary models from a labelled TSV and write their artefacts.

Usage: python -m restaurant_sentiment.model_service.train --data data/restaurant_reviews.tsv
    --out ml-model [--eval data/eval_plain_reviews.tsv]

Per version: the model is fitted on the stratified 80% training split (the held-out 20% stays
unseen, so its figures are the served model's own), its confidence calibrated on out-of-fold
log-odds of that training split, and both measured on the held-out split, in 5-fold
cross-validation on the whole file and on the proxy set when one is given (never trained on).
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, precision_score, recall_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import FeatureUnion
from threadpoolctl import threadpool_limits

from restaurant_sentiment.model_service.artefacts import Artefacts, tables
from restaurant_sentiment.model_service.calibration import (
    BinnedConfidence,
    Calibrator,
    PlattSlope,
    confidence_many,
    expected_calibration_error,
)
from restaurant_sentiment.model_service.corpus import Corpus, CorpusError, load_corpus
from restaurant_sentiment.model_service.features import LexiconFeatures
from restaurant_sentiment.model_service.files import (
    CALIBRATION_FILE,
    CLASSIFIER_FILE,
    METADATA_FILE,
    TABLES_FILE,
    VECTORIZER_FILE,
)
from restaurant_sentiment.model_service.metadata import (
    Calibration,
    CrossValidation,
    EvaluationSet,
    HeldOut,
    ModelMetadata,
    TrainingData,
)
from restaurant_sentiment.model_service.preprocess import preprocess
from restaurant_sentiment.model_service.tables import write_tables

SEED = 42
HELD_OUT = 0.2
FOLDS = 5
VERSIONS = ("stable", "canary")
# The plain-review set that stands in for real reviews; evaluated on when present, never fitted.
PROXY_SET = Path("data/eval_plain_reviews.tsv")
DESCRIPTIONS = {
    "stable": "CountVectorizer (1,420 features) + Gaussian naive Bayes",
    "canary": "TF-IDF word 1–2-grams with negation marking, VADER polarity sums "
    "+ logistic regression",
}
CALIBRATION_FITTED_ON = f"{FOLDS}-fold out-of-fold log-odds of the training split"


def build(version: str) -> tuple[Any, Any]:
    """Return the unfitted (vectoriser, classifier) of a model version."""
    if version == "stable":
        # The original system's baseline: a bag of words and Gaussian naive Bayes.
        return CountVectorizer(max_features=1420), GaussianNB()
    if version == "canary":
        # Word 1-2-grams carry what the corpus teaches; the two lexicon sums carry the polarity
        # of words the corpus never had, which plain reviews are full of.
        words = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+", min_df=1
        )
        union = FeatureUnion([("words", words), ("lexicon", LexiconFeatures())])
        return union, LogisticRegression(C=32.0, max_iter=5000)
    raise ValueError(f"unknown model version {version!r}; expected one of {', '.join(VERSIONS)}")


def build_calibrator(version: str) -> Calibrator:
    """The calibration form of a version.

    GaussianNB's accuracy is not monotone in its log-odds, so stable gets histogram binning; the
    canary's logistic regression is nearly calibrated already and gets a Platt slope.
    """
    return BinnedConfidence(bins=6) if version == "stable" else PlattSlope()


def held_out_split(reviews: Sequence[Any], labels: list[int]) -> Any:
    """The stratified 80/20 split used for evaluation (and by the traffic simulator).

    The partition depends only on the labels, so splitting review indices gives the same one.
    """
    return train_test_split(  # type: ignore[no-any-return]
        reviews, labels, test_size=HELD_OUT, random_state=SEED, stratify=labels
    )


def frequent_terms(vectorizer: CountVectorizer, texts: list[str]) -> CountVectorizer:
    """The vectoriser with its max_features most frequent terms as a fixed vocabulary.

    Terms as frequent as each other are taken in alphabetical order. CountVectorizer's own
    max_features takes them in the order of an unstable argsort, which numpy sorts differently
    with and without AVX-512: the same corpus gave a model with other words, and other figures,
    on another machine.
    """
    limit = vectorizer.max_features
    every = clone(vectorizer).set_params(max_features=None)
    counts = every.fit_transform(texts)
    terms = every.get_feature_names_out()  # alphabetical, as the columns of counts
    frequency = np.asarray(counts.sum(axis=0)).ravel()
    kept = np.argsort(-frequency, kind="stable")[:limit]
    vocabulary = sorted(str(term) for term in terms[kept])
    return clone(vectorizer).set_params(max_features=None, vocabulary=vocabulary)  # type: ignore[no-any-return]


def fit(version: str, texts: list[str], labels: list[int]) -> Artefacts:
    """Fit a version's vectoriser and classifier on already preprocessed texts (no calibration)."""
    vectorizer, classifier = build(version)
    if isinstance(vectorizer, CountVectorizer) and vectorizer.max_features is not None:
        vectorizer = frequent_terms(vectorizer, texts)
    features = vectorizer.fit_transform(texts)
    if isinstance(classifier, GaussianNB):
        features = features.toarray()
    # A few thousand reviews: BLAS threads cost more than they save (the canary's solver took
    # ten times the CPU time with two threads than with one on a two-core machine).
    with threadpool_limits(limits=1):
        classifier.fit(features, labels)
    return Artefacts(vectorizer, classifier)


def _folds(labels: list[int]) -> Any:
    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    return splitter.split(np.zeros(len(labels)), labels)


def cross_validate(version: str, texts: list[str], labels: list[int]) -> list[float]:
    """Stratified k-fold accuracy of a version on preprocessed texts."""
    y = np.asarray(labels)
    accuracies = []
    for train_idx, test_idx in _folds(labels):
        model = fit(version, [texts[i] for i in train_idx], y[train_idx].tolist())
        guess = model.predict([texts[i] for i in test_idx])
        accuracies.append(float(np.mean(guess == y[test_idx])))
    return accuracies


def out_of_fold_log_odds(version: str, texts: list[str], labels: list[int]) -> np.ndarray:
    """Each text's log-odds from the version fitted on the other folds."""
    y = np.asarray(labels)
    z = np.zeros(len(texts))
    for train_idx, test_idx in _folds(labels):
        model = fit(version, [texts[i] for i in train_idx], y[train_idx].tolist())
        z[test_idx] = model.decision([texts[i] for i in test_idx])
    return z


def fit_calibrated(version: str, texts: list[str], labels: list[int]) -> Artefacts:
    """The version fitted on all the texts, with its calibration fitted out of fold."""
    model = fit(version, texts, labels)
    z = out_of_fold_log_odds(version, texts, labels)
    calibrator = build_calibrator(version).fit(z, np.asarray(labels))
    return Artefacts(model.vectorizer, model.classifier, calibrator)


@dataclass(frozen=True)
class Scores:
    """A fitted version's verdicts on labelled preprocessed texts."""

    labels: np.ndarray
    log_odds: np.ndarray
    verdicts: np.ndarray
    confidence: np.ndarray  # the calibrated probability of each verdict

    @property
    def right(self) -> np.ndarray:
        return np.asarray(self.verdicts == self.labels)

    @property
    def accuracy(self) -> float:
        return float(self.right.mean())

    @property
    def ece(self) -> float:
        return expected_calibration_error(self.confidence, self.right)

    @property
    def uncalibrated_ece(self) -> float:
        """The ECE of the classifier's own sigmoid(log-odds)."""
        return expected_calibration_error(confidence_many(self.log_odds, None), self.right)

    def confusion(self) -> list[list[int]]:
        """[[TN, FP], [FN, TP]]."""
        return confusion_matrix(self.labels, self.verdicts, labels=[0, 1]).tolist()  # type: ignore[no-any-return]


def score(model: Artefacts, texts: list[str], labels: list[int]) -> Scores:
    """Score preprocessed texts with a fitted, calibrated version."""
    verdicts, confidence = model.score(texts)
    return Scores(np.asarray(labels), model.decision(texts), verdicts, confidence)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _libraries() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": distribution_version("scipy"),
        "joblib": joblib.__version__,
        "vaderSentiment": distribution_version("vaderSentiment"),
    }


def train_version(
    version: str, corpus: Corpus, out: Path, proxy: Corpus | None = None
) -> ModelMetadata:
    """Fit, calibrate and measure a version, and write its artefacts and metadata."""
    texts = [preprocess(review) for review in corpus.reviews]
    # The served model is the one evaluated: fitted on the training split only, so the held-out
    # reviews (which the traffic simulator sends) are unseen and the recorded figures its own.
    x_train, x_test, y_train, y_test = held_out_split(texts, corpus.labels)
    model = fit_calibrated(version, x_train, y_train)
    assert model.calibrator is not None
    held = score(model, x_test, y_test)
    folds = cross_validate(version, texts, corpus.labels)
    proxy_set = None
    if proxy is not None:
        measured = score(model, [preprocess(r) for r in proxy.reviews], proxy.labels)
        proxy_set = EvaluationSet(
            file=proxy.path.name,
            sha256=proxy.sha256,
            reviews=len(proxy.reviews),
            accuracy=measured.accuracy,
            ece=measured.ece,
        )
    folder = out / version
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model.vectorizer, folder / VECTORIZER_FILE)
    joblib.dump(model.classifier, folder / CLASSIFIER_FILE)
    joblib.dump(model.calibrator, folder / CALIBRATION_FILE)
    fitted = (VECTORIZER_FILE, CLASSIFIER_FILE, CALIBRATION_FILE)
    artefacts = {name: _sha256(folder / name) for name in fitted}
    # The serving tables, reduced here once instead of at every start of the service.
    reduced = tables(model)
    tables_path = folder / TABLES_FILE
    tables_path.unlink(missing_ok=True)
    if reduced is not None and write_tables(reduced, tables_path, dict(artefacts)):
        artefacts[TABLES_FILE] = _sha256(tables_path)
    metadata = ModelMetadata(
        version=version,
        description=DESCRIPTIONS[version],
        vectorizer=type(model.vectorizer).__name__,
        classifier=type(model.classifier).__name__,
        data=TrainingData(
            file=corpus.path.name,
            sha256=corpus.sha256,
            reviews=len(texts),
            trained_on=len(x_train),
        ),
        artefacts=artefacts,
        held_out=HeldOut(
            fraction=HELD_OUT,
            reviews=len(x_test),
            accuracy=held.accuracy,
            precision=float(precision_score(y_test, held.verdicts, zero_division=0)),
            recall=float(recall_score(y_test, held.verdicts, zero_division=0)),
            confusion_matrix=held.confusion(),
            ece=held.ece,
        ),
        cross_validation=CrossValidation(
            folds=FOLDS,
            accuracy_mean=float(np.mean(folds)),
            accuracy_std=float(np.std(folds)),
            fold_accuracy=folds,
        ),
        calibration=Calibration(
            method=model.calibrator.method,
            description=model.calibrator.describe(),
            fitted_on=CALIBRATION_FITTED_ON,
            uncalibrated_ece=held.uncalibrated_ece,
        ),
        proxy_set=proxy_set,
        libraries=_libraries(),
    )
    (folder / METADATA_FILE).write_text(metadata.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return metadata


def format_table(results: list[ModelMetadata]) -> str:
    """A plain-text evaluation table, one row per version."""
    head = (
        f"{'version':<8} {'held-out':>8} {'precision':>9} {'recall':>6} {'5-fold':>13} "
        f"{'proxy':>6} {'ECE raw→calibrated':>18}  confusion [[TN FP] [FN TP]]"
    )
    rows = [head, "-" * len(head)]
    for meta in results:
        h, cv, cal = meta.held_out, meta.cross_validation, meta.calibration
        proxy = "-" if meta.proxy_set is None else f"{meta.proxy_set.accuracy:.3f}"
        raw = "-" if cal is None else f"{cal.uncalibrated_ece:.3f}"
        rows.append(
            f"{meta.version:<8} {h.accuracy:>8.3f} {h.precision:>9.3f} {h.recall:>6.3f} "
            f"{cv.accuracy_mean:>5.3f} ± {cv.accuracy_std:.3f} {proxy:>6} "
            f"{raw + ' → ' + format(h.ece, '.3f'):>18}  {h.confusion_matrix}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m restaurant_sentiment.model_service.train", description=__doc__
    )
    parser.add_argument("--data", type=Path, default=Path("data/restaurant_reviews.tsv"))
    parser.add_argument("--out", type=Path, default=Path("ml-model"))
    parser.add_argument(
        "--eval",
        type=Path,
        default=None,
        help=f"a labelled TSV never trained on, measured as the proxy set (default: {PROXY_SET} "
        "when it exists)",
    )
    parser.add_argument("--versions", nargs="+", choices=VERSIONS, default=list(VERSIONS))
    args = parser.parse_args(argv)
    proxy_path = args.eval if args.eval is not None else PROXY_SET
    try:
        corpus = load_corpus(args.data)
        proxy = load_corpus(proxy_path) if args.eval is not None or PROXY_SET.is_file() else None
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if proxy is not None and proxy.sha256 == corpus.sha256:
        print(
            f"error: {proxy.path} is the training data; a proxy set must be unseen", file=sys.stderr
        )
        return 2
    digest = corpus.sha256[:12]
    print(f"Training on {len(corpus.reviews)} reviews from {corpus.path} (sha256 {digest})")
    if proxy is not None:
        print(f"Proxy set (never trained on): {len(proxy.reviews)} reviews from {proxy.path}")
    results = [train_version(version, corpus, args.out, proxy) for version in args.versions]
    print(format_table(results))
    print(f"Artefacts written to {args.out}/{{{','.join(args.versions)}}}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
