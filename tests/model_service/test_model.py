import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from restaurant_sentiment.model_service.artefacts import load_sklearn, tables
from restaurant_sentiment.model_service.corpus import load_corpus
from restaurant_sentiment.model_service.files import (
    CALIBRATION_FILE,
    CLASSIFIER_FILE,
    TABLES_FILE,
    VECTORIZER_FILE,
)
from restaurant_sentiment.model_service.model import ModelLoadError, SentimentModel
from restaurant_sentiment.model_service.tables import read_tables
from tests.support import MODEL_DIR, ROOT

REVIEWS = load_corpus(ROOT / "data" / "restaurant_reviews.tsv").reviews


@pytest.mark.parametrize("version", ["stable", "canary"])
def test_fast_paths_give_sklearns_predictions_on_every_corpus_review(
    version: str, loaded_models: dict[str, SentimentModel]
) -> None:
    model = loaded_models[version]
    reference, calibrated = model.sklearn_score(REVIEWS)
    single = [model.predict(r) for r in REVIEWS]
    batch = model.predict_batch(REVIEWS)
    assert [s.prediction for s in single] == reference.tolist()
    assert [s.prediction for s in batch] == reference.tolist()
    # The served confidence is the stored calibration's, applied to sklearn's own log-odds.
    assert model.sklearn_objects().calibrator is not None
    assert np.allclose([s.confidence for s in single], calibrated, rtol=0, atol=1e-9)
    assert np.allclose([s.confidence for s in batch], calibrated, rtol=0, atol=1e-9)
    assert all(0.5 <= s.confidence <= 1.0 for s in single)


def test_good_is_negative_on_stable_and_positive_on_the_canary(
    loaded_models: dict[str, SentimentModel],
) -> None:
    assert loaded_models["stable"].predict("good").prediction == 0
    assert loaded_models["canary"].predict("good").prediction == 1


def test_the_canary_counts_the_polarity_of_words_its_training_never_saw(
    loaded_models: dict[str, SentimentModel],
) -> None:
    canary = loaded_models["canary"]
    # Lexicon words absent from the corpus: only the lexicon features can score them.
    vocabulary = canary.sklearn_objects().vectorizer.transformer_list[0][1].vocabulary_
    assert "splendid" not in vocabulary and "vile" not in vocabulary
    assert canary.predict("Splendid.").prediction == 1
    assert canary.predict("Vile.").prediction == 0
    # A negated positive word counts against the review.
    assert canary.predict("Not splendid.").prediction == 0


def test_versions_disagree_on_some_reviews(loaded_models: dict[str, SentimentModel]) -> None:
    stable = loaded_models["stable"].sklearn_predict(REVIEWS)
    canary = loaded_models["canary"].sklearn_predict(REVIEWS)
    assert (stable != canary).any()


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    shutil.copytree(MODEL_DIR / "canary", tmp_path / "canary")
    return tmp_path


def test_missing_artefact_is_named(model_copy: Path) -> None:
    (model_copy / "canary" / CLASSIFIER_FILE).unlink()
    with pytest.raises(ModelLoadError, match=f"canary/{CLASSIFIER_FILE} is missing"):
        SentimentModel.load(model_copy, "canary")


def test_truncated_artefact_fails_its_checksum(model_copy: Path) -> None:
    path = model_copy / "canary" / VECTORIZER_FILE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match=f"canary/{VECTORIZER_FILE} does not match the sha256"):
        SentimentModel.load(model_copy, "canary")


@pytest.mark.slow
def test_corrupt_artefact_without_metadata_is_named(model_copy: Path) -> None:
    (model_copy / "canary" / "metadata.json").unlink()
    path = model_copy / "canary" / CLASSIFIER_FILE
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(ModelLoadError, match=f"canary/{CLASSIFIER_FILE} is corrupt or unreadable"):
        SentimentModel.load(model_copy, "canary")


@pytest.mark.slow
def test_swapped_artefacts_are_refused(model_copy: Path) -> None:
    folder = model_copy / "canary"
    (folder / "metadata.json").unlink()
    vectorizer = (folder / VECTORIZER_FILE).read_bytes()
    (folder / VECTORIZER_FILE).write_bytes((folder / CLASSIFIER_FILE).read_bytes())
    (folder / CLASSIFIER_FILE).write_bytes(vectorizer)
    with pytest.raises(ModelLoadError, match="is not a text vectoriser"):
        SentimentModel.load(model_copy, "canary")


def test_missing_calibration_is_named(model_copy: Path) -> None:
    (model_copy / "canary" / CALIBRATION_FILE).unlink()
    with pytest.raises(ModelLoadError, match=f"canary/{CALIBRATION_FILE} is missing"):
        SentimentModel.load(model_copy, "canary")


@pytest.mark.slow
def test_a_calibration_file_holding_something_else_is_refused(model_copy: Path) -> None:
    (model_copy / "canary" / "metadata.json").unlink()
    shutil.copy(model_copy / "canary" / CLASSIFIER_FILE, model_copy / "canary" / CALIBRATION_FILE)
    with pytest.raises(ModelLoadError, match=f"{CALIBRATION_FILE} is not a fitted calibration"):
        SentimentModel.load(model_copy, "canary")


