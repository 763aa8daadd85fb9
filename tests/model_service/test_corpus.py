from pathlib import Path

import pytest

from restaurant_sentiment.model_service.corpus import CorpusError, load_corpus
from tests.support import ROOT

CORPUS = ROOT / "data" / "restaurant_reviews.tsv"


def write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "reviews.tsv"
    path.write_bytes(content)
    return path


def test_project_corpus_is_large_balanced_and_unique() -> None:
    corpus = load_corpus(CORPUS)
    assert len(corpus.reviews) >= 2000
    assert 0.45 <= sum(corpus.labels) / len(corpus.labels) <= 0.55
    assert len({r.lower() for r in corpus.reviews}) == len(corpus.reviews)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"Text\tLabel\nGood\t1\n", ":1: header must be 'Review<TAB>Liked'"),
        (b"Review\tLiked\nGood\t1\nBad\n", ":3: expected 2 tab-separated columns"),
        (b"Review\tLiked\nGood\t1\nBad\t2\n", ":3: label must be 0 or 1, found '2'"),
        (b"Review\tLiked\nGood\t1\nReview\tLiked\nBad\t0\n", ":3: repeats the header"),
        (b"Review\tLiked\nGood\t1\nCaf\xe9 bad\t0\n", ":3: is not valid UTF-8"),
        (b"Review\tLiked\n\t1\n", ":2: has an empty review"),
        (b"Review\tLiked\n", "has a header but no reviews"),
        (b"Review\tLiked\nGood\t1\nNice\t1\n", "needs both positive (1) and negative (0)"),
    ],
)
def test_bad_files_are_rejected_naming_file_and_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(CorpusError) as excinfo:
        load_corpus(path)
    assert str(excinfo.value).startswith(str(path))
    assert message in str(excinfo.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="cannot read the file"):
        load_corpus(tmp_path / "absent.tsv")
