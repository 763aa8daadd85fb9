"""Plain-text rendering of an analysis and of a simulation, for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from restaurant_sentiment.experiment.analysis import Analysis, points, points_interval

if TYPE_CHECKING:
    from restaurant_sentiment.tools.experiment.simulate import SimulationReport


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def format_analysis(analysis: Analysis) -> str:
    """The per-version table, the comparison and the decision with its reason."""
    level = _pct(analysis.thresholds.confidence_level, 0)
    rows = [
        [
            "version",
            "weight",
            "new clients",
            "share",
            "predictions",
            "feedback",
            "correct",
            "accuracy",
            f"{level} CI",
        ]
    ]
    for v in analysis.versions:
        ci = v.accuracy_interval
        rows.append(
            [
                f"{v.name} ({v.role})",
                f"{v.configured_weight:g}%",
                str(v.assignments),
                _pct(v.traffic_share),
                str(v.predictions),
                str(v.feedback),
                str(v.correct),
                _pct(v.accuracy),
                f"[{_pct(ci.low)}, {_pct(ci.high)}]" if ci else "no feedback yet",
            ]
        )
    diff = analysis.difference
    srm = analysis.sample_ratio
    t, c = analysis.treatment, analysis.control
    bayes = analysis.bayes
    if diff.interval is None or diff.estimate is None:
        difference = f"not yet: {diff.missing}"
    else:
        difference = (
            f"{points(diff.estimate)} points, {level} CI {points_interval(diff.interval)} "
            f"({diff.method})"
        )
    srm_text = (
        f"not testable yet (no new clients assigned under {srm.split})"
        if srm.p_value is None
        else f"chi-square = {srm.statistic:.2f}, p = {srm.p_value:.3g} on the new clients "
        f"assigned under {srm.split}"
        + (" -> MISMATCH" if srm.mismatch else " (consistent with the weights)")
    )
    lines = [
        f"Source: {analysis.source_description}",
        "",
        *_table(rows),
        "",
        f"Accuracy {t} - {c}: {difference}",
        f"P({t} better): {bayes.probability_treatment_better:.4f}; "
        f"expected loss of choosing {t}: {100 * bayes.expected_loss_choosing_treatment:.3f} points",
        f"Sample ratio: {srm_text}",
        "",
        f"Decision: {analysis.decision.value}",
        f"Reason: {analysis.reason}",
    ]
    return "\n".join(lines)


def format_simulation(report: SimulationReport) -> str:
    """A summary of what the simulator sent and what each version got right."""
    lines = [
        f"Sent {report.predictions} of {report.requested} reviews as {report.clients} clients "
        f"in {report.seconds:.1f} s; {report.feedback} feedback posted, {report.errors} failed"
        + (" (stopped at the time limit)" if report.timed_out else ""),
    ]
    for name, tally in sorted(report.versions.items()):
        clients = report.clients_per_version.get(name, 0)
        lines.append(
            f"  {name}: {tally.predictions} predictions from {clients} clients, "
            f"{_pct(tally.accuracy)} correct"
        )
    if report.api_calls_per_version or report.batch_reviews:
        calls = ", ".join(f"{n} {v}" for v, n in sorted(report.api_calls_per_version.items()))
        lines.append(
            f"  API traffic mixed in: cookieless calls ({calls or 'none'}), "
            f"a batch of {report.batch_reviews} reviews ({report.batch_version or 'none'})"
        )
    if report.sticky_violations:
        lines.append(
            f"  {report.sticky_violations} answers came from another version "
            "than the client's first"
        )
    for example in report.error_examples:
        lines.append(f"  failure: {example}")
    return "\n".join(lines)