def test_metadata_of_another_shape_is_refused_naming_the_field(model_copy: Path) -> None:
    path = model_copy / "canary" / "metadata.json"
    meta = json.loads(path.read_text())
    meta["held_out"]["accuracy"] = "high"
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=r"metadata.json is not valid: held_out\.accuracy"):
        SentimentModel.load(model_copy, "canary")


def test_metadata_cannot_point_outside_the_version_folder(model_copy: Path) -> None:
    path = model_copy / "canary" / "metadata.json"
    meta = json.loads(path.read_text())
    meta["artefacts"]["../stable/" + CLASSIFIER_FILE] = "0" * 64
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=r"is not valid: artefacts\."):
        SentimentModel.load(model_copy, "canary")


def test_unreadable_metadata_is_named(model_copy: Path) -> None:
    (model_copy / "canary" / "metadata.json").write_text("{oops")
    with pytest.raises(ModelLoadError, match="metadata.json is not valid JSON"):
        SentimentModel.load(model_copy, "canary")


def test_unknown_version_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        SentimentModel.load(tmp_path, "canary")


def test_metadata_checksums_match_the_files(loaded_models: dict[str, SentimentModel]) -> None:
    meta = json.loads((MODEL_DIR / "stable" / "metadata.json").read_text())
    assert loaded_models["stable"].metadata == meta


