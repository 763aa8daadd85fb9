"""Measure canary designs on the corpus: python -m research.experiment [--grid NAME].

For each design: stratified 5-fold cross-validated accuracy on the whole corpus; accuracy on the
service's held-out 20% split (all of it, its short reviews, and the plain reviews added to the
corpus that fall in it); "transfer": fitted on the seed corpus's rows alone, accuracy on every
added plain review (how a model of the themed corpus fares on the plain register); expected
calibration error on the held-out split before and after Platt scaling; and the time to score one
review with sklearn and with the tables. Nothing here reads any evaluation file.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from research.calibration import (
    BinnedConfidence,
    PlattSlope,
    describe,
    expected_calibration_error,
    out_of_fold_decision,
)
from research.features import read_vader_lexicon
from research.models import (
    SEED_CANARY,
    CanaryOptions,
    build_canary,
    build_stable,
    decision,
    fit,
    predict,
)
from research.tables import TableScorer, extract, reference_text

try:
    from model_service.corpus import load_corpus
except ImportError:  # pragma: no cover - the workspace layout
    from restaurant_sentiment.model_service.corpus import load_corpus  # type: ignore[no-redef]

CORPUS = Path("data/restaurant_reviews.tsv")
# The seed corpus is the first 2,794 reviews of the file; every row after them was added in the
# plain register (short, everyday customer reviews).
SEED_ROWS = 2794
SEED = 42
FOLDS = 5
SHORT = 8  # words


@dataclass
class Data:
    reviews: list[str]
    texts: list[str]  # preprocessed
    labels: np.ndarray
    plain: np.ndarray  # bool: an added plain review
    short: np.ndarray  # bool: at most SHORT words
    train: np.ndarray  # indices of the service's training split
    test: np.ndarray  # indices of its held-out split


def load(path: Path = CORPUS) -> Data:
    corpus = load_corpus(path)
    n = len(corpus.reviews)
    labels = np.asarray(corpus.labels)
    index = np.arange(n)
    # The same split as the service's training (train_test_split on the lists, seed 42).
    train, test = train_test_split(index, test_size=0.2, random_state=SEED, stratify=labels)
    return Data(
        reviews=corpus.reviews,
        texts=[reference_text(r) for r in corpus.reviews],
        labels=labels,
        plain=index >= SEED_ROWS,
        short=np.asarray([len(r.split()) <= SHORT for r in corpus.reviews]),
        train=np.asarray(train),
        test=np.asarray(test),
    )


def _pick(data: Data, idx: np.ndarray) -> tuple[list[str], list[int]]:
    return [data.texts[i] for i in idx], data.labels[idx].tolist()


def cross_validate(build: Callable[[], Any], data: Data) -> list[float]:
    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    out = []
    for tr, te in splitter.split(data.texts, data.labels):
        pair = fit(build(), *_pick(data, tr))
        out.append(float((predict(pair, _pick(data, te)[0]) == data.labels[te]).mean()))
    return out


def time_one(fn: Callable[[], Any], repeat: int = 7, number: int = 200) -> float:
    """Median seconds per call over ``repeat`` rounds of ``number`` calls."""
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return statistics.median(rounds)


@dataclass
class Result:
    name: str
    cv: float
    cv_std: float
    held_out: float
    held_short: float
    held_long: float
    held_plain: float | None
    transfer: float | None
    ece_raw: float
    ece_cal: float
    calibration: str
    sklearn_us: float
    table_us: float
    exact: bool
    conf_gap: float
    n_features: int

    def row(self) -> str:
        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        return (
            f"| {self.name} | {self.cv:.3f} ± {self.cv_std:.3f} | {self.held_out:.3f} | "
            f"{self.held_short:.3f} / {self.held_long:.3f} | {f(self.held_plain)} | "
            f"{f(self.transfer)} | {self.ece_raw:.3f} → {self.ece_cal:.3f} | "
            f"{self.sklearn_us:.0f} / {self.table_us:.0f} | "
            f"{'yes' if self.exact else 'NO'} ({self.conf_gap:.0e}) | "
            f"{self.n_features} |"
        )


HEADER = (
    "| design | 5-fold CV acc | held-out acc | held-out ≤8 / >8 words | held-out plain | "
    "transfer to plain | ECE raw → Platt | one review µs sklearn / tables | "
    "same verdicts (max confidence gap) | features |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def assess(
    name: str,
    build: Callable[[], Any],
    data: Data,
    calibration: Callable[[], Any] = PlattSlope,
    timing: bool = True,
) -> Result:
    folds = cross_validate(build, data)
    x_train, y_train = _pick(data, data.train)
    pair = fit(build(), x_train, y_train)
    test = data.test
    z_test = decision(pair, [data.texts[i] for i in test])
    guess = (z_test > 0).astype(int)
    right = guess == data.labels[test]
    plain_mask = data.plain[test]
    # Calibration: Platt slope fitted on out-of-fold log-odds of the training split.
    z_oof = out_of_fold_decision(build, x_train, y_train, FOLDS, SEED)
    calibrator = calibration().fit(z_oof, np.asarray(y_train))
    raw = 1.0 / (1.0 + np.exp(-np.clip(z_test, -700, 700)))
    raw_conf = np.where(z_test > 0, raw, 1.0 - raw)
    cal_conf = calibrator.confidence(z_test)
    transfer = None
    if data.plain.any():
        seed_idx = np.flatnonzero(~data.plain)
        plain_idx = np.flatnonzero(data.plain)
        seed_pair = fit(build(), *_pick(data, seed_idx))
        transfer = float(
            (predict(seed_pair, _pick(data, plain_idx)[0]) == data.labels[plain_idx]).mean()
        )
    # Exactness: the table scorer's verdict equals sklearn's predict on every corpus review,
    # and its confidence equals the calibrator applied to sklearn's log-odds.
    scorer = TableScorer(extract(*pair, calibrator))
    reference = predict(pair, data.texts)
    z_all = decision(pair, data.texts)
    ref_conf = calibrator.confidence(z_all)
    scored = [scorer.score(r) for r in data.reviews]
    exact = all(v == int(p) for (v, _), p in zip(scored, reference, strict=True))
    conf_gap = float(np.abs(np.asarray([c for _, c in scored]) - ref_conf).max())
    sk_us = tb_us = float("nan")
    if timing:
        review = "The selection on the menu was great and so were the prices."
        vectorizer, classifier = pair
        dense = not hasattr(classifier, "coef_")

        def by_sklearn() -> Any:
            features = vectorizer.transform([reference_text(review)])
            if dense:
                features = features.toarray()
            return classifier.predict(features)

        sk_us = time_one(by_sklearn, number=50) * 1e6
        tb_us = time_one(lambda: scorer.score(review)) * 1e6
    n_features = (
        int(pair[1].coef_.shape[1]) if hasattr(pair[1], "coef_") else pair[1].n_features_in_
    )
    return Result(
        name=name,
        cv=float(np.mean(folds)),
        cv_std=float(np.std(folds)),
        held_out=float(right.mean()),
        held_short=float(right[data.short[test]].mean()),
        held_long=float(right[~data.short[test]].mean()),
        held_plain=float(right[plain_mask].mean()) if plain_mask.any() else None,
        transfer=transfer,
        ece_raw=expected_calibration_error(raw_conf, right),
        ece_cal=expected_calibration_error(cal_conf, right),
        calibration=describe(calibrator),
        sklearn_us=sk_us,
        table_us=tb_us,
        exact=exact,
        conf_gap=conf_gap,
        n_features=n_features,
    )


Design = tuple[str, Callable[[], Any], Callable[[], Any]]


def grids(lexicon: dict[str, float]) -> dict[str, list[Design]]:
    def canary(o: CanaryOptions) -> Design:
        return (o.label(), lambda: build_canary(o, lexicon), PlattSlope)

    base = SEED_CANARY
    lex = base.but(lexicon="sums")
    return {
        "baseline": [
            ("stable (seed), Platt on log|z|", build_stable, lambda: PlattSlope("log")),
            ("stable (seed), binned", build_stable, lambda: BinnedConfidence(6)),
            ("canary (seed) " + base.label(), lambda: build_canary(base), PlattSlope),
        ],
        "lexicon": [
            canary(base.but(lexicon=layout)) for layout in ("sums", "compound", "full", "tail")
        ]
        + [canary(base.but(lexicon="sums", lexicon_scale=3.0))],
        "c": [canary(lex.but(c=c)) for c in (2.0, 4.0, 16.0, 32.0)],
        "ngrams": [
            canary(lex.but(word_ngrams=(1, 1))),
            canary(lex.but(word_ngrams=(1, 3))),
            canary(lex.but(min_df=2)),
            canary(lex.but(sublinear=False)),
        ],
        "combo": [
            canary(lex.but(min_df=2, c=4.0)),
            canary(lex.but(min_df=2, c=16.0)),
            canary(lex.but(min_df=2, lexicon_scale=3.0)),
            canary(lex.but(min_df=2, lexicon="compound")),
            canary(lex.but(min_df=2, word_ngrams=(1, 3))),
            canary(lex.but(min_df=2, chars=(2, 5))),
        ],
        "c2": [
            canary(lex.but(c=64.0)),
            canary(lex.but(min_df=2, c=32.0)),
            canary(lex.but(min_df=2, c=64.0)),
            canary(lex.but(min_df=2, c=32.0, chars=(2, 5))),
        ],
        "chars": [
            canary(base.but(chars=(2, 5))),
            canary(lex.but(chars=(2, 5))),
            canary(lex.but(chars=(3, 5))),
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.experiment", description=__doc__)
    parser.add_argument("--data", type=Path, default=CORPUS)
    parser.add_argument("--grid", nargs="+", default=["baseline", "lexicon"])
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args(argv)
    data = load(args.data)
    lexicon = read_vader_lexicon()
    table = grids(lexicon)
    print(
        f"{len(data.reviews)} reviews ({int(data.plain.sum())} added plain ones); "
        f"held-out {len(data.test)} ({int(data.plain[data.test].sum())} plain)"
    )
    print(HEADER, flush=True)
    for grid in args.grid:
        for name, build, calibration in table[grid]:
            result = assess(name, build, data, calibration, timing=not args.no_timing)
            print(
                result.row() + f" calibration {result.calibration}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
