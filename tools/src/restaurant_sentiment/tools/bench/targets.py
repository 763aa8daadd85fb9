"""`--target NAME=VALUE` of the benchmarks: a known target's name and a number."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable


def target_type(known: Iterable[str]) -> Callable[[str], tuple[str, float]]:
    """An argparse type reading NAME=VALUE for one of the `known` targets."""
    names = list(known)

    def parse_target(text: str) -> tuple[str, float]:
        name, _, value = text.partition("=")
        if name not in names:
            raise argparse.ArgumentTypeError(f"unknown target {name!r}; known: {', '.join(names)}")
        try:
            return name, float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: the target must be a number") from None

    return parse_target
