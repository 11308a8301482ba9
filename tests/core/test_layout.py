"""The package's layout rules, as a newcomer relies on them: a task imports only the core, never another
task; the core imports no task at module level (only through the registry, lazily); no import circle."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from idao.tasks import TASKS

from conftest import ROOT

PACKAGE = ROOT / "idao"
TASK_PACKAGES = {f"idao.{name}" for name in TASKS}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path) -> set[str]:
    """idao modules imported at module level (not inside functions), relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("idao")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("idao"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names if (PACKAGE.parent / f"{base}.{a.name}".replace(".", "/")).with_suffix(".py").exists()}
    return found


def task_of(module: str) -> str | None:
    return next((t for t in TASK_PACKAGES if module == t or module.startswith(t + ".")), None)


GRAPH = {module_name(p): module_level_imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_task_imports_another_and_the_core_imports_no_task():
    for module, imports in GRAPH.items():
        own = task_of(module)
        for imported in imports:
            other = task_of(imported)
            if other is not None:
                assert other == own, f"{module} imports {imported}"


def test_no_import_circle():
    def visit(node, stack):
        assert node not in stack, " -> ".join([*stack[stack.index(node):], node])
        for nxt in GRAPH.get(node, ()):
            if nxt in GRAPH and nxt != node:
                visit(nxt, [*stack, node])

    for module in GRAPH:
        visit(module, [])


def test_commands_work_from_an_empty_folder(tmp_path):
    """The defaults ship in the package: --help, and a bad setting's one-line error, from any folder."""
    for job in ("train_main", "generate_main", "report_main"):
        proc = subprocess.run([sys.executable, "-c", f"from idao.cli import {job}; {job}()", "--help"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "section.key=value" in proc.stdout, proc.stderr
    proc = subprocess.run([sys.executable, "-c", "from idao.cli import train_main; train_main()", "task.name=nope"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: task.name = 'nope'"), proc.stderr
