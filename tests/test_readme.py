"""The README is true: its settings exist, its make targets exist, its examples run."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from restaurant_sentiment.frontend.config import Settings as FrontendSettings
from restaurant_sentiment.frontend.config import setting_name as frontend_setting
from restaurant_sentiment.model_service.config import Settings as ModelServiceSettings
from restaurant_sentiment.model_service.config import setting_name as model_service_setting
from restaurant_sentiment.tools import docs
from restaurant_sentiment.tools.localmesh.settings import UpSettings
from tests.support import MODEL_DIR, ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


@dataclass
class Example:
    """A shell command of the README and the output documented under it (comment lines)."""

    command: str
    documented: str


def examples(text: str = README) -> list[Example]:
    """Every command of the README's bash blocks, with the `# ...` lines that follow it."""
    found: list[Example] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        lines = block.splitlines()
        index = 0
        while index < len(lines):
            line = lines[index]
            if not line.strip() or line.lstrip().startswith("#"):
                index += 1
                continue
            command = [line]
            while command[-1].rstrip().endswith("\\"):
                index += 1
                command.append(lines[index])
            index += 1
            documented = []
            while index < len(lines) and lines[index].lstrip().startswith("#"):
                documented.append(lines[index].lstrip()[1:].strip())
                index += 1
            found.append(Example("\n".join(command), "\n".join(documented)))
    return found


def test_every_setting_of_both_services_is_documented() -> None:
    missing = [
        model_service_setting(field)
        for field in ModelServiceSettings.model_fields
        if model_service_setting(field) not in README
    ]
    missing += [
        frontend_setting(field)
        for field in FrontendSettings.model_fields
        if frontend_setting(field) not in README
    ]
    assert not missing, f"settings the README does not mention: {missing}"


def test_the_model_table_is_the_one_the_trained_models_give() -> None:
    assert docs.main(["--check", "--model-dir", str(MODEL_DIR)]) == 0, "run `make docs`"


def test_the_docs_check_fails_on_a_stale_table_until_regenerated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = docs.model_table(MODEL_DIR)
    stale = tmp_path / "README.md"
    stale.write_text(README.replace(table, table.replace("| `canary` |", "| `canary` | old |")))
    args = ["--model-dir", str(MODEL_DIR), "--readme", str(stale)]
    assert docs.main([*args, "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert docs.main(args) == 0
    assert docs.main([*args, "--check"]) == 0
    assert stale.read_text() == README


def test_every_port_setting_of_make_up_is_documented() -> None:
    missing = [field.upper() for field in UpSettings.model_fields if field.upper() not in README]
    assert not missing, f"`make up` settings the README does not mention: {missing}"


@pytest.mark.slow
def test_every_make_target_the_readme_names_exists() -> None:
    listed = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    targets = {line.split()[0] for line in listed.splitlines() if line.strip()}
    named = set(re.findall(r"`make ([a-z0-9-]+)", README))
    named |= {
        m
        for example in examples()
        for m in re.findall(r"^\s*(?:[A-Z_]+=\S+ )*make ([a-z0-9-]+)", example.command, re.M)
    }
    assert named - targets == set()


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__


def documented_json(text: str) -> dict[str, Any]:
    # The README shortens long values with an ellipsis; any string stands for them.
    return json.loads(text.replace("…", ""))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`make up` itself, as the README's quick start runs it, on free ports."""
    from tests.mesh.conftest import start_up

    with start_up(tmp_path_factory.mktemp("run"), ["make", "--no-print-directory", "up"]) as up:
        up.wait_for("Press Ctrl-C to stop everything.")
        yield int(up.env["GATEWAY_PORT"])


API_EXAMPLES = [e for e in examples() if e.command.startswith("curl") and ":8080" in e.command]


def test_the_readme_has_api_examples() -> None:
    assert len(API_EXAMPLES) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("example", API_EXAMPLES, ids=lambda e: e.command.split()[3])
def test_api_examples_answer_as_documented(stack: int, example: Example) -> None:
    command = example.command.replace(":8080", f":{stack}")
    result = subprocess.run(
        ["bash", "-c", command + " --silent --show-error --fail-with-body"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    documented = documented_json(example.documented)
    assert _shape(answer) == _shape(documented)
    for key, value in documented.items():
        if isinstance(value, str) and key != "predictionId":
            assert answer[key] == value, key


@pytest.mark.slow
def test_the_probe_command_lists_disagreements() -> None:
    [example] = [e for e in examples() if "model_service.probe" in e.command]
    result = subprocess.run(
        ["bash", "-c", example.command], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["stable", "canary", "review"]
    assert "good" in result.stdout.split()


def test_examples_are_parsed_with_their_documented_output() -> None:
    text = "```bash\ncurl -X POST http://x:8080/p \\\n  -d '{}'\n# {\"a\": 1}\nmake up\n```\n"
    parsed = examples(text)
    assert [e.command for e in parsed] == ["curl -X POST http://x:8080/p \\\n  -d '{}'", "make up"]
    assert parsed[0].documented == '{"a": 1}'
