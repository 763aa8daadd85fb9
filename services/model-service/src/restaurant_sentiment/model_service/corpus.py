"""Reading and validating labelled review files (TSV with the header ``Review<TAB>Liked``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

HEADER = ("Review", "Liked")


class CorpusError(ValueError):
    """A labelled review file that cannot be used, with the file and line at fault."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Corpus:
    """Reviews and their labels (1 positive, 0 negative), in file order."""

    path: Path
    reviews: list[str]
    labels: list[int]
    sha256: str


def load_corpus(path: Path) -> Corpus:
    """Read and check a TSV corpus; every problem names the file and line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(path, None, f"cannot read the file ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CorpusError(path, line, "is not valid UTF-8 text") from exc
    lines = text.splitlines()
    if not lines or not any(line.strip() for line in lines):
        raise CorpusError(path, None, "is empty; expected a header 'Review<TAB>Liked' and rows")
    header = tuple(cell.strip() for cell in lines[0].split("\t"))
    if header != HEADER:
        raise CorpusError(path, 1, f"header must be 'Review<TAB>Liked', found {lines[0]!r}")
    reviews: list[str] = []
    labels: list[int] = []
    for number, row in enumerate(lines[1:], start=2):
        if not row.strip():
            continue
        cells = row.split("\t")
        if tuple(cell.strip() for cell in cells) == HEADER:
            raise CorpusError(path, number, "repeats the header")
        if len(cells) != 2:
            raise CorpusError(
                path,
                number,
                f"expected 2 tab-separated columns (Review, Liked), found {len(cells)}",
            )
        review, label = cells[0].strip(), cells[1].strip()
        if not review:
            raise CorpusError(path, number, "has an empty review")
        if label not in {"0", "1"}:
            raise CorpusError(path, number, f"label must be 0 or 1, found {label!r}")
        reviews.append(review)
        labels.append(int(label))
    if not reviews:
        raise CorpusError(path, None, "has a header but no reviews")
    if len(set(labels)) < 2:
        raise CorpusError(path, None, "needs both positive (1) and negative (0) reviews")
    return Corpus(path, reviews, labels, hashlib.sha256(raw).hexdigest())
