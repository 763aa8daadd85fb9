"""The statistics against published worked examples, closed forms, and simulation."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from scipy import special, stats

from restaurant_sentiment.experiment.stats import (
    Interval,
    bayes_compare,
    newcombe_interval,
    sample_ratio_test,
    wilson_interval,
)

# Newcombe RG (1998), "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Stat Med 17:857-872, Table II, method 3 (Wilson score, no continuity correction).
WILSON_EXAMPLES = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]

# Newcombe RG (1998), "Interval estimation for the difference between independent proportions:
# comparison of eleven methods", Stat Med 17:873-890, Table II, method 10 (hybrid score).
NEWCOMBE_EXAMPLES = [
    ((56, 70, 48, 80), 0.0524, 0.3339),
    ((9, 10, 3, 10), 0.1705, 0.8090),
    ((5, 56, 0, 29), -0.0381, 0.1926),
    ((0, 10, 0, 20), -0.1611, 0.2775),
    ((0, 10, 0, 10), -0.2775, 0.2775),
    ((10, 10, 0, 20), 0.6791, 1.0000),
    ((10, 10, 0, 10), 0.6075, 1.0000),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), WILSON_EXAMPLES)
def test_wilson_matches_newcombe_table(k: int, n: int, low: float, high: float) -> None:
    interval = wilson_interval(k, n, 0.95)
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


@pytest.mark.parametrize(("counts", "low", "high"), NEWCOMBE_EXAMPLES)
def test_newcombe_matches_published_examples(
    counts: tuple[int, int, int, int], low: float, high: float
) -> None:
    interval = newcombe_interval(*counts, confidence_level=0.95)
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


def test_higher_confidence_gives_wider_intervals() -> None:
    narrow = wilson_interval(80, 100, 0.90)
    wide = wilson_interval(80, 100, 0.99)
    assert wide.low < narrow.low < 0.8 < narrow.high < wide.high
    d90 = newcombe_interval(80, 100, 70, 100, 0.90)
    d99 = newcombe_interval(80, 100, 70, 100, 0.99)
    assert d99.low < d90.low < 0.1 < d90.high < d99.high


def test_no_trials_means_no_information() -> None:
    assert wilson_interval(0, 0) == Interval(0.0, 1.0)
    assert newcombe_interval(0, 0, 0, 0).contains(0.0)


@pytest.mark.parametrize("bad", [(5, 4), (-1, 4), (1, -1)])
def test_impossible_counts_are_rejected(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(*bad)


@pytest.mark.parametrize("level", [0.0, 1.0, 95.0])
def test_confidence_level_must_be_a_fraction(level: float) -> None:
    with pytest.raises(ValueError, match="confidence level"):
        wilson_interval(1, 2, level)


def test_wilson_coverage_by_simulation() -> None:
    rng = np.random.default_rng(2024)
    p, n = 0.8, 200
    draws = rng.binomial(n, p, size=4000)
    ci = cache(lambda k: wilson_interval(int(k), n))
    coverage = np.mean([ci(k).contains(p) for k in draws])
    # Wilson's actual coverage near p = 0.8, n = 200 is close to the nominal 95%.
    assert 0.935 <= coverage <= 0.965


@pytest.mark.slow
def test_newcombe_coverage_by_simulation() -> None:
    rng = np.random.default_rng(7)
    p1, n1, p2, n2 = 0.87, 240, 0.80, 560
    k1 = rng.binomial(n1, p1, size=3000)
    k2 = rng.binomial(n2, p2, size=3000)
    hits = [
        newcombe_interval(int(a), n1, int(b), n2).contains(p1 - p2)
        for a, b in zip(k1, k2, strict=True)
    ]
    assert 0.935 <= np.mean(hits) <= 0.965


def _closed_form_p_better(a_s: int, a_f: int, b_s: int, b_f: int) -> float:
    """Evan Miller's exact sum for P(p_a > p_b) with integer Beta parameters."""
    alpha_a, beta_a, alpha_b, beta_b = 1 + a_s, 1 + a_f, 1 + b_s, 1 + b_f
    total = 0.0
    for i in range(alpha_a):
        total += math.exp(
            special.betaln(alpha_b + i, beta_a + beta_b)
            - math.log(beta_a + i)
            - special.betaln(1 + i, beta_a)
            - special.betaln(alpha_b, beta_b)
        )
    return total


@pytest.mark.parametrize(
    "counts", [(60, 40, 50, 50), (12, 3, 9, 6), (200, 40, 170, 30), (0, 0, 0, 0), (5, 0, 0, 5)]
)
def test_probability_better_matches_the_closed_form(counts: tuple[int, int, int, int]) -> None:
    assert bayes_compare(*counts).probability_better == pytest.approx(
        _closed_form_p_better(*counts), abs=1e-7
    )