@pytest.mark.slow
def test_child_process_load_matches_sklearn_and_keeps_sklearn_out(
    loaded_models: dict[str, SentimentModel],
) -> None:
    code = (
        "import sys, json; from pathlib import Path;"
        "from restaurant_sentiment.model_service.model import SentimentModel;"
        "m = SentimentModel.load(Path(sys.argv[1]), 'canary');"
        "print(json.dumps({'sklearn': 'sklearn' in sys.modules,"
        " 'vader': 'vaderSentiment' in sys.modules,"
        " 'verdicts': [m.predict(r).prediction for r in sys.argv[2:]]}))"
    )
    probe = REVIEWS[:40]
    out = subprocess.run(
        [sys.executable, "-c", code, str(MODEL_DIR), *probe],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert result["sklearn"] is False
    assert result["vader"] is False
    assert result["verdicts"] == loaded_models["canary"].sklearn_predict(probe).tolist()


@pytest.mark.slow
def test_a_model_without_calibration_reports_its_own_probability(tmp_path: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from restaurant_sentiment.model_service.preprocess import preprocess

    labels = load_corpus(ROOT / "data" / "restaurant_reviews.tsv").labels
    texts = [preprocess(r) for r in REVIEWS]
    vectorizer = TfidfVectorizer(token_pattern=r"\S+").fit(texts)
    classifier = LogisticRegression().fit(vectorizer.transform(texts), labels)
    (tmp_path / "plain").mkdir()
    joblib.dump(vectorizer, tmp_path / "plain" / VECTORIZER_FILE)
    joblib.dump(classifier, tmp_path / "plain" / CLASSIFIER_FILE)
    model = SentimentModel.load(tmp_path, "plain")
    proba = classifier.predict_proba(vectorizer.transform(texts[:300]))
    served = [model.predict(r) for r in REVIEWS[:300]]
    assert [s.prediction for s in served] == proba.argmax(axis=1).tolist()
    assert np.allclose([s.confidence for s in served], proba.max(axis=1), rtol=0, atol=1e-9)


@pytest.mark.slow
def test_other_model_kinds_are_served_by_sklearn(tmp_path: Path) -> None:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    from restaurant_sentiment.model_service.preprocess import preprocess

    labels = load_corpus(ROOT / "data" / "restaurant_reviews.tsv").labels
    texts = [preprocess(r) for r in REVIEWS]
    vectorizer = CountVectorizer().fit(texts)
    classifier = MultinomialNB().fit(vectorizer.transform(texts), labels)
    (tmp_path / "mnb").mkdir()
    joblib.dump(vectorizer, tmp_path / "mnb" / VECTORIZER_FILE)
    joblib.dump(classifier, tmp_path / "mnb" / CLASSIFIER_FILE)
    model = SentimentModel.load(tmp_path, "mnb")
    expected = classifier.predict(vectorizer.transform(texts[:200])).tolist()
    assert [model.predict(r).prediction for r in REVIEWS[:200]] == expected
    assert [s.prediction for s in model.predict_batch(REVIEWS[:200])] == expected


@pytest.mark.parametrize("version", ["stable", "canary"])
def test_stored_tables_are_those_reduced_from_the_sklearn_artefacts(version: str) -> None:
    stored, sources = read_tables(MODEL_DIR / version / TABLES_FILE)
    reduced = tables(load_sklearn(MODEL_DIR / version))
    assert reduced is not None
    assert set(stored) == set(reduced)
    for key, value in reduced.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(stored[key], value), key
        else:
            assert stored[key] == value, key
    meta = json.loads((MODEL_DIR / version / "metadata.json").read_text())
    assert sources == {k: v for k, v in meta["artefacts"].items() if k != TABLES_FILE}


def test_stored_tables_load_without_a_child_process(
    model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a child process was started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    model = SentimentModel.load(model_copy, "canary")
    assert model.predict("Splendid.").prediction == 1


def test_corrupt_tables_fail_their_checksum(model_copy: Path) -> None:
    path = model_copy / "canary" / TABLES_FILE
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=f"canary/{TABLES_FILE} does not match the sha256"):
        SentimentModel.load(model_copy, "canary")


def test_corrupt_tables_without_metadata_are_named(model_copy: Path) -> None:
    (model_copy / "canary" / "metadata.json").unlink()
    path = model_copy / "canary" / TABLES_FILE
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=f"canary/{TABLES_FILE} is corrupt or unreadable"):
        SentimentModel.load(model_copy, "canary")


def test_tables_of_another_model_are_refused(model_copy: Path) -> None:
    shutil.copy(MODEL_DIR / "stable" / TABLES_FILE, model_copy / "canary" / TABLES_FILE)
    with pytest.raises(ModelLoadError, match=f"canary/{TABLES_FILE} does not match the sha256"):
        SentimentModel.load(model_copy, "canary")


@pytest.mark.slow
def test_tables_reduced_from_other_artefacts_are_not_served(model_copy: Path) -> None:
    # Without metadata.json only the tables' own record of their sources can tell: the stable
    # tables say they come from the stable artefacts, so the canary's are reduced afresh.
    folder = model_copy / "canary"
    (folder / "metadata.json").unlink()
    shutil.copy(MODEL_DIR / "stable" / TABLES_FILE, folder / TABLES_FILE)
    model = SentimentModel.load(model_copy, "canary")
    probe = REVIEWS[:200]
    assert [s.prediction for s in model.predict_batch(probe)] == model.sklearn_predict(
        probe
    ).tolist()
    assert model.predict("Splendid.").prediction == 1


def rewrite_tables(
    folder: Path, change: Callable[[dict[str, Any], dict[str, np.ndarray]], None]
) -> None:
    """Store the folder's tables again after `change(header, arrays)`, metadata.json removed."""
    (folder / "metadata.json").unlink()
    with np.load(folder / TABLES_FILE) as stored:
        arrays = {name: stored[name] for name in stored.files}
    header = json.loads(arrays["header"].tobytes())
    change(header, arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with (folder / TABLES_FILE).open("wb") as out:
        np.savez(out, **arrays)


def another_format(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    header["format"] = 99


def a_weight_short(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    arrays["weights"] = arrays["weights"][:-1]


def no_calibration_shape(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    header["calibration"] = {"type": "platt"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (another_format, "has format 99; this service reads format 1"),
        (a_weight_short, "the weights table has shape"),
        (no_calibration_shape, "holds no calibration table of a known shape"),
    ],
)
def test_inconsistent_tables_are_refused_naming_the_file(
    model_copy: Path,
    change: Callable[[dict[str, Any], dict[str, np.ndarray]], None],
    message: str,
) -> None:
    rewrite_tables(model_copy / "canary", change)
    with pytest.raises(ModelLoadError, match=f"canary/{TABLES_FILE}.*{message}"):
        SentimentModel.load(model_copy, "canary")


@pytest.mark.slow
def test_word_trigrams_and_short_word_filters_are_scored_as_sklearn_does(tmp_path: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion

    from restaurant_sentiment.model_service.features import LexiconFeatures
    from restaurant_sentiment.model_service.preprocess import preprocess

    labels = load_corpus(ROOT / "data" / "restaurant_reviews.tsv").labels
    texts = [preprocess(r) for r in REVIEWS]
    # sklearn's default token pattern drops one-letter words from the n-grams, not the lexicon.
    vectorizer = FeatureUnion(
        [("words", TfidfVectorizer(ngram_range=(1, 3))), ("lexicon", LexiconFeatures())]
    ).fit(texts)
    classifier = LogisticRegression(max_iter=3000).fit(vectorizer.transform(texts), labels)
    (tmp_path / "trigrams").mkdir()
    joblib.dump(vectorizer, tmp_path / "trigrams" / VECTORIZER_FILE)
    joblib.dump(classifier, tmp_path / "trigrams" / CLASSIFIER_FILE)
    model = SentimentModel.load(tmp_path, "trigrams")
    probe = [*REVIEWS[:1000], "", "!!", "Not splendid at all.", "a b c d"]
    proba = classifier.predict_proba(vectorizer.transform([preprocess(r) for r in probe]))
    verdicts, confidences = model.score_batch(probe)
    assert verdicts == proba.argmax(axis=1).tolist()
    assert [model.predict(r).prediction for r in probe] == verdicts
    assert np.allclose(confidences, proba.max(axis=1), rtol=0, atol=1e-9)
