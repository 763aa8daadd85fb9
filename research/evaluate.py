"""Evaluate the artefacts research.train wrote: python -m research.evaluate [--eval FILE].

Per version: 5-fold cross-validated accuracy on the corpus; on the held-out 20% split the
accuracy (all, at most 8 words, longer, and the added plain reviews), and the expected
calibration error of the raw and the calibrated confidence; that the table scorer gives the
verdict of sklearn's predict on every corpus review (and how far its confidence is from the
stored calibrator's); the time to score one review both ways; the verdicts on probe reviews.
``--eval FILE`` also scores a labelled TSV the models never saw (accuracy and ECE).
"""

from __future__ import annotations

import argparse
import re
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from research.calibration import describe, expected_calibration_error
from research.experiment import SHORT, cross_validate, load, time_one
from research.features import read_vader_lexicon
from research.models import decision, predict
from research.tables import TableScorer, extract, reference_text
from research.train import CALIBRATION_FILE, CLASSIFIER_FILE, VECTORIZER_FILE, builders

try:
    from model_service.corpus import load_corpus
except ImportError:  # pragma: no cover - the workspace layout
    from restaurant_sentiment.model_service.corpus import load_corpus  # type: ignore[no-redef]

PROBES = ("good", "Good.", "Crust is not good.", "It was okay.", "Not bad at all.", "Meh.")
REVIEW = "The selection on the menu was great and so were the prices."


def load_version(folder: Path) -> tuple[Any, Any, Any]:
    names = (VECTORIZER_FILE, CLASSIFIER_FILE, CALIBRATION_FILE)
    return tuple(joblib.load(folder / name) for name in names)  # type: ignore[return-value]


def overlap(path: Path, corpus_reviews: list[str]) -> int:
    """How many reviews of a file also appear in the corpus (case and punctuation aside)."""

    def key(review: str) -> str:
        return " ".join(re.findall(r"[a-z0-9]+", review.lower()))

    known = {key(r) for r in corpus_reviews}
    return sum(key(r) in known for r in load_corpus(path).reviews)


def report_file(path: Path, pair: tuple[Any, Any], calibrator: Any) -> str:
    corpus = load_corpus(path)
    texts = [reference_text(r) for r in corpus.reviews]
    y = np.asarray(corpus.labels)
    z = decision(pair, texts)
    right = (z > 0).astype(int) == y
    short = np.asarray([len(r.split()) <= SHORT for r in corpus.reviews])
    return (
        f"{path.name}: {len(y)} reviews, accuracy {right.mean():.3f} "
        f"(≤{SHORT} words {right[short].mean():.3f} of {int(short.sum())}, "
        f"longer {right[~short].mean():.3f}), "
        f"ECE calibrated {expected_calibration_error(calibrator.confidence(z), right):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.evaluate", description=__doc__)
    parser.add_argument("--models", type=Path, default=Path("research/out"))
    parser.add_argument("--eval", type=Path, default=None, help="a labelled TSV never trained on")
    parser.add_argument("--no-cv", action="store_true")
    args = parser.parse_args(argv)
    data = load()
    build = builders(read_vader_lexicon())
    test = data.test
    if args.eval is not None:
        print(f"{args.eval}: {overlap(args.eval, data.reviews)} of its reviews are in the corpus")
    for version in ("stable", "canary"):
        vectorizer, classifier, calibrator = load_version(args.models / version)
        pair = (vectorizer, classifier)
        print(f"== {version}")
        if not args.no_cv:
            folds = cross_validate(build[version], data)
            print(f"5-fold CV accuracy {np.mean(folds):.3f} ± {np.std(folds):.3f}")
        z = decision(pair, [data.texts[i] for i in test])
        right = (z > 0).astype(int) == data.labels[test]
        short, plain = data.short[test], data.plain[test]
        raw = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
        raw_conf = np.where(z > 0, raw, 1.0 - raw)
        print(
            f"held-out accuracy {right.mean():.3f} (≤{SHORT} words {right[short].mean():.3f} "
            f"of {int(short.sum())}, longer {right[~short].mean():.3f} of {int((~short).sum())}; "
            f"added plain {right[plain].mean():.3f} of {int(plain.sum())})"
        )
        print(
            f"held-out ECE raw {expected_calibration_error(raw_conf, right):.3f} -> calibrated "
            f"{expected_calibration_error(calibrator.confidence(z), right):.3f} "
            f"({describe(calibrator)})"
        )
        scorer = TableScorer(extract(vectorizer, classifier, calibrator))
        reference = predict(pair, data.texts)
        ref_conf = calibrator.confidence(decision(pair, data.texts))
        scored = [scorer.score(r) for r in data.reviews]
        same = sum(v == int(p) for (v, _), p in zip(scored, reference, strict=True))
        gap = float(np.abs(np.asarray([c for _, c in scored]) - ref_conf).max())
        print(f"table verdict == sklearn predict on {same} of {len(reference)} corpus reviews; "
              f"largest confidence difference {gap:.1e}")  # fmt: skip
        dense = not hasattr(classifier, "coef_")

        def by_sklearn(v: Any = vectorizer, c: Any = classifier, dense: bool = dense) -> Any:
            features = v.transform([reference_text(REVIEW)])
            return c.predict(features.toarray() if dense else features)

        sk = time_one(by_sklearn, number=50) * 1e6
        tb = time_one(partial(scorer.score, REVIEW)) * 1e6
        print(f"one review: sklearn {sk:.0f} µs, tables {tb:.1f} µs ({sk / tb:.0f}x)")
        print("probes: " + ", ".join(f"{p!r}->{scorer.score(p)[0]}" for p in PROBES))
        if args.eval is not None:
            print(report_file(args.eval, pair, calibrator))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
