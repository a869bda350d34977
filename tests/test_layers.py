"""The package layout is a rule, not a convention: lower layers never import higher ones.

Read from the source with ast (every import, lazy ones inside functions included), so a violation
names the file, the line and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "assistant"

# layer -> the layers it must never import
FORBIDDEN: dict[str, set[str]] = {
    "knowledge": {"chat", "web", "measure", "mcp"},
    "llm": {"chat", "web", "measure", "mcp"},
    "chat": {"web", "store", "mcp"},
    "store": {"web", "cli", "chat", "mcp"},
    "runs": {"web", "cli", "measure", "store", "mcp"},
    "mcp": {"web", "measure"},  # the MCP server; web serves it at /mcp, cli/mcp.py over stdio
}
ENTRY_POINTS = {"__main__.py"}  # the only module outside the CLI package allowed to import it


def imported_modules(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in a module, relative ones resolved."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from assistant import web` imports the subpackage too
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def violations(package: Path) -> list[str]:
    out: list[str] = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent)
        module = ".".join(rel.with_suffix("").parts)
        parts = rel.parts
        layer = parts[1] if len(parts) > 2 else None
        forbidden = {f"{package.name}.{name}" for name in FORBIDDEN.get(layer or "", set())}
        for line, name in imported_modules(ast.parse(path.read_text(), str(path)), module):
            target = name.split(".")
            top = ".".join(target[:2])
            if top in forbidden:
                out.append(f"{rel}:{line}: layer '{layer}' imports {name}")
            if top == f"{package.name}.cli" and path.name not in ENTRY_POINTS and layer != "cli":
                out.append(f"{rel}:{line}: imports the CLI ({name}); nothing but __main__ may")
    return out


def test_layers_never_import_upwards() -> None:
    assert violations(PACKAGE) == []


def test_every_layer_is_a_package() -> None:
    for layer in ("knowledge", "llm", "chat", "web", "measure", "runs", "mcp"):
        assert (PACKAGE / layer / "__init__.py").is_file(), layer


def test_the_check_catches_a_violation(tmp_path: Path) -> None:
    """The rule above can fail: a fake package with an upward import, a relative one and a CLI import."""
    pkg = tmp_path / "assistant"
    (pkg / "knowledge").mkdir(parents=True)
    (pkg / "chat").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "knowledge" / "__init__.py").write_text("")
    (pkg / "knowledge" / "index.py").write_text("def f():\n    from assistant.web.app import build_app\n")
    (pkg / "chat" / "__init__.py").write_text("")
    (pkg / "chat" / "chain.py").write_text("from ..web import render\nfrom .. import cli\n")
    found = violations(pkg)
    assert any("knowledge/index.py:2" in v and "assistant.web.app" in v for v in found), found
    assert any("chat/chain.py:1" in v and "assistant.web" in v for v in found), found
    assert any("chat/chain.py:2" in v and "CLI" in v for v in found), found
