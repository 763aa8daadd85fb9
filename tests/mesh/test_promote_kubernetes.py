"""`make promote` / `make rollback` for Kubernetes: the printed `helm upgrade`, rendered by Helm."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from restaurant_sentiment.tools.localmesh import traffic
from restaurant_sentiment.values import ConfigError, load_values
from tests.mesh.test_one_source import CHART, only, render_chart
from tests.support import ROOT


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DRY_RUN", "RELEASE", "NAMESPACE"}}
    return subprocess.run(
        [sys.executable, "-m", "restaurant_sentiment.tools.localmesh", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def printed_command(*args: str, **env: str) -> list[str]:
    result = cli(*args, "--kubernetes", DRY_RUN="1", **env)
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


def overrides_of(command: list[str]) -> dict[str, Any]:
    """What Helm receives from the command's --set-json, parsed by Helm's own parser."""
    helm = pytest.importorskip("helm_python")
    (index,) = [i for i, arg in enumerate(command) if arg == "--set-json"]
    parsed: dict[str, Any] = helm.parse_set_json(command[index + 1])
    return parsed


@pytest.mark.slow
def test_dry_run_prints_a_helm_upgrade_reusing_the_release_values() -> None:
    command = printed_command("promote", RELEASE="shop", NAMESPACE="food")
    assert command[:8] == [
        "helm", "upgrade", "shop", "deploy/helm/restaurant-sentiment",
        "--namespace", "food", "--reuse-values", "--set-json",
    ]  # fmt: skip
    assert printed_command("rollback")[2:6] == [
        "restaurant-sentiment", "deploy/helm/restaurant-sentiment", "--namespace", "restaurant",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("verb", "winner"), [("promote", "canary"), ("rollback", "stable")])
def test_the_command_renders_all_traffic_to_the_winner(verb: str, winner: str) -> None:
    overrides = overrides_of(printed_command(verb))
    docs = render_chart(overrides)
    service = only(docs, "VirtualService", "-model-service")
    weighted = service["spec"]["http"][-1]["route"]
    assert {d["destination"]["subset"]: d["weight"] for d in weighted} == {
        name: 100 if name == winner else 0 for name in ("stable", "canary")
    }
    # The whole list is set, so every version keeps its Deployment, image tag and replicas.
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["modelService"]["versions"]
    for entry in defaults:
        deployment = only(docs, "Deployment", f"-model-service-{entry['name']}")
        assert deployment["spec"]["replicas"] == entry["replicas"]
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.endswith(f":{entry['image']}")


def test_setting_one_index_would_lose_the_version_names() -> None:
    """Why the command sets the whole list: an indexed --set replaces it with weights only."""
    helm = pytest.importorskip("helm_python")
    indexed = helm.parse_set_string("modelService.versions[1].weight=100")
    assert indexed["modelService"]["versions"][1] == {"weight": 100}
    assert "name" not in (indexed["modelService"]["versions"][0] or {})


def test_a_values_file_with_other_versions_gives_their_list(tmp_path: Path) -> None:
    raw = yaml.safe_load((CHART / "values.yaml").read_text())
    raw["modelService"]["versions"].append(
        {"name": "canary-b", "image": "0.2.0", "weight": 0, "replicas": 2}
    )
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(raw))
    command = traffic.helm_command(path, traffic.winner_weights(load_values(path), "canary-b"))
    versions = json.loads(command[-1].split("=", 1)[1])
    assert [(v["name"], v["weight"], v["replicas"]) for v in versions] == [
        ("stable", 0, 1), ("canary", 0, 1), ("canary-b", 100, 2),
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "nope"], "unknown version 'nope'"),
        (["--values", "/nonexistent.yaml", "promote"], "cannot read the values file"),
    ],
)
def test_bad_input_is_named(args: list[str], message: str) -> None:
    result = cli(*args, "--kubernetes", DRY_RUN="1")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_without_helm_the_message_says_what_to_do() -> None:
    result = cli("promote", "--kubernetes", PATH="/nonexistent")
    assert result.returncode == 2
    assert "helm is not on the PATH" in result.stderr


def test_split_weights_are_checked_and_named() -> None:
    values = load_values(CHART / "values.yaml")
    assert traffic.parse_weights("stable=90,canary=10", values) == {"stable": 90, "canary": 10}
    for text, message in [
        ("stable=90", "no weight for canary"),
        ("stable=90,canary=20", "must sum to 100"),
        ("stable=90,blue=10", "unknown version 'blue'"),
        ("stable=ninety,canary=10", "is not name=percent"),
    ]:
        with pytest.raises(ConfigError, match=message) as caught:
            traffic.parse_weights(text, values)
        assert str(caught.value).startswith("WEIGHTS: ")


@pytest.mark.slow
def test_split_dry_run_prints_a_helm_upgrade_with_those_weights() -> None:
    command = printed_command("split", "--weights", "stable=60,canary=40")
    assert command[:3] == ["helm", "upgrade", "restaurant-sentiment"]
    versions = json.loads(command[-1].split("=", 1)[1])
    assert [(v["name"], v["weight"]) for v in versions] == [("stable", 60), ("canary", 40)]
