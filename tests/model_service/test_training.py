import hashlib
import json
import math
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from restaurant_sentiment.model_service.corpus import load_corpus
from restaurant_sentiment.model_service.metadata import ModelMetadata
from restaurant_sentiment.model_service.model import SentimentModel
from restaurant_sentiment.model_service.preprocess import preprocess
from restaurant_sentiment.model_service.train import build, fit, frequent_terms, main
from tests.support import MODEL_DIR, PYTHON, ROOT

CORPUS = ROOT / "data" / "restaurant_reviews.tsv"


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every fourth review of the project corpus, so training runs fast."""
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    path = tmp_path_factory.mktemp("data") / "small.tsv"
    path.write_text("\n".join([lines[0], *lines[1::4]]) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_training_is_deterministic(small_corpus: Path, tmp_path: Path) -> None:
    probe = load_corpus(CORPUS).reviews[:400]
    runs = []
    for out in (tmp_path / "a", tmp_path / "b"):
        assert main(["--data", str(small_corpus), "--out", str(out)]) == 0
        runs.append(
            {
                v: SentimentModel.load(out, v).sklearn_predict(probe).tolist()
                for v in ("stable", "canary")
            }
        )
    assert runs[0] == runs[1]


def test_metadata_records_data_artefacts_and_quality(small_corpus: Path, tmp_path: Path) -> None:
    proxy = ROOT / "data" / "eval_plain_reviews.tsv"
    argv = ["--data", str(small_corpus), "--eval", str(proxy), "--out", str(tmp_path)]
    assert main([*argv, "--versions", "canary"]) == 0
    text = (tmp_path / "canary" / "metadata.json").read_text()
    # Written through the schema the loader reads with.
    meta = ModelMetadata.model_validate_json(text)
    assert meta.version == "canary"
    assert meta.data.sha256 == load_corpus(small_corpus).sha256
    assert set(meta.artefacts) == {
        "c1_BoW_Sentiment_Model.pkl",
        "c2_Classifier_Sentiment_Model",
        "c3_Calibration.pkl",
        "c4_Serving_Tables.npz",
    }
    for name, digest in meta.artefacts.items():
        assert hashlib.sha256((tmp_path / "canary" / name).read_bytes()).hexdigest() == digest
    assert 0.5 < meta.held_out.accuracy <= 1.0
    assert len(meta.cross_validation.fold_accuracy) == 5
    # train_test_split holds out ceil(0.2 * n) reviews.
    assert meta.held_out.reviews == math.ceil(meta.data.reviews * 0.2)
    assert sum(map(sum, meta.held_out.confusion_matrix)) == meta.held_out.reviews
    assert meta.calibration is not None and meta.calibration.method == "platt_slope"
    assert 0.0 <= meta.held_out.ece <= 1.0
    assert meta.proxy_set is not None
    assert meta.proxy_set.sha256 == load_corpus(proxy).sha256
    assert meta.proxy_set.reviews == 505
    assert {"scikit-learn", "numpy", "vaderSentiment"} <= set(meta.libraries)
    # snake_case JSON, as /version shows it.
    assert '"held_out"' in text and '"proxy_set"' in text


def test_the_training_file_cannot_be_its_own_proxy_set(small_corpus: Path, tmp_path: Path) -> None:
    argv = ["--data", str(small_corpus), "--eval", str(small_corpus), "--out", str(tmp_path)]
    assert main(argv) == 2
    assert not (tmp_path / "canary").exists()


def test_canary_beats_stable_held_out_and_in_cross_validation() -> None:
    meta = {
        v: json.loads((MODEL_DIR / v / "metadata.json").read_text()) for v in ("stable", "canary")
    }
    assert meta["canary"]["held_out"]["accuracy"] > meta["stable"]["held_out"]["accuracy"]
    assert (
        meta["canary"]["cross_validation"]["accuracy_mean"]
        > meta["stable"]["cross_validation"]["accuracy_mean"]
    )
    assert meta["canary"]["cross_validation"]["accuracy_mean"] >= 0.85


def test_terms_as_frequent_as_each_other_are_kept_in_alphabetical_order() -> None:
    # 300 terms seen once and two seen twice: ten places, so eight go to the first of the ties.
    terms = [f"w{n:03d}" for n in reversed(range(300))]
    texts = [" ".join(terms), "w299 w150"]
    vectorizer, _ = build("stable")
    kept = frequent_terms(vectorizer.set_params(max_features=10), texts)
    assert kept.vocabulary == [*(f"w{n:03d}" for n in range(8)), "w150", "w299"]
    assert kept.fit_transform(texts).shape == (2, 10)


def test_the_stable_vocabulary_is_its_most_frequent_words_whatever_the_machine_sorts() -> None:
    # Counted here in plain Python, with ties in alphabetical order: the vocabulary must not
    # depend on how numpy's argsort orders equal counts (it differs with AVX-512).
    corpus = load_corpus(CORPUS)
    texts = [preprocess(review) for review in corpus.reviews]
    vectorizer, _ = build("stable")
    analyzer = vectorizer.build_analyzer()
    counts = Counter(term for text in texts for term in analyzer(text))
    ranked = sorted(counts, key=lambda term: (-counts[term], term))
    limit = vectorizer.max_features
    assert counts[ranked[limit - 1]] == counts[ranked[limit]]  # the cut falls inside a tie
    model = fit("stable", texts, corpus.labels)
    assert sorted(model.vectorizer.vocabulary_) == sorted(ranked[:limit])


@pytest.mark.slow
def test_cli_stops_on_a_bad_file_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("Review\tLiked\nLovely\t1\nAwful\tmaybe\n", encoding="utf-8")
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "restaurant_sentiment.model_service.train",
            "--data",
            str(bad),
            "--out",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert f"{bad}:3: label must be 0 or 1" in result.stderr
    assert not (tmp_path / "m").exists()
