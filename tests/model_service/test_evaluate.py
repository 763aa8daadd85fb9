"""`make evaluate`: both versions compared on the project's data, with training's own figures."""

import re
from pathlib import Path

import pytest

from restaurant_sentiment.model_service.model import read_metadata
from restaurant_sentiment.tools.evaluate import OTHER, THEMES, main, theme
from tests.support import MODEL_DIR, ROOT

CORPUS = ROOT / "data" / "restaurant_reviews.tsv"
PROXY = ROOT / "data" / "eval_plain_reviews.tsv"
ARGS = ["--data", str(CORPUS), "--eval", str(PROXY), "--model-dir", str(MODEL_DIR)]


@pytest.mark.parametrize(
    ("review", "expected"),
    [
        ("The pasta was great, we'll definitely come back.", "return intent"),
        ("Never again.", "return intent"),
        ("We waited forty minutes for a table.", "speed/wait"),
        ("Way overpriced for what you get.", "price/value"),
        ("Our waiter was rude.", "service"),
        ("Too loud to hear each other.", "ambience"),
        ("The curry was bland.", "food"),
        ("Meh.", OTHER),
    ],
)
def test_themes_follow_the_keyword_rule(review: str, expected: str) -> None:
    assert theme(review) == expected


def test_the_theme_list_is_the_documented_one() -> None:
    names = [name for name, _ in THEMES]
    assert names == [
        "return intent", "speed/wait", "price/value", "service", "ambience", "food"
    ]  # fmt: skip


def _accuracy_rows(out: str) -> dict[str, list[str]]:
    section = out.split("\nAccuracy\n", 1)[1].split("\n\n", 1)[0]
    return {line.split()[0]: line.split()[1:] for line in section.splitlines()[1:]}


def test_the_report_shows_every_section_with_trainings_own_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*ARGS, "--no-cv"]) == 0
    out = capsys.readouterr().out
    for heading in (
        "By length (short: at most 8 words)",
        "By theme (keyword rule",
        "Confusion matrices",
        "Calibration error of the served confidence",
        "held-out: the",
        "proxy set: the",
    ):
        assert heading in out
    rows = _accuracy_rows(out)
    for version in ("stable", "canary"):
        meta = read_metadata(MODEL_DIR / version)
        assert meta is not None
        held_out, proxy = rows[version]
        assert held_out == f"{meta.held_out.accuracy:.3f}"
        if meta.proxy_set is not None:
            assert proxy == f"{meta.proxy_set.accuracy:.3f}"
    # Every review one version gets right and the other wrong is listed, with its label.
    counts = re.findall(r"^held-out: the (\d+) reviews (\w+) gets right", out, flags=re.M)
    assert [version for _, version in counts] == ["stable", "canary"]
    listed = out.split("held-out: the", 2)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert len(listed) == int(counts[0][0])
    assert all(re.match(r"  [01]  \S", line) for line in listed)


@pytest.mark.slow
def test_the_cross_validation_reproduces_the_one_training_recorded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(ARGS) == 0
    rows = _accuracy_rows(capsys.readouterr().out)
    for version in ("stable", "canary"):
        meta = read_metadata(MODEL_DIR / version)
        assert meta is not None
        cv = meta.cross_validation
        assert rows[version][1:4] == [f"{cv.accuracy_mean:.3f}", "±", f"{cv.accuracy_std:.3f}"]


def test_models_trained_on_other_data_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.tsv"
    other.write_text(CORPUS.read_text(encoding="utf-8") + "One more review\t1\n", encoding="utf-8")
    assert main(["--data", str(other), "--eval", str(PROXY), "--model-dir", str(MODEL_DIR)]) == 2
    assert "was trained on another restaurant_reviews.tsv" in capsys.readouterr().err


def test_a_missing_model_folder_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data", str(CORPUS), "--eval", str(PROXY), "--model-dir", str(tmp_path)]) == 2
    assert "make models" in capsys.readouterr().err


def test_the_proxy_set_cannot_be_the_training_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(CORPUS), "--eval", str(CORPUS), "--model-dir", str(MODEL_DIR)]) == 2
    assert "a proxy set must be unseen" in capsys.readouterr().err
