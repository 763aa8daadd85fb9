"""Evaluate the trained versions side by side on the project's own data: `make evaluate`.

Per version: accuracy on the held-out split of the training file (which the served models never
saw), 5-fold cross-validation on the whole file (refitted here), and accuracy on the proxy set
(a labelled file never trained on that stands in for real reviews); accuracy by review length
and by theme, confusion matrices, the calibration error of the served confidence, and the
reviews one version gets wrong that the other gets right.

Themes: the files have no theme column, so ``theme`` assigns one by a keyword rule (below).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restaurant_sentiment.model_service.artefacts import ArtefactError, Artefacts, load_sklearn
from restaurant_sentiment.model_service.corpus import Corpus, CorpusError, load_corpus
from restaurant_sentiment.model_service.model import ModelLoadError, read_metadata
from restaurant_sentiment.model_service.preprocess import preprocess
from restaurant_sentiment.model_service.train import (
    FOLDS,
    Scores,
    cross_validate,
    held_out_split,
    score,
)
from restaurant_sentiment.tools.paths import CORPUS, MODEL_DIR, ROOT

PROXY_SET = ROOT / "data" / "eval_plain_reviews.tsv"
VERSIONS = ("stable", "canary")
SHORT = 8  # words: a review of at most this many words is short

# The keyword rule: a review's theme is the first of these whose pattern it matches (lower-cased,
# whole words), else "other". The order puts the narrower themes first: "the food was great,
# we'll be back" is about return intent, "the waiter was slow" about speed.
THEMES: tuple[tuple[str, str], ...] = (
    (
        "return intent",
        r"(?:come|coming|go|going|be|head) back|return\w*|again"
        r"|regulars?|recommend\w*|next time|never going|last time|won'?t be",
    ),
    (
        "speed/wait",
        r"wait(?:s|ed|ing)?|slow\w*|quick\w*|fast|minutes?|hours?|forever|prompt\w*|delay\w*|late"
        r"|ages|speedy|took so long|long time|rushed",
    ),
    (
        "price/value",
        r"prices?|priced|pricey|expensive|cheap\w*|overpriced|value|worth|money|bill|costs?"
        r"|charge[sd]?|dollars?|bucks|affordable|portions?|deal",
    ),
    (
        "service",
        r"service|staff|waiter|waitress|waitstaff|servers?|host|hostess|manager|owner"
        r"|bartender|employees?|rude|friendly|attentive|polite|greeted|welcom\w*",
    ),
    (
        "ambience",
        r"atmosphere|ambiance|ambience|decor|music|nois\w*|loud|quiet|cozy|clean\w*|dirty"
        r"|view|vibe|seating|lighting|interior|patio|bathrooms?|restrooms?|romantic|crowded",
    ),
    (
        "food",
        r"food|meal|dish\w*|tast\w*|flavou?r\w*|delicious|bland|menu|cooked|fresh|pizza"
        r"|burgers?|steak|chicken|fish|pasta|salad|soup|fries|sushi|dessert|bread|sauce|beef"
        r"|pork|shrimp|rice|noodles?|curry|tacos?|sandwich\w*|breakfast|lunch|dinner|brunch"
        r"|coffee|wine|beer|drinks?|cake|eggs?|bacon|seafood|appetizers?|entrees?|spicy|salty"
        r"|greasy|soggy|overcooked|undercooked",
    ),
)
OTHER = "other"
_THEME_PATTERNS = [(name, re.compile(rf"\b(?:{words})\b")) for name, words in THEMES]


def theme(review: str) -> str:
    """The review's theme by the keyword rule: the first theme of THEMES it mentions."""
    text = review.lower().replace("\u2019", "'")
    for name, pattern in _THEME_PATTERNS:
        if pattern.search(text):
            return name
    return OTHER


class EvaluationError(RuntimeError):
    """Models or data that cannot be evaluated together."""


@dataclass(frozen=True)
class Labelled:
    """A labelled set of reviews: raw, preprocessed, and grouped."""

    name: str
    reviews: list[str]
    texts: list[str]
    labels: list[int]

    @property
    def short(self) -> np.ndarray:
        return np.asarray([len(r.split()) <= SHORT for r in self.reviews])

    @property
    def themes(self) -> list[str]:
        return [theme(r) for r in self.reviews]


def _labelled(name: str, reviews: Sequence[str], labels: Sequence[int]) -> Labelled:
    return Labelled(name, list(reviews), [preprocess(r) for r in reviews], list(labels))


def _overlap(proxy: Corpus, corpus: Corpus) -> int:
    def key(review: str) -> str:
        return " ".join(re.findall(r"[a-z0-9]+", review.lower()))

    known = {key(r) for r in corpus.reviews}
    return sum(key(r) in known for r in proxy.reviews)


def load_version(model_dir: Path, version: str, corpus: Corpus) -> Artefacts:
    """A version's stored sklearn objects, refused unless trained on this very corpus."""
    folder = model_dir / version
    try:
        metadata = read_metadata(folder)
        artefacts = load_sklearn(folder)
    except (ModelLoadError, ArtefactError) as exc:
        raise EvaluationError(f"{exc} (train with `make models`)") from None
    if metadata is None:
        raise EvaluationError(f"{folder} has no metadata.json (train with `make models`)")
    if metadata.data.sha256 != corpus.sha256:
        raise EvaluationError(
            f"{folder} was trained on another {metadata.data.file} than {corpus.path}: its "
            "held-out split would not be unseen (train with `make models`)"
        )
    return artefacts


