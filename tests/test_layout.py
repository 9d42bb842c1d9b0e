"""
The package's shape, checked from the modules' own imports so it cannot silently decay.

Stages import only downward (``shared/style.md`` §7.1): intake reads the manifest
and knows nothing of the API; the report never imports the run; the emulator imports
nothing of the package, so it stays an independent reading of the API contract.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from paths import REPO

PACKAGE = REPO / "provisioner"
TOP = "top"  # models, errors, settings, logs, redaction, words; __init__/__main__

# Stage → the stages it may import (itself always included).
ALLOWED: dict[str, set[str]] = {
    TOP: set(),
    "intake": {TOP},
    "webex": {TOP},
    "live": {TOP, "intake", "webex"},
    "run": {TOP, "intake", "webex", "live"},
    "report": {TOP, "intake"},
    "inventory": {TOP, "intake", "webex", "live", "run"},
    "cli": {TOP, "intake", "webex", "live", "run", "report", "inventory", "emulator"},
    "emulator": set(),
}
# The package's face re-exports the library API; the top-level values import nothing.
FACES = {"provisioner", "provisioner.__main__"}
TOP_ALLOWED_OUTSIDE = {
    "errors",
    "models",
    "settings",
    "logs",
    "redaction",
    "tags",
    "words",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def stage_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in TOP_ALLOWED_OUTSIDE or parts[1] == "__main__":
        return TOP
    return parts[1]


def package_imports(path: Path) -> Iterator[str]:
    """Every ``provisioner`` module this file imports, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "provisioner":
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1]]
                    + ([base] if base else [])
                )
            if base.split(".")[0] != "provisioner":
                continue
            for alias in node.names:
                # ``from provisioner.run import plan`` imports the module run.plan.
                candidate = f"{base}.{alias.name}"
                yield (
                    candidate
                    if (REPO / (candidate.replace(".", "/") + ".py")).exists()
                    else base
                )


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: set(package_imports(path)) - {name} for name, path in MODULES.items()}


def test_every_subpackage_is_a_known_stage() -> None:
    """A new folder needs a line in ALLOWED, said on purpose."""
    stages = {stage_of(name) for name in MODULES}

    assert stages <= set(ALLOWED), f"unknown stages: {sorted(stages - set(ALLOWED))}"


@pytest.mark.parametrize("module", sorted(set(MODULES) - FACES))
def test_imports_run_downward(module: str) -> None:
    """Each module imports only its own stage and the stages below it."""
    stage = stage_of(module)
    allowed = ALLOWED[stage] | {stage}

    upward = sorted(i for i in GRAPH[module] if stage_of(i) not in allowed)

    assert upward == [], f"{module} ({stage}) imports upward: {upward}"


def test_no_import_cycles() -> None:
    """No module reaches itself through its imports."""
    edges = {name: {i for i in deps if i in GRAPH} for name, deps in GRAPH.items()}
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            cycles.append([*trail[trail.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(edges[node]):
            visit(nxt, [*trail, node])
        done.add(node)

    for name in sorted(edges):
        visit(name, [])

    assert cycles == []


def test_the_checker_sees_upward_imports() -> None:
    """The rule bites: the run importing the report would be caught."""
    allowed = ALLOWED["run"] | {"run"}

    assert stage_of("provisioner.report.files") not in allowed
    assert stage_of("provisioner.models") in allowed
    assert "provisioner.live.preflight" in GRAPH["provisioner.run.engine"]
