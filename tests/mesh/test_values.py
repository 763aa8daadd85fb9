"""Invalid values and settings stop `make up` with a message naming the value."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from restaurant_sentiment.tools.localmesh.settings import (
    UpSettings,
    check_ports_free,
    load_settings,
    port_plan,
)
from restaurant_sentiment.tools.paths import check_model_folders
from restaurant_sentiment.values import ConfigError, Values, load_values, parse_values
from tests.support import CHART_VALUES as DEFAULT_VALUES
from tests.support import ROOT, free_port

RAW: dict[str, Any] = yaml.safe_load(DEFAULT_VALUES.read_text())


def _raw(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return raw


def test_chart_values_are_valid() -> None:
    values = load_values(DEFAULT_VALUES)
    assert values.version_names == ["stable", "canary"]
    assert [v.weight for v in values.model_service.versions] == [70, 30]
    assert values.model_service.cookie.name == "model-service-version"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"modelService__versions__1__weight": 20},
            "modelService.versions: Value error, weights must sum to 100, got 90 "
            "(stable=70, canary=20)",
        ),
        ({"modelService__versions__1__name": "Canary!"}, "modelService.versions[1].name"),
        ({"modelService__versions__1__name": "stable"}, "repeated: stable"),
        ({"modelService__port": 70000}, "modelService.port: Input should be less than or equal"),
        ({"modelService__port": "http"}, "modelService.port: Input should be a valid integer"),
        ({"modelService__cookie__name": "a=b"}, "modelService.cookie.name"),
        ({"modelService__cookie__maxAge": 0}, "modelService.cookie.maxAge"),
        ({"rateLimit__requests": 0}, "rateLimit.requests"),
        ({"rateLimit__path": "home"}, "rateLimit.path"),
        ({"hosts__app": "App Host"}, "hosts.app"),
        ({"gateway__port": 0}, "gateway.port"),
        (
            {"resilience__drain__terminationGracePeriodSeconds": 12},
            "resilience: Value error, drain.terminationGracePeriodSeconds must be longer than "
            "drain.preStopSeconds + retries.perTryTimeoutSeconds (the longest request), 15s; "
            "got 12s",
        ),
        ({"resilience__retries__retryOn": ["reset", "404"]}, "resilience.retries.retryOn[1]"),
        (
            {"resilience__retries__retryOn": ["reset", "reset"]},
            "conditions must not repeat: reset",
        ),
        ({"resilience__retries__attempts": -1}, "resilience.retries.attempts"),
        ({"resilience__drain__preStop": 5}, "resilience.drain.preStop: Extra inputs"),
        (
            {"resilience__outlierDetection__minHealthPercent": 120},
            "resilience.outlierDetection.minHealthPercent",
        ),
    ],
)
def test_invalid_values_name_the_value(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_values(_raw(**changes))
    assert expected in str(caught.value)


def test_the_policy_splits_status_codes_and_defaults_when_absent() -> None:
    values = parse_values(_raw(resilience__retries__retryOn=["reset", "502", "gateway-error"]))
    assert values.resilience.retries.status_codes == [502]
    assert values.resilience.retries.conditions == ["reset", "gateway-error"]
    assert values.resilience.proxy_drain_seconds == 5 + 10
    # A values file from before the block (a copy kept elsewhere) gets the chart's defaults.
    raw = _raw()
    del raw["resilience"]
    assert parse_values(raw).resilience == load_values(DEFAULT_VALUES).resilience


def test_missing_key_is_named() -> None:
    raw = _raw()
    del raw["modelService"]["cookie"]
    with pytest.raises(ConfigError, match=r"modelService\.cookie: Field required"):
        parse_values(raw)


def test_unknown_version_without_a_model_folder(tmp_path: Path) -> None:
    (tmp_path / "stable").mkdir()
    values = load_values(DEFAULT_VALUES)
    with pytest.raises(ConfigError, match=r"versions\[1\]\.name: unknown version 'canary'"):
        check_model_folders(values, tmp_path)


def test_port_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "99999")
    with pytest.raises(ConfigError, match="GATEWAY_PORT: Input should be less than or equal"):
        load_settings()
    monkeypatch.setenv("GATEWAY_PORT", "eighty")
    with pytest.raises(ConfigError, match="GATEWAY_PORT: Input should be a valid integer"):
        load_settings()


def test_unparsable_version_ports_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_SERVICE_PORTS", "stable=8091")
    with pytest.raises(ConfigError, match="MODEL_SERVICE_PORTS: not a JSON object"):
        load_settings()
    monkeypatch.setenv("MODEL_SERVICE_PORTS", '{"stable": "x"}')
    with pytest.raises(ConfigError, match=r"MODEL_SERVICE_PORTS\[stable\]: Input should be"):
        load_settings()


def test_port_plan_rejects_clashes_and_unknown_versions(values: Values) -> None:
    with pytest.raises(ConfigError, match="FRONTEND_PORT and GATEWAY_PORT are both port 8080"):
        port_plan(UpSettings(frontend_port=8080), values, prometheus=False)
    with pytest.raises(ConfigError, match=r"MODEL_SERVICE_PORTS: unknown version.*nightly"):
        port_plan(
            UpSettings(model_service_ports={"stable": 1, "canary": 2, "nightly": 3}), values, False
        )
    with pytest.raises(ConfigError, match="no port for version 'canary'"):
        port_plan(UpSettings(model_service_ports={"stable": 8091}), values, prometheus=False)


def test_busy_port_is_named() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"port {port} \(GATEWAY_PORT\) is already in use"):
            check_ports_free({"FRONTEND_PORT": free_port(), "GATEWAY_PORT": port})


def _up(values_file: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "restaurant_sentiment.tools.localmesh",
            "--values",
            str(values_file),
            "up",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_up_refuses_bad_weights_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "values.yaml"
    bad.write_text(yaml.safe_dump(_raw(modelService__versions__0__weight=80)))
    result = _up(bad)
    assert result.returncode == 2
    assert "weights must sum to 100, got 110 (stable=80, canary=30)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_up_refuses_a_bad_port_before_starting() -> None:
    result = _up(DEFAULT_VALUES, GATEWAY_PORT="0")
    assert result.returncode == 2
    assert "GATEWAY_PORT: Input should be greater than or equal to 1 (got '0')" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_up_refuses_an_unreadable_values_file(tmp_path: Path) -> None:
    result = _up(tmp_path / "missing.yaml")
    assert result.returncode == 2
    assert "cannot read the values file" in result.stderr


@pytest.mark.slow
def test_render_envoy_reports_an_unwritable_output(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "envoy.yaml"
    command = [
        sys.executable,
        "-m",
        "restaurant_sentiment.tools.localmesh",
        "render-envoy",
        "--upstreams",
        "compose",
    ]
    result = subprocess.run(
        [*command, "--out", str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"--out: cannot write {target}" in result.stderr
    assert "Traceback" not in result.stderr
