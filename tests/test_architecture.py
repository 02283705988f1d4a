"""The package's layering: data flows one way (media → perception → recognize → result) and nothing imports in a cycle.

Function-level (lazy) imports count too: a lazy import still makes the two modules depend on each
other, it only hides the cycle from the interpreter.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "emollama"

#: Stage → stages it must never import (later stages and the public facade).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "emollama.media": ("emollama.heads", "emollama.perception", "emollama.recognize", "emollama.api",
                       "emollama.merr", "emollama.evaluate", "emollama.cli"),
    "emollama.heads": ("emollama.perception", "emollama.recognize", "emollama.api", "emollama.merr",
                       "emollama.evaluate", "emollama.cli", "emollama.train"),
    "emollama.perception": ("emollama.recognize", "emollama.api", "emollama.merr", "emollama.evaluate",
                            "emollama.cli", "emollama.train"),
    "emollama.recognize": ("emollama.api", "emollama.merr", "emollama.evaluate", "emollama.cli"),
    "emollama.merr": ("emollama.api", "emollama.cli"),
    "emollama.evaluate": ("emollama.api", "emollama.cli"),
    "emollama.train": ("emollama.api", "emollama.cli"),
    "emollama.model": ("emollama.api", "emollama.cli", "emollama.merr", "emollama.evaluate"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the emollama modules it imports anywhere in its body (packages resolved to their modules)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import: resolve against this module's package
                    parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parents + ([base] if base else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.add(sub if sub in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among modules that are not packages' ``__init__`` re-exports, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt in stack and state.get(nxt) == 1 and nxt != "emollama":
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if state.get(start) is None:
            found = visit(start)
            if found:
                return found
    return None


def test_no_import_cycles():
    graph = import_graph()
    graph["emollama"] = set()  # the top-level package only re-exports the API lazily
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_stages_import_downstream_only(stage: str):
    graph = import_graph()
    bad = sorted(f"{m} imports {t}" for m, targets in graph.items() if m == stage or m.startswith(stage + ".")
                 for t in targets if any(t == f or t.startswith(f + ".") for f in FORBIDDEN[stage]))
    assert not bad, bad


def test_every_package_has_a_docstring():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and doc.strip(), f"{init.relative_to(ROOT)} has no docstring"
    for folder in PACKAGE.rglob("*"):
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py")):
            assert (folder / "__init__.py").is_file(), f"{folder.relative_to(ROOT)} has modules but no __init__.py"


def test_no_sys_path_manipulation():
    offenders = [str(p.relative_to(ROOT)) for folder in ("emollama", "tests", "benchmarks", "scripts")
                 for p in (ROOT / folder).rglob("*.py")
                 if p != Path(__file__) and "sys.path" in p.read_text(encoding="utf-8")]
    assert not offenders, offenders


def test_settings_are_validated_once_and_shared(analyzer):
    """One settings object: a bad value fails before any model loads; the analyzer and its perception agree."""
    from emollama.errors import InputError, UnknownLabelSetError
    from emollama.settings import AnalysisSettings

    with pytest.raises(InputError, match="--fps"):
        AnalysisSettings(fps=0)
    with pytest.raises(InputError, match="--max-duration"):
        AnalysisSettings(max_duration_s=-1)
    with pytest.raises(UnknownLabelSetError):
        AnalysisSettings(label_set="nope")
    assert AnalysisSettings().replace(fps=None, label_set="mer6") == AnalysisSettings(label_set="mer6")
    before = analyzer.settings
    try:
        analyzer.settings = before.replace(fps=4.0, label_set="dfew7")
        assert analyzer.perceiver.settings.fps == 4.0 and analyzer.label_set == "dfew7"
        with pytest.raises(InputError, match="asr cannot change"):
            analyzer.settings = before.replace(asr=not before.asr)
    finally:
        analyzer.settings = before
