"""Thresholds and weights come from the chart's values, and bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from restaurant_sentiment.experiment import ConfigError, load_config
from tests.support import CHART_VALUES as DEFAULT_VALUES


def test_reads_the_chart_values() -> None:
    values = yaml.safe_load(DEFAULT_VALUES.read_text(encoding="utf-8"))
    config = load_config(DEFAULT_VALUES)
    expected = values["experiment"]
    t = config.thresholds
    assert t.min_feedback_per_version == expected["minFeedbackPerVersion"]
    assert t.confidence_level == expected["confidenceLevel"]
    assert t.promote_probability == expected["promoteProbability"]
    assert t.rollback_probability == expected["rollbackProbability"]
    assert t.srm_p_value == expected["srmPValue"]
    assert config.weights == {
        v["name"]: float(v["weight"]) for v in values["modelService"]["versions"]
    }


def _write(tmp_path: Path, change: dict) -> Path:
    values = yaml.safe_load(DEFAULT_VALUES.read_text(encoding="utf-8"))
    for dotted, value in change.items():
        *parents, leaf = dotted.split(".")
        node = values
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is None:
            del node[leaf]
        else:
            node[int(leaf) if isinstance(node, list) else leaf] = value
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"experiment.confidenceLevel": 1.5}, "experiment.confidenceLevel"),
        ({"experiment.minFeedbackPerVersion": 0}, "experiment.minFeedbackPerVersion"),
        ({"experiment.srmPValue": None}, "experiment.srmPValue: Field required"),
        ({"experiment.promoteProbabilty": 0.9}, "experiment.promoteProbabilty"),
        ({"experiment": None}, "experiment: Field required"),
        ({"modelService.versions.1.weight": 20}, "weights must sum to 100"),
        ({"modelService.versions.1.name": "blue"}, "treatment version 'canary'"),
        ({"modelService.versions.0.weight": "lots"}, "modelService.versions[0].weight"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, change: dict, message: str) -> None:
    path = _write(tmp_path, change)
    with pytest.raises(ConfigError, match=r"values\.yaml") as caught:
        load_config(path)
    assert message in str(caught.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the values file"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("experiment: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_other_versions_can_be_compared(tmp_path: Path) -> None:
    config = load_config(DEFAULT_VALUES, control="canary", treatment="stable")
    assert (config.control, config.treatment) == ("canary", "stable")
    with pytest.raises(ConfigError, match="control and treatment are both"):
        load_config(DEFAULT_VALUES, control="stable", treatment="stable")