def _cell(scores: Scores, mask: np.ndarray) -> str:
    return f"{scores.right[mask].mean():.3f}" if mask.any() else "-"


def _line(label: str, groups: Sequence[Sequence[str]], width: int = 9) -> str:
    """A table row: a label, then groups of right-aligned cells, the groups set apart."""
    return f"  {label:<15}" + "".join(
        "   " + "".join(f"{cell:>{width}}" for cell in group) for group in groups
    )


def _title(names: Sequence[str], per_group: int, width: int = 9) -> str:
    return f"  {'':<15}" + "".join(f"   {name:>{per_group * width}}" for name in names)


def report(
    corpus: Corpus,
    proxy: Corpus | None,
    models: dict[str, Artefacts],
    folds: dict[str, list[float]] | None,
    out: Callable[[str], None] = print,
) -> None:
    """Print the evaluation of two versions."""
    a, b = models
    versions = list(models)
    index = list(range(len(corpus.reviews)))
    _, test_idx, _, _ = held_out_split(index, corpus.labels)
    held = _labelled(
        "held-out",
        [corpus.reviews[i] for i in test_idx],
        [corpus.labels[i] for i in test_idx],
    )
    sets = [held]
    if proxy is not None:
        sets.append(_labelled("proxy set", proxy.reviews, proxy.labels))
    scores = {
        (s.name, v): score(model, s.texts, s.labels) for s in sets for v, model in models.items()
    }

    out(
        f"Training file {corpus.path}: {len(corpus.reviews)} reviews (sha256 "
        f"{corpus.sha256[:12]}); the held-out split is {len(held.reviews)} of them, which the "
        "served models were not trained on."
    )
    if proxy is not None:
        out(
            f"Proxy set {proxy.path}: {len(proxy.reviews)} reviews, never trained on "
            f"({_overlap(proxy, corpus)} also in the training file, case and punctuation aside)."
        )

    out("\nAccuracy")
    names = [f"{s.name} ({len(s.reviews)})" for s in sets]
    if folds is not None:
        names.insert(1, f"{FOLDS}-fold CV ({len(corpus.reviews)})")
    out(_title(names, 1, 20))
    for v in versions:
        cells = [f"{scores[s.name, v].accuracy:.3f}" for s in sets]
        if folds is not None:
            cells.insert(1, f"{np.mean(folds[v]):.3f} ± {np.std(folds[v]):.3f}")
        out(_line(v, [[cell] for cell in cells], 20))

    def breakdown(groups: Sequence[str], of: dict[str, np.ndarray]) -> None:
        out(_title([s.name for s in sets], len(versions) + 1))
        out(_line("", [["n", *versions] for _ in sets]))
        for group in groups:
            cells = []
            for s in sets:
                mask = of[s.name] == group
                accuracies = [_cell(scores[s.name, v], mask) for v in versions]
                cells.append([str(int(mask.sum())), *accuracies])
            out(_line(group, cells))

    out(f"\nBy length (short: at most {SHORT} words)")
    breakdown(["short", "longer"], {s.name: np.where(s.short, "short", "longer") for s in sets})

    out(
        "\nBy theme (keyword rule: the first that matches, in this order: "
        + ", ".join(name for name, _ in THEMES)
        + f", else {OTHER}; see restaurant_sentiment.tools.evaluate.theme)"
    )
    breakdown([t for t, _ in THEMES] + [OTHER], {s.name: np.asarray(s.themes) for s in sets})

    out("\nConfusion matrices [[TN FP] [FN TP]]")
    out(_title([s.name for s in sets], 1, 24))
    for v in versions:
        out(_line(v, [[str(scores[s.name, v].confusion())] for s in sets], 24))

    out(
        "\nCalibration error of the served confidence: ECE over 10 equal-width bins of the "
        "verdict's probability (before calibration in brackets)"
    )
    out(_title([s.name for s in sets], 1, 24))
    for v in versions:
        errors = [
            [f"{scores[s.name, v].ece:.3f} ({scores[s.name, v].uncalibrated_ece:.3f})"]
            for s in sets
        ]
        out(_line(v, errors, 24))

    for s in sets:
        ra, rb = scores[s.name, a].right, scores[s.name, b].right
        for winner, loser, only in ((a, b, ra & ~rb), (b, a, rb & ~ra)):
            picked = np.flatnonzero(only)
            out(
                f"\n{s.name}: the {len(picked)} reviews {winner} gets right and {loser} wrong "
                "(label, review)"
            )
            for i in picked:
                out(f"  {s.labels[i]}  {s.reviews[i]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m restaurant_sentiment.tools.evaluate", description=__doc__
    )
    parser.add_argument("--data", type=Path, default=CORPUS, help="the training file")
    parser.add_argument(
        "--eval", type=Path, default=PROXY_SET, help="the proxy set, never trained on"
    )
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument(
        "--no-cv", action="store_true", help="skip the cross-validation (which refits each fold)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        corpus = load_corpus(args.data)
        proxy = load_corpus(args.eval)
        if proxy.sha256 == corpus.sha256:
            raise EvaluationError(f"{args.eval} is the training file; a proxy set must be unseen")
        models = {v: load_version(args.model_dir, v, corpus) for v in VERSIONS}
    except (CorpusError, EvaluationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folds = None
    if not args.no_cv:
        texts = [preprocess(r) for r in corpus.reviews]
        folds = {v: cross_validate(v, texts, corpus.labels) for v in VERSIONS}
    report(corpus, proxy, models, folds)
    print(f"\nEvaluated in {time.perf_counter() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
