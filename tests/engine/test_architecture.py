"""The engine is a pure package with clean boundaries: it never imports streamlit, its modules
import each other without cycles, and its text cites only files inside the repository."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "explainer"


def engine_modules() -> dict[str, Path]:
    """Every module of the engine: dotted name -> file (a package is its __init__.py)."""
    out = {}
    for path in sorted(ENGINE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The engine modules a file imports, anywhere in it (function-level imports included).

    ``from explainer.x import y`` depends on ``explainer.x.y`` when that is a module, else on
    ``explainer.x``; ``import explainer.x`` depends on ``explainer.x``.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("explainer"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("explainer"))
    return {m for m in found if m in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_engine_has_no_import_cycle():
    modules = engine_modules()
    graph = {name: imports_of(path, modules) - {name} for name, path in modules.items()}
    assert len(graph) >= 30
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_check_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_engine_never_imports_streamlit():
    names = ", ".join(sorted(m for m in engine_modules() if not m.endswith("__main__")))
    code = f"import {names}; import sys; print('streamlit' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_check_can_see_streamlit_when_it_is_imported():
    """The same probe reports True once streamlit is imported (so the test above can fail)."""
    code = (
        "import importlib.util, sys\n"
        "if importlib.util.find_spec('streamlit') is None: print('absent')\n"
        "else:\n import streamlit; print('streamlit' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("True", "absent")


def test_no_engine_module_mentions_streamlit():
    for path in engine_modules().values():
        text = path.read_text(encoding="utf-8")
        assert "import streamlit" not in text and "from streamlit" not in text, path.name


def test_the_engine_never_uses_pyplot():
    """matplotlib's pyplot keeps global state; the engine runs in threads and uses Figure objects."""
    for path in engine_modules().values():
        code = ast.parse(path.read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(code) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(code) if isinstance(n, ast.ImportFrom)}
        assert not any("pyplot" in name for name in imported), path.name


def test_docs_and_code_cite_only_files_inside_the_repository():
    """No docstring or comment points at notes outside the project (they travel with it)."""
    outside = re.compile(r"lima-spec|\.\./shared|shared/docs|design\.md|streamlit-practice")
    files = list(engine_modules().values()) + sorted((ROOT / "ui").glob("*.py")) + sorted((ROOT / "pages").glob("*.py"))
    files += [ROOT / "app.py", ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    offenders = [str(p.relative_to(ROOT)) for p in files if outside.search(p.read_text(encoding="utf-8"))]
    assert not offenders, offenders
    for path in files:
        for cited in re.findall(r"``(docs/[\w./-]+\.md)``", path.read_text(encoding="utf-8")):
            assert (ROOT / cited).is_file(), (path.name, cited)
