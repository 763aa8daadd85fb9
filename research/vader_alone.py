"""VADER alone, no training, as a reference: python -m research.vader_alone

Accuracy of VADER's compound score (positive when >= 0, or when > 0.05) on the seed corpus and on
the added plain reviews. On the real reviews it reached 0.817; how it fares here says how hard
the plain reviews are compared with real ones.
"""

from __future__ import annotations

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from research.experiment import load


def main() -> int:
    data = load()
    analyzer = SentimentIntensityAnalyzer()
    compound = np.asarray([analyzer.polarity_scores(r)["compound"] for r in data.reviews])
    for threshold, rule in ((0.0, "compound > 0"), (0.05, "compound >= 0.05")):
        guess = (compound >= threshold) if threshold else (compound > 0)
        right = guess.astype(int) == data.labels
        print(
            f"VADER {rule}: seed corpus {right[~data.plain].mean():.3f}, "
            f"added plain {right[data.plain].mean():.3f}, "
            f"added plain ≤8 words {right[data.plain & data.short].mean():.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
