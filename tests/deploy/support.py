"""Readers for the deploy files: Dockerfile instructions, .dockerignore rules, compose files."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT, require_binary

DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "restaurant-sentiment"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILES = {
    "model_service": ROOT / "services" / "model-service" / "Dockerfile",
    "frontend": ROOT / "services" / "frontend" / "Dockerfile",
}
WORKFLOWS = ROOT / ".github" / "workflows"
NPM = Path(__file__).resolve().parent / "npm"


def venv_binary(name: str, hint: str) -> str:
    """A tool installed next to the test interpreter (the dev extra), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name) or require_binary(name, hint)


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages, with continuation lines joined."""
    logical: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append((start, buffer + stripped))
        buffer = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, text in logical:
        keyword, _, rest = text.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = rest.split()
            words = [w for w in words if not w.startswith("--")]
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), words[0])
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages:
            if keyword == "ARG":
                key, _, value = rest.partition("=")
                args[key] = value
        else:
            stages[-1].instructions.append(Instruction(keyword, rest, number))
    return args, stages


def copy_sources(instruction: Instruction) -> list[str]:
    """The build-context sources of a COPY (none when it copies from a stage or an image)."""
    words = shlex.split(instruction.args)
    if any(w.startswith("--from=") for w in words):
        return []
    words = [w for w in words if not w.startswith("--")]
    return words[:-1]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


class DockerIgnore:
    """.dockerignore rules: the last matching rule decides; a folder rule covers its files."""

    def __init__(self, path: Path) -> None:
        self.rules: list[tuple[bool, str, re.Pattern[str]]] = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            self.rules.append((negated, pattern, _pattern_regex(pattern)))

    def excluded(self, relative: str) -> bool:
        parts = relative.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        result = False
        for negated, _, regex in self.rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                result = not negated
        return result

    def may_include_below(self, folder: str) -> bool:
        return any(neg and pat.startswith(folder + "/") for neg, pat, _ in self.rules)

    def context(self, root: Path) -> dict[str, int]:
        """Every file the build context would hold, with its size."""
        files: dict[str, int] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            base = Path(dirpath).relative_to(root).as_posix()
            prefix = "" if base == "." else base + "/"
            dirnames[:] = [
                d
                for d in dirnames
                if not self.excluded(prefix + d) or self.may_include_below(prefix + d)
            ]
            for name in filenames:
                relative = prefix + name
                if not self.excluded(relative):
                    files[relative] = (Path(dirpath) / name).stat().st_size
        return files


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${VAR:-default} and ${VAR} with the given environment (defaults otherwise)."""
    env = env or {}

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3) or ""
        return env.get(name) or default

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", value, text)


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    document = yaml.safe_load(interpolate(COMPOSE.read_text(encoding="utf-8"), env))
    assert isinstance(document, dict)
    return document
