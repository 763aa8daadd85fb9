"""Does the negation scope matter? python -m research.negation

Variants of the service's scope (``neg_`` from a negator to the next punctuation mark or contrast
word), derived from its output: a run of ``neg_`` words is one scope, since preprocessing drops
the punctuation that ends it. "window k" keeps the mark on the first k words of each scope only;
"none" drops every mark. Measured for the seed canary and the canary with lexicon sums (accuracy
only: the tables would need the variant in preprocessing too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from research.experiment import Data, _pick, cross_validate, load
from research.features import read_vader_lexicon
from research.models import SEED_CANARY, build_canary, fit, predict


def rescope(text: str, window: int | None) -> str:
    """The preprocessed text with each negation scope cut to ``window`` words (0: no marks)."""
    if window is None:
        return text
    out, run = [], 0
    for word in text.split(" "):
        if word.startswith("neg_"):
            run += 1
            out.append(word if run <= window else word[4:])
        else:
            run = 0
            out.append(word)
    return " ".join(out)


def measure(build: Callable[[], Any], data: Data) -> tuple[float, float, float]:
    cv = float(np.mean(cross_validate(build, data)))
    pair = fit(build(), *_pick(data, data.train))
    test = data.test
    held = float((predict(pair, _pick(data, test)[0]) == data.labels[test]).mean())
    seed_idx, plain_idx = np.flatnonzero(~data.plain), np.flatnonzero(data.plain)
    seed_pair = fit(build(), *_pick(data, seed_idx))
    transfer = float(
        (predict(seed_pair, _pick(data, plain_idx)[0]) == data.labels[plain_idx]).mean()
    )
    return cv, held, transfer


def main() -> int:
    base = load()
    lexicon = read_vader_lexicon()
    designs = {
        "seed canary": lambda: build_canary(SEED_CANARY),
        "canary + vader sums": lambda: build_canary(SEED_CANARY.but(lexicon="sums"), lexicon),
    }
    print(
        "| design | negation scope | 5-fold CV | held-out | transfer to plain |\n"
        "|---|---|---|---|---|"
    )
    for window, name in ((None, "to punctuation (service)"), (3, "window 3"), (2, "window 2"),
                         (1, "window 1"), (0, "no marks")):  # fmt: skip
        data = Data(**{**base.__dict__, "texts": [rescope(t, window) for t in base.texts]})
        for label, build in designs.items():
            cv, held, transfer = measure(build, data)
            print(f"| {label} | {name} | {cv:.3f} | {held:.3f} | {transfer:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
