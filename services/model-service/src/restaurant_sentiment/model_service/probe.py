"""List probe reviews on which two model versions disagree: python -m model_service.probe."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from restaurant_sentiment.model_service.model import ModelLoadError, SentimentModel

PROBES = (
    "good", "This is good.", "Pretty good.", "Not bad at all.", "The service wasn't bad.",
    "The food was not good.", "I would not come back.", "It was okay.", "This excellent.",
    "Great food but rude staff.", "Never again.", "Not the worst meal I've had.",
    "Could have been warmer.", "Loved it!", "Meh.",
)  # fmt: skip


def disagreements(
    a: SentimentModel, b: SentimentModel, probes: tuple[str, ...] = PROBES
) -> list[tuple[str, int, int]]:
    """The probes whose verdicts differ between the two models, in probe order."""
    out = []
    for probe in probes:
        first, second = a.predict(probe).prediction, b.predict(probe).prediction
        if first != second:
            out.append((probe, first, second))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_service.probe", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("ml-model"))
    parser.add_argument("versions", nargs="*", default=["stable", "canary"])
    args = parser.parse_args(argv)
    if len(args.versions) != 2:
        parser.error("name exactly two versions")
    try:
        a, b = (SentimentModel.load(args.model_dir, v) for v in args.versions)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found = disagreements(a, b)
    print(f"{args.versions[0]:>8} {args.versions[1]:>8}  review")
    for probe, first, second in found:
        print(f"{first:>8} {second:>8}  {probe}")
    if not found:
        print("(the versions agree on every probe)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
