"""The confidence users see is calibrated, never contradicts the verdict, and is the served one."""

import numpy as np
import pytest

from restaurant_sentiment.model_service.calibration import (
    BinnedConfidence,
    CalibrationError,
    PlattSlope,
    confidence_many,
    confidence_one,
    expected_calibration_error,
)
from restaurant_sentiment.model_service.corpus import load_corpus
from restaurant_sentiment.model_service.model import SentimentModel, read_metadata
from restaurant_sentiment.model_service.train import held_out_split
from tests.support import MODEL_DIR, ROOT

VERSIONS = ("stable", "canary")
CORPUS = load_corpus(ROOT / "data" / "restaurant_reviews.tsv")
PROXY = load_corpus(ROOT / "data" / "eval_plain_reviews.tsv")


def _noisy_log_odds(seed: int = 0, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Log-odds whose true probability of the positive class is sigmoid(z / 2)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 4.0, n)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z / 2))).astype(int)
    return z, y


def test_expected_calibration_error_of_a_known_case() -> None:
    confidence = np.array([0.6] * 5 + [0.95] * 5)
    correct = np.array([1] * 5 + [1, 1, 1, 1, 0])
    # Bin 0.6: accuracy 1.0 vs 0.6; bin 0.9-1.0: 0.8 vs 0.95; each half the reviews.
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.4 + 0.5 * 0.15)
    assert expected_calibration_error(np.array([0.9] * 10), np.array([1] * 9 + [0])) == 0.0


def test_platt_slope_learns_an_overconfident_models_scale() -> None:
    z, y = _noisy_log_odds()
    platt = PlattSlope().fit(z, y)
    assert platt.slope_ == pytest.approx(0.5, abs=0.05)
    right = (z > 0).astype(int) == y
    raw = confidence_many(z, None)
    assert expected_calibration_error(platt.confidence(z), right) < 0.03
    assert expected_calibration_error(raw, right) > 0.05


@pytest.mark.parametrize("calibrator", [PlattSlope(), BinnedConfidence(6)], ids=["platt", "binned"])
def test_the_confidence_is_of_the_models_own_verdict_and_never_below_half(
    calibrator: PlattSlope | BinnedConfidence,
) -> None:
    z, y = _noisy_log_odds()
    calibrator.fit(z, y)
    probe = np.concatenate([np.linspace(-30, 30, 601), [0.0, 1e-12, -1e-12, 1e9, -1e9]])
    confidence = calibrator.confidence(probe)
    assert ((confidence >= 0.5) & (confidence <= 1.0)).all()
    # Serving computes one review at a time with the same tables.
    single = [confidence_one(float(v), calibrator.table()) for v in probe]
    assert np.allclose(single, confidence, rtol=0, atol=1e-12)


def test_binned_confidence_is_the_accuracy_of_the_verdicts_bin() -> None:
    z = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0] * 100)
    y = np.array([0, 0, 1, 1, 1, 0] * 100)
    binned = BinnedConfidence(bins=3).fit(z, y)
    # Negative verdicts at |z| 3 and 2 are right, at 1 wrong (shown as 1/2, not below).
    assert binned.confidence(np.array([-3.0, -2.0, -1.0])).tolist() == [1.0, 1.0, 0.5]
    assert binned.confidence(np.array([1.0, 2.0, 3.0])).tolist() == [1.0, 1.0, 0.5]


def test_a_slope_that_would_flip_verdicts_is_refused() -> None:
    z, y = _noisy_log_odds()
    with pytest.raises(CalibrationError, match="not positive"):
        PlattSlope().fit(z, 1 - y)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_served_confidence_is_calibrated_on_the_held_out_split(
    version: str, loaded_models: dict[str, SentimentModel]
) -> None:
    meta = read_metadata(MODEL_DIR / version)
    assert meta is not None and meta.calibration is not None
    assert meta.held_out.ece <= 0.05
    # The recorded figure is the served model's: recompute it through the serving path.
    _, reviews, _, labels = held_out_split(CORPUS.reviews, CORPUS.labels)
    scored = loaded_models[version].predict_batch(reviews)
    right = np.array([s.prediction for s in scored]) == np.array(labels)
    served = expected_calibration_error(np.array([s.confidence for s in scored]), right)
    assert served == pytest.approx(meta.held_out.ece, abs=1e-9)
    assert right.mean() == pytest.approx(meta.held_out.accuracy, abs=1e-12)


def test_the_canary_reads_plain_reviews_better_than_stable(
    loaded_models: dict[str, SentimentModel],
) -> None:
    accuracy = {}
    for version in VERSIONS:
        scored = loaded_models[version].predict_batch(PROXY.reviews)
        accuracy[version] = float(np.mean([s.prediction for s in scored] == np.array(PROXY.labels)))
        meta = read_metadata(MODEL_DIR / version)
        assert meta is not None
        if meta.proxy_set is not None:
            assert meta.proxy_set.sha256 == PROXY.sha256
            assert meta.proxy_set.accuracy == pytest.approx(accuracy[version], abs=1e-12)
    assert accuracy["canary"] >= 0.88
    assert accuracy["canary"] > accuracy["stable"]
