"""Single-review cost by review length: python -m research.timing

sklearn (vectoriser transform + predict on one preprocessed review) against the table scorer
(preprocessing included), for the seed canary, the recommended canary and the canary with
character n-grams; fitted on the service's training split.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from research.experiment import load, time_one
from research.features import read_vader_lexicon
from research.models import SEED_CANARY, build_canary, fit
from research.tables import TableScorer, extract, reference_text
from research.train import CANARY

REVIEWS = (
    "Crust is not good.",
    "The selection on the menu was great and so were the prices.",
    "The waitress was friendly and our food came out quickly, but the steak was overcooked "
    "and the fries were cold.",
)


def main() -> int:
    data = load()
    lexicon = read_vader_lexicon()
    x_train = [data.texts[i] for i in data.train]
    y_train = data.labels[data.train].tolist()
    print("| design | words | sklearn µs | tables µs | ratio |\n|---|---|---|---|---|")
    for options in (SEED_CANARY, CANARY, CANARY.but(min_df=2, chars=(2, 5))):
        vectorizer, classifier = fit(build_canary(options, lexicon), x_train, y_train)
        scorer = TableScorer(extract(vectorizer, classifier, None))
        for review in REVIEWS:

            def by_sklearn(review: str = review, v: Any = vectorizer, c: Any = classifier) -> Any:
                return c.predict(v.transform([reference_text(review)]))

            sk = time_one(by_sklearn, number=30) * 1e6
            tb = time_one(partial(scorer.score, review), number=300) * 1e6
            words = len(review.split())
            print(f"| {options.label()} | {words} | {sk:.0f} | {tb:.1f} | {sk / tb:.0f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
