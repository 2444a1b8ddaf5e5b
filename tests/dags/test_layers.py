"""The shape of include/: stages depend in one direction, Airflow lives in one package.

Read from the source (every import statement, also those inside functions), so a lazy import
cannot hide a dependency. The order is the lifecycle: a stage may import its own package and
the stages before it, never a later one; `core` imports nothing else from include/; only
`airflow_glue` imports Airflow; no stage imports another stage's task steps.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from include.core.settings import PROJECT_DIR

INCLUDE = PROJECT_DIR / "include"

STAGES = (
    "core",
    "lake",
    "source",
    "quality",
    "features",
    "registry",
    "training",
    "serving",
    "monitoring",
    "oncall",
    "airflow_glue",
)
GLUE = "airflow_glue"


def _is_step_module(dotted: str) -> bool:
    """Modules that run a stage's Airflow tasks (`steps`, `gate_steps`, ...): the DAG files call
    them, other stages never do."""
    leaf = dotted.split(".")[-1]
    return leaf == "steps" or leaf.endswith("_steps")


def _modules() -> list[Path]:
    return sorted(p for p in INCLUDE.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> str:
    parts = path.relative_to(PROJECT_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, resolving `from include.x import y` to
    include.x.y when y is a module."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            for a in node.names:
                candidate = f"{node.module}.{a.name}"
                if (PROJECT_DIR / candidate.replace(".", "/")).with_suffix(".py").exists():
                    found.append((node.lineno, candidate))
    return found


def _stage(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "include" else None


def test_every_module_of_include_belongs_to_a_stage() -> None:
    loose = [
        str(p.relative_to(PROJECT_DIR)) for p in _modules() if p.parent == INCLUDE and p.name != "__init__.py"
    ]
    packages = sorted(p.name for p in INCLUDE.iterdir() if (p / "__init__.py").exists())
    assert loose == [], f"top-level modules in include/: {loose} (put each in its stage package)"
    assert packages == sorted(STAGES), f"packages {packages} differ from the stage list {sorted(STAGES)}"


def test_only_the_glue_package_imports_airflow() -> None:
    offenders = [
        f"{p.relative_to(PROJECT_DIR)}:{line} imports {mod}"
        for p in _modules()
        if _stage(_dotted(p)) != GLUE
        for line, mod in _imports(p)
        if mod == "airflow" or mod.startswith("airflow.")
    ]
    assert offenders == []


def test_stages_depend_in_one_direction() -> None:
    offenders = []
    for p in _modules():
        own = _stage(_dotted(p))
        if own is None:  # include/__init__.py
            continue
        for line, mod in _imports(p):
            other = _stage(mod)
            if other is None or other == own:
                continue
            if other not in STAGES or STAGES.index(other) > STAGES.index(own):
                offenders.append(f"{p.relative_to(PROJECT_DIR)}:{line} ({own}) imports {mod} ({other})")
            elif _is_step_module(mod):
                offenders.append(f"{p.relative_to(PROJECT_DIR)}:{line} reaches into {mod}")
    assert offenders == [], "\n".join(offenders)


def test_the_layer_rule_catches_a_backward_import(tmp_path: Path) -> None:
    """Control: the reader sees an import inside a function, resolved to its module."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from include.monitoring import steps\n    import airflow.sdk\n")
    assert (2, "include.monitoring.steps") in _imports(sample)
    assert (3, "airflow.sdk") in _imports(sample)


@pytest.mark.parametrize("module", [_dotted(p) for p in _modules()])
def test_every_module_imports(module: str) -> None:
    """A module that cannot be imported (a stale name after a move) fails here, not in a task."""
    importlib.import_module(module)