@pytest.mark.parametrize(
    "counts", [(60, 40, 50, 50), (200, 40, 170, 30), (209, 31, 448, 112), (3, 1, 2, 2)]
)
def test_bayes_comparison_matches_monte_carlo(counts: tuple[int, int, int, int]) -> None:
    a_s, a_f, b_s, b_f = counts
    rng = np.random.default_rng(11)
    a = stats.beta(1 + a_s, 1 + a_f).rvs(400_000, random_state=rng)
    b = stats.beta(1 + b_s, 1 + b_f).rvs(400_000, random_state=rng)
    result = bayes_compare(*counts)
    assert result.probability_better == pytest.approx(np.mean(a > b), abs=0.003)
    assert result.expected_loss == pytest.approx(np.mean(np.maximum(b - a, 0)), rel=0.02, abs=1e-6)


def test_bayes_comparison_is_symmetric_and_handles_large_counts() -> None:
    forward = bayes_compare(5200, 4800, 5000, 5000)
    backward = bayes_compare(5000, 5000, 5200, 4800)
    assert forward.probability_better + backward.probability_better == pytest.approx(1.0, abs=1e-7)
    tie = bayes_compare(50_000, 50_000, 50_000, 50_000)
    assert tie.probability_better == pytest.approx(0.5, abs=1e-6)
    # Normal approximation: the loss of a tie is sd(p_b - p_a) * phi(0).
    sd = math.sqrt(2 * 0.25 / 100_000)
    assert tie.expected_loss == pytest.approx(sd / math.sqrt(2 * math.pi), rel=0.01)
    clear = bayes_compare(87_000, 13_000, 80_000, 20_000)
    assert clear.probability_better > 1 - 1e-9
    assert clear.expected_loss < 1e-12


def test_sample_ratio_test_against_a_hand_computed_chi_square() -> None:
    # 821 and 779 against 50/50: chi2 = 2 * 21^2 / 800 = 1.1025 on one degree of freedom.
    result = sample_ratio_test({"stable": 821, "canary": 779}, {"stable": 50, "canary": 50})
    assert result.statistic == pytest.approx(1.1025)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(1.1025 / 2)), rel=1e-9)


def test_sample_ratio_test_flags_a_broken_split() -> None:
    fine = sample_ratio_test({"stable": 700, "canary": 300}, {"stable": 70, "canary": 30})
    assert fine.p_value == pytest.approx(1.0)
    broken = sample_ratio_test({"stable": 500, "canary": 500}, {"stable": 70, "canary": 30})
    assert broken.p_value < 1e-20
    zero = sample_ratio_test({"stable": 99, "canary": 1}, {"stable": 100, "canary": 0})
    assert zero.p_value == 0.0


@pytest.mark.slow
def test_sample_ratio_false_alarm_rate_by_simulation() -> None:
    rng = np.random.default_rng(3)
    canary = rng.binomial(1000, 0.3, size=2000)
    p_values = [
        sample_ratio_test(
            {"stable": 1000 - int(c), "canary": int(c)}, {"stable": 70, "canary": 30}
        ).p_value
        for c in canary
    ]
    assert 0.03 <= np.mean(np.array(p_values) < 0.05) <= 0.07


def test_sample_ratio_test_rejects_mismatched_versions() -> None:
    with pytest.raises(ValueError, match="versions differ"):
        sample_ratio_test({"stable": 1}, {"stable": 50, "canary": 50})


@pytest.mark.parametrize("degrees", [1, 2, 3, 4, 9])
@pytest.mark.parametrize("statistic", [0.01, 0.5, 1.1025, 3.0, 7.5, 20.0, 80.0, 400.0])
def test_chi_square_tail_matches_scipy(degrees: int, statistic: float) -> None:
    from restaurant_sentiment.experiment.stats import _chi_square_survival

    expected = stats.chi2.sf(statistic, degrees)
    assert _chi_square_survival(statistic, degrees) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_sample_ratio_test_with_three_versions_matches_scipy() -> None:
    observed = {"stable": 640, "canary": 260, "canary-b": 100}
    weights = {"stable": 60.0, "canary": 30.0, "canary-b": 10.0}
    result = sample_ratio_test(observed, weights)
    reference = stats.chisquare([640, 260, 100], [600, 300, 100])
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (3, 10), (81, 263), (999, 1000), (0, 50)])
@pytest.mark.parametrize("level", [0.8, 0.95, 0.99])
def test_wilson_matches_scipy(k: int, n: int, level: float) -> None:
    reference = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    interval = wilson_interval(k, n, level)
    assert (interval.low, interval.high) == pytest.approx(
        (reference.low, reference.high), abs=1e-12
    )
