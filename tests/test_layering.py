"""The import direction of the architecture (docs/architecture.md), checked by an AST scan:
sim <- perception <- planning <- agents <- steerbench.harness <- steerbench.study <- steerbench.cli.
A module may import its own layer and the layers below it, never one above; in the CLI, the
command families import `common` and no other family (only `steerbench.cli` assembles them)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("sim", "perception", "planning", "agents", "harness", "study", "cli")
FOLDERS = {"sim": "steerbench.sim", "perception": "steerbench.perception", "planning": "steerbench.planning",
           "agents": "steerbench.agents", "steerbench": "steerbench"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([FOLDERS[parts[0]], *parts[1:]])


def layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "steerbench" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def imports(path: Path, name: str) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, relative ones resolved, at any depth."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]  # `from steerbench import cli`
    return out


def violations(root: Path) -> list[str]:
    """One line per offending import statement."""
    found: dict[str, str] = {}
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            name = module_name(root, path)
            own = layer(name)
            for line, target in imports(path, name):
                to = layer(target)
                if own is None or to is None:
                    continue
                where = f"{path.relative_to(root)}:{line}"
                if LAYERS.index(to) > LAYERS.index(own):
                    found.setdefault(where, f"{where} imports {target} ({own} may not import {to})")
                elif own == to == "cli" and _family(name) and _family(target) and _family(target) != _family(name):
                    found.setdefault(where, f"{where} imports {target} (a command family imports only "
                                            "steerbench.cli.common)")
    return sorted(found.values())


def _family(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[2] not in ("common", "__main__") else None


def test_no_module_imports_a_layer_above_its_own():
    assert violations(ROOT) == []


def test_the_scan_finds_a_planted_violation(tmp_path):
    for folder, text in {"sim": "from steerbench.agents.registry import resolve\n",
                         "perception": "def f():\n    from ..planning import lanes\n",
                         "steerbench/cli": "from . import study\n"}.items():
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "bad.py").write_text(text)
    for folder in ("planning", "agents"):
        (tmp_path / folder).mkdir()
    found = "\n".join(violations(tmp_path))
    assert len(found.splitlines()) == 3, found
    assert "sim/bad.py:1 imports steerbench.agents.registry (sim may not import agents)" in found
    assert "perception/bad.py:2 imports steerbench.planning (perception may not import planning)" in found
    assert "steerbench/cli/bad.py:1 imports steerbench.cli.study (a command family imports only" in found
